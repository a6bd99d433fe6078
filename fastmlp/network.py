"""A network built from a graph (fastmlp.graph) of node types (fastmlp.nodes): parameters
in one flat vector, buffers allocated once for the largest batch, forward in topological
order and backward in the reverse order.

Shapes: B batch (at most max_batch), D input width, K classes; each node's output is
[B, width]. A node's parameters (a dense node's W[units, fan_in] and b[units], a layernorm's
gain and bias) are views into `params`, their gradients the matching views into `grads`, in
topological order, so an optimizer updates the whole network with one kernel call.
"""
import numpy as np

from fastmlp import graph as G
from fastmlp import kernels as K
from fastmlp import nodes as N

INITS = ("book", "glorot", "he")


def _layout(order):
    """needs_grad (node -> whether a gradient flows to it: parameters at or above it) and
    edges (node -> how many nodes read it)."""
    needs_grad = {G.INPUT: False}
    for n in order:
        needs_grad[n.name] = hasattr(N.TYPES[n.type], "params") or any(needs_grad[i] for i in n.inputs)
    edges = {}
    for n in order:
        for i in n.inputs:
            edges[i] = edges.get(i, 0) + 1
    return needs_grad, edges


def plan(nodes, input_width, classes, max_batch):
    """(parameter count, buffer elements) of a Network of these nodes, from the graph alone:
    what the constructor will allocate (params and grads hold the parameter count each), so
    that a network too large for the machine is refused before anything is allocated."""
    order, width = G.check(nodes, input_width, classes)
    needs_grad, edges = _layout(order)
    params = sum(int(np.prod(shape)) for n in order for _, shape in N.params(n, [width[i] for i in n.inputs]))
    rows = width[G.INPUT] + 2 * classes + 1  # x; t and the softmax output P; the row losses L
    for n in order:
        if n.type == "head":
            continue
        copies = 1 + needs_grad[n.name] + (needs_grad[n.name] and edges.get(n.name, 0) > 1)
        rows += copies * width[n.name] + sum(N.buffers(n, width[n.name]).values())  # out, grad, acc, saved
    fan_ins = [width[n.inputs[0]] for n in order if n.type == "dense"]
    return params, max_batch * rows + max(fan_ins, default=0)


