"""Inverted dropout with masks from a counter-based generator.

Shapes: B batch, H units.  X[B, H] in, Y[B, H] out, M[B, H] the kept-unit scale
(0 or 1/(1-p)), which the backward pass multiplies by.

Each unit's random bits are hash(seed, step, node, row, column), a chain of splitmix64
finalizers: no generator state is shared between threads, so the mask is the same run to
run and for any thread count. A unit is kept when the top 24 bits of its hash are
>= p * 2**24.
"""
import numpy as np
from numba import prange

from ._runtime.jit import kernel
from ._runtime.registry import plain

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_C1 = np.uint64(0xBF58476D1CE4E5B9)
_C2 = np.uint64(0x94D049BB133111EB)


@kernel(inline="always")
def splitmix64(z):
    """The splitmix64 output for state z (z is incremented by the golden gamma first)."""
    z = np.uint64(z) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _C1
    z = (z ^ (z >> np.uint64(27))) * _C2
    return z ^ (z >> np.uint64(31))


@kernel(inline="always")
def unit_hash(seed, step, node, row, col):
    h = splitmix64(np.uint64(seed))
    h = splitmix64(h ^ np.uint64(step))
    h = splitmix64(h ^ np.uint64(node))
    h = splitmix64(h ^ np.uint64(row))
    return splitmix64(h ^ np.uint64(col))


@plain(example=lambda d: (np.empty((2, 2), d), np.empty((2, 2), d), np.ones((2, 2), d), 0.5, 0, 0, 0))
@kernel(parallel=True)
def dropout_forward(Y, M, X, p, seed, step, node):
    """Y = X * M with M[i, j] = 1/(1-p) for kept units and 0 for dropped ones; 0 <= p < 1.
    Row i of the batch is row i of the mask: the caller passes the step counter."""
    B, H = X.shape
    threshold = np.uint64(int(p * 16777216.0))
    scale = 1.0 / (1.0 - p)
    for i in prange(B):
        for j in range(H):
            keep = (unit_hash(seed, step, node, i, j) >> np.uint64(40)) >= threshold
            M[i, j] = scale if keep else 0.0
            Y[i, j] = X[i, j] * M[i, j]


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d), np.ones((2, 2), d)))
@kernel(parallel=True)
def dropout_backward(dX, dY, M):
    """dX = dY * M."""
    B, H = dY.shape
    for i in prange(B):
        for j in range(H):
            dX[i, j] = dY[i, j] * M[i, j]
