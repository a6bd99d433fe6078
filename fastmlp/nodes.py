"""One class per node type: its fields, its width rule, the shapes of its parameters and
extra buffers, and its forward and backward passes next to each other.

A node's forward reads net.values of its inputs and returns its output (a view of its
buffer net.out[name], or an input passed through); its backward reads the gradient of its
output, net.grad[name], and hands each input that needs one its gradient through
net.give(input, B) (the buffer to write) and net.arrived(input, B) (written: a node read
by several others sums their gradients in a fixed order). Parameters are net.p[name][key]
and their gradients net.g[name][key], views into the network's flat vectors. Kernels are
called through the network's dispatch table, net.k.

To add a node type: a class with these methods, registered in TYPES; kernels and twins in
fastmlp.kernels if it needs new arithmetic.
"""
import numpy as np

from fastmlp import kernels as K

MANY = None  # arity of nodes that take two or more inputs


class Dense:
    """X[B, D] -> X Wᵀ + b, [B, units]; W[units, D] (a row per unit), b[units]."""
    fields, arity = ("units",), 1

    def width(self, n, ins):
        return n.units

    def params(self, n, ins):
        return (("W", (n.units, ins[0])), ("b", (n.units,)))

    def forward(self, net, n, B, training, step):
        y = net.out[n.name][:B]
        net.k.dense_forward(y, net.values[n.inputs[0]], net.p[n.name]["W"], net.p[n.name]["b"])
        return y

    def backward(self, net, n, B, training):
        u = n.inputs[0]
        want = net.needs_grad[u]
        dx = net.give(u, B) if want else net.no_dx
        net.k.dense_backward(dx, net.g[n.name]["W"], net.g[n.name]["b"], net.grad[n.name][:B], net.values[u],
                             net.p[n.name]["W"], net.zeros, want)
        if want:
            net.arrived(u, B)


class Activation:
    """Elementwise f, width unchanged: fastmlp.kernels' ACTIVATIONS, or one registered
    with fastmlp.graph.register_activation (its own two kernels)."""
    fields, arity = ("function",), 1

    def forward(self, net, n, B, training, step):
        from fastmlp.graph import CUSTOM_ACTIVATIONS
        y, a = net.out[n.name][:B], net.values[n.inputs[0]]
        if n.function in CUSTOM_ACTIVATIONS:
            CUSTOM_ACTIVATIONS[n.function][0](y, a)
        else:
            net.k.activation_forward(y, a, K.ACTIVATIONS[n.function])
        return y

    def backward(self, net, n, B, training):
        from fastmlp.graph import CUSTOM_ACTIVATIONS
        u = n.inputs[0]
        if not net.needs_grad[u]:
            return
        dx, dy, z, a = net.give(u, B), net.grad[n.name][:B], net.values[u], net.values[n.name]
        if n.function in CUSTOM_ACTIVATIONS:
            CUSTOM_ACTIVATIONS[n.function][1](dx, dy, z, a)
        else:
            net.k.activation_backward(dx, dy, z, a, K.ACTIVATIONS[n.function])
        net.arrived(u, B)


class Dropout:
    """Inverted dropout while training (mask from the key (seed, step, node)), identity at
    evaluation."""
    fields, arity = ("rate",), 1

    def buffers(self, n, width):
        return {"mask": width}

    def forward(self, net, n, B, training, step):
        a = net.values[n.inputs[0]]
        if not (training and n.rate > 0):
            return a
        y = net.out[n.name][:B]
        net.k.dropout_forward(y, net.saved[n.name]["mask"][:B], a, n.rate, net.seed, step, net.index[n.name])
        return y

    def backward(self, net, n, B, training):
        u = n.inputs[0]
        if not net.needs_grad[u]:
            return
        dy = net.grad[n.name][:B]
        if training and n.rate > 0:
            net.k.dropout_backward(net.give(u, B), dy, net.saved[n.name]["mask"][:B])
        else:
            np.copyto(net.give(u, B), dy)
        net.arrived(u, B)


class Add:
    """Elementwise sum of two or more inputs of equal width (a skip connection)."""
    fields, arity = (), MANY
    same_widths = True

    def forward(self, net, n, B, training, step):
        y = net.out[n.name][:B]
        v = net.values
        np.add(v[n.inputs[0]], v[n.inputs[1]], out=y)
        for i in n.inputs[2:]:
            np.add(y, v[i], out=y)
        return y

    def backward(self, net, n, B, training):
        dy = net.grad[n.name][:B]
        for i in n.inputs:
            if net.needs_grad[i]:
                np.copyto(net.give(i, B), dy)
                net.arrived(i, B)