class Network:
    def __init__(self, nodes, input_width, classes, max_batch, dtype=np.float32, init="book", seed=0,
                 precision="float32"):
        if init not in INITS:
            raise ValueError(f"unknown initialisation {init!r} (known: {', '.join(INITS)})")
        self.order, self.width = G.check(nodes, input_width, classes)
        self.dtype, self.max_batch, self.seed = np.dtype(dtype), int(max_batch), int(seed)
        # What runs for each op on this CPU, dtype and precision (fastmlp.kernels.dispatch).
        self.k = K.dispatch.Kernels(self.dtype, precision)
        self.precision = precision
        self.head = next(n for n in self.order if n.type == "head")
        self.index = {n.name: i for i, n in enumerate(self.order)}  # dropout key "node"
        self.dense = [n for n in self.order if n.type == "dense"]

        # Parameters: one flat vector, views per node, in topological order.
        shapes = [(n, key, shape) for n in self.order
                  for key, shape in N.params(n, [self.width[i] for i in n.inputs])]
        total = sum(int(np.prod(shape)) for _, _, shape in shapes)
        self.params = K.aligned_empty(total, self.dtype)
        self.grads = K.aligned_zeros(total, self.dtype)
        self.p, self.g = {}, {}
        # Where the dense layers' weights sit in the flat vector: the optimizers' weight
        # decay touches these only (not biases, not a layernorm's gain and bias).
        self.weight_slices = []
        offset = 0
        for n, key, shape in shapes:
            size = int(np.prod(shape))
            if n.type == "dense" and key == "W":
                self.weight_slices.append((offset, offset + size))
            self.p.setdefault(n.name, {})[key] = self.params[offset:offset + size].reshape(shape)
            self.g.setdefault(n.name, {})[key] = self.grads[offset:offset + size].reshape(shape)
            offset += size
        # The dense layers' views, by position (weight decay, max-norm, statistics, the head).
        self.W = [self.p[n.name]["W"] for n in self.dense]
        self.b = [self.p[n.name]["b"] for n in self.dense]
        self.dW = [self.g[n.name]["W"] for n in self.dense]
        self.db = [self.g[n.name]["b"] for n in self.dense]
        self.W_flat = [W.reshape(-1) for W in self.W]
        self.dW_flat = [dW.reshape(-1) for dW in self.dW]
        self.layer = {n.name: i for i, n in enumerate(self.dense)}
        self.initialize(init, seed)

        # Which nodes need a gradient: those with parameters at or above them.
        self.needs_grad, edges = _layout(self.order)

        B = self.max_batch
        buf = lambda columns: K.aligned_empty((B, columns), self.dtype)
        self.x = buf(self.width[G.INPUT])                   # gathered input batch
        self.t = K.aligned_empty((B, classes), self.dtype)  # gathered targets
        self.out = {n.name: buf(self.width[n.name]) for n in self.order if n.type != "head"}
        self.saved = {n.name: {k: buf(c) for k, c in N.buffers(n, self.width[n.name]).items()} for n in self.order}
        self.mask = {name: s["mask"] for name, s in self.saved.items() if "mask" in s}  # dropout's
        self.grad = {n.name: buf(self.width[n.name]) for n in self.order if n.type != "head" and self.needs_grad[n.name]}
        # A node read by several others sums their gradients: the first writes into
        # grad[name], the others into acc[name], added in the fixed reverse order.
        self.acc = {name: buf(self.width[name]) for name in self.grad if edges.get(name, 0) > 1}
        self.P = K.aligned_empty((B, classes), self.dtype)  # softmax output
        self.L = np.empty(B, self.dtype)                    # per-row losses
        self.no_dx = np.empty((0, 1), self.dtype)
        # The zero bias the backward products start from (see fastmlp.kernels.fast.matmul).
        self.zeros = np.zeros(max((W.shape[1] for W in self.W), default=1), self.dtype)
        # train_step runs the dense layer that gives the logits, the softmax, the loss and
        # their gradients as one kernel (kernels/fast/head.py) where the dispatch table
        # chose it (float32 where the 16-lane forward tiles run, no op of its pattern edited),
        # the head's loss is cross-entropy and the logits are read by the head alone.
        last = next((n for n in self.dense if n.name == self.head.inputs[0]), None)
        self.fused = last if (last is not None and edges.get(last.name) == 1 and self.k.head is not None
                              and N.TYPES["head"].loss(self.head) == "cross_entropy") else None
        # ... and the backward pass of the activation just before it, when that activation
        # feeds this layer alone and is one of the kernels' own (K.ACTIVATIONS).
        self.fused_act = None
        if self.fused is not None and self.order.index(self.fused) > 0:
            a = self.order[self.order.index(self.fused) - 1]
            if (a.name == self.fused.inputs[0] and a.type == "activation" and edges.get(a.name) == 1
                    and a.function in K.ACTIVATIONS and a.function not in G.CUSTOM_ACTIVATIONS
                    and self.needs_grad[a.name]):
                self.fused_act = a
        self._arrivals = {}
        self.values = {}

    @classmethod
    def serial(cls, sizes, activations, max_batch, dtype=np.float32, init="book", seed=0,
               input_dropout=0.0, dropout=0.0, precision="float32"):
        """sizes = [D, H_1, ..., K] with one activation name per hidden layer."""
        if len(activations) != len(sizes) - 2:
            raise ValueError(f"{len(sizes) - 2} hidden layers but {len(activations)} activations")
        nodes = G.serial(sizes[1:-1], activations, input_dropout, dropout, sizes[-1])
        return cls(nodes, sizes[0], sizes[-1], max_batch, dtype, init, seed, precision)

    def initialize(self, init, seed):
        """book: W and b ~ N(0, 1/(fan_in + 1)), as Perrotta's initialize_weights (the bias
        is his extra input row); glorot: W ~ U(+-sqrt(6/(fan_in+fan_out))), b = 0;
        he: W ~ N(0, 2/fan_in), b = 0. Dense nodes are drawn in topological order."""
        for name, keys in self.p.items():  # parameters other than W and b: their types' start
            kind = N.TYPES[next(n.type for n in self.order if n.name == name)]
            for key, view in keys.items():
                if hasattr(kind, "initial"):
                    view[...] = kind.initial(key)
        rng = np.random.default_rng(seed)
        for W, b in zip(self.W, self.b):
            h, d = W.shape
            if init == "book":
                scale = np.sqrt(1.0 / (d + 1))
                W[...] = rng.standard_normal((h, d)) * scale
                b[...] = rng.standard_normal(h) * scale
            elif init == "glorot":
                limit = np.sqrt(6.0 / (d + h))
                W[...] = rng.uniform(-limit, limit, (h, d))
                b[...] = 0
            else:
                W[...] = rng.standard_normal((h, d)) * np.sqrt(2.0 / d)
                b[...] = 0

    def forward(self, x, training=False, step=0, *, skip=None):
        """Logits for the batch x[B, D] (B <= max_batch). With training=True, dropout nodes
        draw their masks from the key (seed, step, node); otherwise they pass data through.
        skip: a node left out (train_step's fused head; then nothing is returned)."""
        x = np.ascontiguousarray(x)  # the kernels read rows as flat runs (no copy if it is)
        B = x.shape[0]
        v = self.values
        v[G.INPUT] = x
        for n in self.order:
            if n.type != "head" and n is not skip:
                v[n.name] = N.TYPES[n.type].forward(self, n, B, training, step)
        return None if skip is not None else v[self.head.inputs[0]]

    def give(self, name, B):
        """Where the next gradient contribution for node `name` is written."""
        return (self.grad if self._arrivals.get(name, 0) == 0 else self.acc)[name][:B]

    def arrived(self, name, B):
        """A gradient contribution for `name` was written (where give() said): the second
        and later ones are added to the first, in the order they arrive."""
        if self._arrivals.get(name, 0) > 0:
            g = self.grad[name][:B]
            np.add(g, self.acc[name][:B], out=g)
        self._arrivals[name] = self._arrivals.get(name, 0) + 1

    def train_step(self, x, t, step=0):
        """forward(x, training=True, step=step), then loss_and_backward(t): the mean loss,
        and the same numbers everywhere, bit for bit. Where self.fused is a node, that
        dense layer, the softmax, the loss and their gradients run as one kernel
        (kernels/fast/head.py: one call instead of six)."""
        if self.fused is None:
            self.forward(x, training=True, step=step)
            return self.loss_and_backward(t)
        self.forward(x, training=True, step=step, skip=self.fused)
        return self.loss_and_backward(t, fused=True)

    def loss_and_backward(self, t, *, training=True, fused=False):
        """The head's mean loss for the batch just run through forward(); fills grads.
        Walks the forward order in reverse, each node calling its backward.
        fused: train_step's head kernel computes the logits too (forward skipped them)."""
        v = self.values
        B = v[G.INPUT].shape[0]
        self._arrivals.clear()
        if fused:
            n, l, a = self.fused, self.layer[self.fused.name], self.fused_act
            u = n.inputs[0]
            want = self.needs_grad[u]
            v[n.name] = z = self.out[n.name][:B]
            if a is not None:  # dX straight to the activation's input
                s, kind, dx = v[a.inputs[0]], K.ACTIVATIONS[a.function], self.give(a.inputs[0], B)
            else:
                s, kind, dx = v[u], -1, self.give(u, B) if want else self.no_dx
            loss = self.k.head(z, self.P[:B], self.L[:B], self.grad[n.name][:B], dx, self.dW[l], self.db[l],
                               v[u], self.W[l], self.b[l], t, s, kind, self.zeros, K.PARTS, want)
            self.arrived(n.name, B)
            if want:
                self.arrived(a.inputs[0] if a is not None else u, B)
        else:
            loss = N.TYPES["head"].loss_and_gradient(self, self.head, B, t)
        for n in reversed(self.order):
            if n.type == "head" or not self.needs_grad[n.name] or (fused and (n is self.fused or n is self.fused_act)):
                continue
            N.TYPES[n.type].backward(self, n, B, training)
        return loss

    def predict(self, X):
        """Class indices for X[N, D], in chunks of max_batch, dropout off."""
        out = np.empty(X.shape[0], np.int64)
        for s in range(0, X.shape[0], self.max_batch):
            out[s:s + self.max_batch] = self.forward(X[s:s + self.max_batch]).argmax(axis=1)
        return out

    def weight_stats(self):
        """Per dense node: mean |W|, RMS of W and max |W| (biases excluded)."""
        return [dict(layer=n.name, mean_abs=float(np.abs(W).mean()), rms=float(np.sqrt((W.astype(np.float64) ** 2).mean())),
                     max_abs=float(np.abs(W).max())) for n, W in zip(self.dense, self.W)]
