"""A serial multilayer perceptron: dense layers with activations and a softmax
cross-entropy head, parameters in one flat vector, buffers allocated once.

Shapes: B batch (at most max_batch), D inputs, H_l units of layer l, K classes.
Layer l holds W[H_l, H_{l-1}] (one row per unit) and b[H_l], both views into `params`;
their gradients are the matching views into `grads`, so an optimizer updates the whole
network with one kernel call.
"""
import numpy as np

from fastmlp import kernels as K

INITS = ("book", "glorot", "he")


class Network:
    def __init__(self, sizes, activations, max_batch, dtype=np.float32, init="book", seed=0):
        """sizes: [D, H_1, ..., K]; activations: one name per hidden layer."""
        sizes = [int(s) for s in sizes]
        activations = list(activations)
        if len(sizes) < 2:
            raise ValueError("a network needs at least an input and an output size")
        if len(activations) != len(sizes) - 2:
            raise ValueError(f"{len(sizes) - 2} hidden layers but {len(activations)} activations")
        for name in activations:
            if name not in K.ACTIVATIONS:
                raise ValueError(f"unknown activation {name!r} (known: {', '.join(K.ACTIVATIONS)})")
        if init not in INITS:
            raise ValueError(f"unknown initialisation {init!r} (known: {', '.join(INITS)})")
        self.sizes, self.activations = sizes, activations
        self.kinds = [K.ACTIVATIONS[a] for a in activations]
        self.dtype, self.max_batch = np.dtype(dtype), int(max_batch)

        shapes = list(zip(sizes[1:], sizes[:-1]))  # (H, D) per layer
        total = sum(h * d + h for h, d in shapes)
        self.params = np.empty(total, self.dtype)
        self.grads = np.zeros(total, self.dtype)
        self.W, self.b, self.dW, self.db = [], [], [], []
        offset = 0
        for h, d in shapes:
            for flat, ws, bs in ((self.params, self.W, self.b), (self.grads, self.dW, self.db)):
                ws.append(flat[offset:offset + h * d].reshape(h, d))
                bs.append(flat[offset + h * d:offset + h * d + h])
            offset += h * d + h
        self.initialize(init, seed)

        # Buffers for the largest batch; steps use views of their first B rows.
        B = self.max_batch
        self.x = np.empty((B, sizes[0]), self.dtype)           # gathered input batch
        self.t = np.empty((B, sizes[-1]), self.dtype)          # gathered targets
        self.Z = [np.empty((B, h), self.dtype) for h, _ in shapes]   # pre-activations
        self.A = [np.empty((B, h), self.dtype) for h, _ in shapes[:-1]]  # activations
        self.dZ = [np.empty((B, h), self.dtype) for h, _ in shapes]  # dA, then dZ in place
        self.P = np.empty((B, sizes[-1]), self.dtype)          # softmax output
        self.L = np.empty(B, self.dtype)                       # per-row losses

    def initialize(self, init, seed):
        """book: W and b ~ N(0, 1/(fan_in + 1)), as Perrotta's initialize_weights (the bias
        is his extra input row); glorot: W ~ U(+-sqrt(6/(fan_in+fan_out))), b = 0;
        he: W ~ N(0, 2/fan_in), b = 0."""
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

    @property
    def layers(self):
        return len(self.W)

    def forward(self, x):
        """Logits for the batch x[B, D] (B <= max_batch); returns a view of Z[-1]."""
        B = x.shape[0]
        a = x
        for l in range(self.layers):
            z = self.Z[l][:B]
            K.dense_forward(z, a, self.W[l], self.b[l])
            if l < self.layers - 1:
                K.activation_forward(self.A[l][:B], z, self.kinds[l])
                a = self.A[l][:B]
        return self.Z[-1][:B]

    def loss_and_backward(self, x, t):
        """Mean cross-entropy of the batch just run through forward(x); fills grads."""
        B = x.shape[0]
        loss = K.softmax_cross_entropy_forward(self.P[:B], self.L[:B], self.Z[-1][:B], t)
        K.softmax_cross_entropy_backward(self.dZ[-1][:B], self.P[:B], t)
        for l in range(self.layers - 1, -1, -1):
            a_prev = x if l == 0 else self.A[l - 1][:B]
            dA_prev = self.dZ[l - 1][:B] if l > 0 else self.x[:0]  # layer 0 skips dX
            K.dense_backward(dA_prev, self.dW[l], self.db[l], self.dZ[l][:B], a_prev, self.W[l], l > 0)
            if l > 0:
                K.activation_backward(dA_prev, dA_prev, self.Z[l - 1][:B], self.A[l - 1][:B], self.kinds[l - 1])
        return loss

    def predict(self, X):
        """Class indices for X[N, D], in chunks of max_batch."""
        out = np.empty(X.shape[0], np.int64)
        for s in range(0, X.shape[0], self.max_batch):
            out[s:s + self.max_batch] = self.forward(X[s:s + self.max_batch]).argmax(axis=1)
        return out
