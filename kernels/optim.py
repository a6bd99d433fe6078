"""Optimizer updates, in place, on flat parameter vectors.

Shapes: N parameters.  p[N] parameters, g[N] gradients (a network keeps all its
parameters in one flat vector, so one call updates every layer); max_norm works on
one layer's W[H, D].
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
    # lr (m / c1) / (sqrt(v / c2) + eps) with the corrections taken out of the loop:
    # one sqrt and one division an element (this pass is a fifth of a deep network's step).
    c1 = 1.0 - beta1 ** t
    c2 = 1.0 - beta2 ** t
    step = lr / c1
    unbias = 1.0 / math.sqrt(c2)
    for n in prange(p.shape[0]):
        gn = g[n]
        mn = beta1 * m[n] + (1.0 - beta1) * gn
        vn = beta2 * v[n] + (1.0 - beta2) * gn * gn
        m[n] = mn
        v[n] = vn
        p[n] -= step * mn / (math.sqrt(vn) * unbias + eps)


@kernel(parallel=True)
def weight_decay(g, p, decay):
    """L2 weight decay folded into the gradient: g += decay * p."""
    for n in prange(p.shape[0]):
        g[n] += decay * p[n]


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
