"""Optimizer updates, in place, on flat parameter vectors.

Shapes: N parameters.  p[N] parameters, g[N] gradients (a network keeps all its
parameters in one flat vector, so one call updates every layer); max_norm works on
one layer's W[H, D]. Scalar settings (lr, betas, ...) are taken in the parameters' dtype
(like()): a float64 scalar would turn the whole float32 loop into float64 arithmetic at
half the vector width.
"""
import math

import numpy as np
from numba import prange

from ._runtime.jit import kernel
from ._runtime.registry import plain
from ._math import like


@plain(example=lambda d: (np.ones(2, d), np.ones(2, d), 0.5))
@kernel(parallel=True)
def sgd_step(p, g, lr):
    """p -= lr * g."""
    rate = like(p, lr)
    for n in prange(p.shape[0]):
        p[n] -= rate * g[n]


@plain(example=lambda d: (np.ones(2, d), np.zeros(2, d), np.ones(2, d), 0.5, 0.9, False))
@kernel(parallel=True)
def momentum_step(p, v, g, lr, mu, nesterov):
    """v = mu * v + g; p -= lr * (g + mu * v) with Nesterov, else p -= lr * v."""
    rate, keep = like(p, lr), like(p, mu)
    for n in prange(p.shape[0]):
        v[n] = keep * v[n] + g[n]
        if nesterov:
            p[n] -= rate * (g[n] + keep * v[n])
        else:
            p[n] -= rate * v[n]


@plain(example=lambda d: (np.ones(2, d), np.zeros(2, d), np.zeros(2, d), np.ones(2, d), 0.5, 0.9, 0.999, 1e-8, 1))
@kernel(parallel=True)
def adam_step(p, m, v, g, lr, beta1, beta2, eps, t):
    """Adam with bias correction; t is the 1-based step count."""
    # lr (m / c1) / (sqrt(v / c2) + eps) with the corrections taken out of the loop:
    # one sqrt and one division an element.
    step = like(p, lr / (1.0 - beta1 ** t))
    unbias = like(p, 1.0 / math.sqrt(1.0 - beta2 ** t))
    b1, a1 = like(p, beta1), like(p, 1.0 - beta1)
    b2, a2 = like(p, beta2), like(p, 1.0 - beta2)
    e = like(p, eps)
    for n in prange(p.shape[0]):
        gn = g[n]
        mn = b1 * m[n] + a1 * gn
        vn = b2 * v[n] + a2 * gn * gn
        m[n] = mn
        v[n] = vn
        p[n] -= step * mn / (math.sqrt(vn) * unbias + e)


@plain(example=lambda d: (np.ones(2, d), np.ones(2, d), 0.5))
@kernel(parallel=True)
def weight_decay(g, p, decay):
    """L2 weight decay folded into the gradient: g += decay * p."""
    d = like(p, decay)
    for n in prange(p.shape[0]):
        g[n] += d * p[n]


@plain(example=lambda d: (np.ones((2, 3), d), 1.0))
@kernel(parallel=True)
def max_norm(W, c):
    """Rescale each row of W[H, D] (one unit's incoming weights) whose Euclidean norm
    exceeds c to norm exactly c; rows within the bound are left untouched."""
    H, D = W.shape
    for j in prange(H):
        s = 0.0
        for k in range(D):
            s += W[j, k] * W[j, k]
        norm = math.sqrt(s)
        if norm > c:
            scale = c / norm
            for k in range(D):
                W[j, k] *= scale
