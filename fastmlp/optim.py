"""Optimizers: state held here, updates done by kernels in fastmlp.kernels.optim.

Each optimizer updates the network's flat parameter vector in one kernel call. To add
one: write its update kernel and NumPy twin, then a small class here with `kernel` (the
kernel's name, for warm-up), `step` and `state` (the arrays and counters a checkpoint
needs), and register it in OPTIMIZERS. `slots` is the number of parameter-sized arrays
of state it keeps (for the memory check before a network is built).
"""
from fastmlp import kernels as K


class SGD:
    kernel = "sgd_step"
    slots = 0

    def __init__(self, size, dtype, **_):
        self.t = 0

    def step(self, params, grads, lr):
        self.t += 1
        K.sgd_step(params, grads, lr)

    def state(self):
        return {"t": self.t}


class Momentum:
    """Heavy-ball momentum, or Nesterov's variant with nesterov=True."""

    kernel = "momentum_step"
    slots = 1

    def __init__(self, size, dtype, momentum=0.9, nesterov=False, **_):
        self.v = K.aligned_zeros(size, dtype)
        self.mu, self.nesterov, self.t = float(momentum), bool(nesterov), 0

    def step(self, params, grads, lr):
        self.t += 1
        K.momentum_step(params, self.v, grads, lr, self.mu, self.nesterov)

    def state(self):
        return {"t": self.t, "v": self.v}


class Adam:
    """Adam with bias correction (Kingma and Ba)."""

    kernel = "adam_step"
    slots = 2

    def __init__(self, size, dtype, beta1=0.9, beta2=0.999, eps=1e-8, **_):
        self.m = K.aligned_zeros(size, dtype)
        self.v = K.aligned_zeros(size, dtype)
        self.beta1, self.beta2, self.eps, self.t = float(beta1), float(beta2), float(eps), 0

    def step(self, params, grads, lr):
        self.t += 1
        K.adam_step(params, self.m, self.v, grads, lr, self.beta1, self.beta2, self.eps, self.t)

    def state(self):
        return {"t": self.t, "m": self.m, "v": self.v}


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "adam": Adam}


def make(name, size, dtype, **options):
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")
    return OPTIMIZERS[name](size, dtype, **options)
