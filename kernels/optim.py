"""Optimizer updates, in place, on flat parameter vectors.

Shapes: N parameters.  p[N] parameters, g[N] gradients (a network keeps all its
parameters in one flat vector, so one call updates every layer).
"""
from numba import prange

from ._jit import kernel


@kernel(parallel=True)
def sgd_step(p, g, lr):
    """p -= lr * g."""
    for n in prange(p.shape[0]):
        p[n] -= lr * g[n]
