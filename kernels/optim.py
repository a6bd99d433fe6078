"""Optimizer updates, in place, on flat parameter vectors.

Shapes: N parameters.  p[N] parameters, g[N] gradients (a network keeps all its
parameters in one flat vector, so one call updates every layer).
"""
import math

from numba import prange

from ._jit import kernel


@kernel(parallel=True)
def sgd_step(p, g, lr):
    """p -= lr * g."""
    for n in prange(p.shape[0]):
        p[n] -= lr * g[n]


@kernel(parallel=True)
def momentum_step(p, v, g, lr, mu, nesterov):
    """v = mu * v + g; p -= lr * (g + mu * v) with Nesterov, else p -= lr * v."""
    for n in prange(p.shape[0]):
        v[n] = mu * v[n] + g[n]
        if nesterov:
            p[n] -= lr * (g[n] + mu * v[n])
        else:
            p[n] -= lr * v[n]


@kernel(parallel=True)
def adam_step(p, m, v, g, lr, beta1, beta2, eps, t):
    """Adam with bias correction; t is the 1-based step count."""
    c1 = 1.0 - beta1 ** t
    c2 = 1.0 - beta2 ** t
    for n in prange(p.shape[0]):
        m[n] = beta1 * m[n] + (1.0 - beta1) * g[n]
        v[n] = beta2 * v[n] + (1.0 - beta2) * g[n] * g[n]
        p[n] -= lr * (m[n] / c1) / (math.sqrt(v[n] / c2) + eps)