class Multiply:
    """Elementwise product of two inputs of equal width (gating: one branch scales the
    other)."""
    fields, arity = (), 2
    same_widths = True

    def forward(self, net, n, B, training, step):
        y = net.out[n.name][:B]
        np.multiply(net.values[n.inputs[0]], net.values[n.inputs[1]], out=y)
        return y

    def backward(self, net, n, B, training):
        dy = net.grad[n.name][:B]
        first, second = n.inputs
        for this, other in ((first, second), (second, first)):
            if net.needs_grad[this]:
                np.multiply(dy, net.values[other], out=net.give(this, B))
                net.arrived(this, B)


class Concat:
    """Inputs side by side; width = the sum of their widths."""
    fields, arity = (), MANY

    def width(self, n, ins):
        return sum(ins)

    def forward(self, net, n, B, training, step):
        y = net.out[n.name][:B]
        o = 0
        for i in n.inputs:
            w = net.width[i]
            y[:, o:o + w] = net.values[i]
            o += w
        return y

    def backward(self, net, n, B, training):
        dy = net.grad[n.name][:B]
        o = 0
        for i in n.inputs:
            w = net.width[i]
            if net.needs_grad[i]:
                np.copyto(net.give(i, B), dy[:, o:o + w])
                net.arrived(i, B)
            o += w


class LayerNorm:
    """Each row normalised to mean 0 and variance 1, then gain * x + bias per unit
    (kernels/norm.py); gain starts at 1 and bias at 0."""
    fields, arity = (), 1
    EPS = 1e-5

    def params(self, n, ins):
        return (("gain", (ins[0],)), ("bias", (ins[0],)))

    def initial(self, key):
        return 1.0 if key == "gain" else 0.0

    def buffers(self, n, width):
        return {"xhat": width, "r": 1}

    def forward(self, net, n, B, training, step):
        y, s, p = net.out[n.name][:B], net.saved[n.name], net.p[n.name]
        net.k.layernorm_forward(y, s["xhat"][:B], s["r"][:B, 0], net.values[n.inputs[0]], p["gain"], p["bias"],
                                self.EPS)
        return y

    def backward(self, net, n, B, training):
        u = n.inputs[0]
        want = net.needs_grad[u]
        s, g = net.saved[n.name], net.g[n.name]
        dx = net.give(u, B) if want else net.grad[n.name][:B]  # not written when not wanted
        net.k.layernorm_backward(dx, g["gain"], g["bias"], net.grad[n.name][:B], s["xhat"][:B], s["r"][:B, 0],
                                 net.p[n.name]["gain"], want)
        if want:
            net.arrived(u, B)


# The losses a head can compute from the logits: name -> (forward(P, L, Z, T) -> mean,
# backward(dZ, P, T)), both ops of the dispatch table.
LOSSES = {
    "cross_entropy": ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward"),
    "mse": ("mse_softmax_forward", "mse_softmax_backward"),
}


class Head:
    """The loss over its input, the logits (width = classes): `loss` is cross_entropy
    (softmax, then cross-entropy computed from the logits) or mse (mean squared error on
    the softmax output). Its forward and backward are the network's loss step."""
    fields, arity = ("loss",), 1
    optional = ("loss",)

    def loss(self, n):
        return n.loss or "cross_entropy"

    def forward(self, net, n, B, training, step):
        return None

    def loss_and_gradient(self, net, n, B, t):
        forward, backward = LOSSES[self.loss(n)]
        logits = n.inputs[0]
        loss = getattr(net.k, forward)(net.P[:B], net.L[:B], net.values[logits], t)
        getattr(net.k, backward)(net.give(logits, B), net.P[:B], t)
        net.arrived(logits, B)
        return loss

    def backward(self, net, n, B, training):
        pass


TYPES = {"dense": Dense(), "activation": Activation(), "dropout": Dropout(), "add": Add(), "multiply": Multiply(),
         "concat": Concat(), "layernorm": LayerNorm(), "head": Head()}


def width(node, ins):
    """The node's output width from its inputs' widths (the type's rule; default: the
    first input's)."""
    kind = TYPES[node.type]
    return kind.width(node, ins) if hasattr(kind, "width") else ins[0]


def params(node, ins):
    kind = TYPES[node.type]
    return kind.params(node, ins) if hasattr(kind, "params") else ()


def buffers(node, width):
    """{name: columns} of the extra [B, columns] buffers the node keeps for its backward pass."""
    kind = TYPES[node.type]
    return kind.buffers(node, width) if hasattr(kind, "buffers") else {}
