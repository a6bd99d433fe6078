"""Optimizers: state held here, updates done by kernels in fastmlp.kernels.optim.

Each optimizer updates the network's flat parameter vector in one kernel call, and weight
decay is its business too: `weight_decay` with `weights`, the (start, stop) slices of the
flat vector that hold weights (Network.weight_slices: biases and gains are not decayed).
Optimizer.decay adds weight_decay * W to dW before the update (L2, "coupled"); AdamW
instead shrinks the weights themselves by lr * weight_decay (Loshchilov and Hutter's
decoupled decay). To add an optimizer: its update kernel and NumPy twin in the plain
layer, then a subclass of Optimizer here with `kernel` (the kernel's name, for warm-up),
`slots` (the parameter-sized arrays of state it keeps, for the memory check), `step`
(which calls self.decay first) and `state` (what a checkpoint keeps), registered in
OPTIMIZERS.
"""
from fastmlp import kernels as K


class Optimizer:
    kernel, slots = None, 0

    def __init__(self, size, dtype, weight_decay=0.0, weights=(), **_):
        self.weight_decay, self.weights, self.t = float(weight_decay), tuple(weights), 0

    def decay(self, params, grads, lr):
        """L2 weight decay folded into the gradient of the weights: dW += weight_decay * W."""
        if self.weight_decay > 0:
            for a, b in self.weights:
                K.weight_decay(grads[a:b], params[a:b], self.weight_decay)


class SGD(Optimizer):
    kernel = "sgd_step"

    def step(self, params, grads, lr):
        self.t += 1
        self.decay(params, grads, lr)
        K.sgd_step(params, grads, lr)

    def state(self):
        return {"t": self.t}


class Momentum(Optimizer):
    """Heavy-ball momentum, or Nesterov's variant with nesterov=True."""

    kernel, slots = "momentum_step", 1

    def __init__(self, size, dtype, momentum=0.9, nesterov=False, **options):
        super().__init__(size, dtype, **options)
        self.v = K.aligned_zeros(size, dtype)
        self.mu, self.nesterov = float(momentum), bool(nesterov)

    def step(self, params, grads, lr):
        self.t += 1
        self.decay(params, grads, lr)
        K.momentum_step(params, self.v, grads, lr, self.mu, self.nesterov)

    def state(self):
        return {"t": self.t, "v": self.v}


class Adam(Optimizer):
    """Adam with bias correction (Kingma and Ba)."""

    kernel, slots = "adam_step", 2

    def __init__(self, size, dtype, beta1=0.9, beta2=0.999, eps=1e-8, **options):
        super().__init__(size, dtype, **options)
        self.m = K.aligned_zeros(size, dtype)
        self.v = K.aligned_zeros(size, dtype)
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)

    def step(self, params, grads, lr):
        self.t += 1
        self.decay(params, grads, lr)
        K.adam_step(params, self.m, self.v, grads, lr, self.beta1, self.beta2, self.eps, self.t)

    def state(self):
        return {"t": self.t, "m": self.m, "v": self.v}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): W -= lr * weight_decay * W
    before each Adam step, instead of folding the decay into the gradient, so that the
    decay is not rescaled by Adam's per-parameter step sizes."""

    def decay(self, params, grads, lr):
        if self.weight_decay > 0:
            for a, b in self.weights:
                K.weight_decay(params[a:b], params[a:b], -lr * self.weight_decay)  # W += (-lr wd) W


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam, "adamw": AdamW}


def make(name, size, dtype, **options):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](size, dtype, **options)
