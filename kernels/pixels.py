"""Byte images to numbers, for preparing MNIST-like data (fastmlp.data.prepare): a
histogram of the byte values, and a byte -> number table lookup.

Shapes: N images, P pixels.  a[N, P] uint8 (C-contiguous), counts[parts, 256] int64,
table[256], out[N, P].

NumPy's own ways are slow here: np.bincount widens every byte to int64 first, and
table[a] (or np.take) runs at about 10 ns an element, and MNIST's training set has 47
million pixels (BENCHMARKS.md, History, commit 49a64f7).
"""
import numpy as np
from numba import prange

from ._runtime.jit import kernel
from ._runtime.registry import plain


@plain(example=lambda d: (np.zeros((2, 256), np.int64), np.zeros((2, 3), np.uint8)), layer="data", dtypes=("uint8",),
       seconds=0.8)
@kernel(parallel=True)
def byte_counts(counts, a):
    """counts[p, v] = how many of part p's entries of a equal v, part p being the flat
    entries p * n // parts to (p + 1) * n // parts - 1 (n = a.size, parts =
    counts.shape[0]). Add the rows for the whole histogram: integer sums, exact in any
    order."""
    flat = a.reshape(a.size)
    n = flat.size
    parts = counts.shape[0]
    for p in prange(parts):
        c = counts[p]
        c[:] = 0
        for i in range(p * n // parts, (p + 1) * n // parts):
            c[flat[i]] += 1


@plain(example=lambda d: (np.empty((2, 3), d), np.zeros(256, d), np.zeros((2, 3), np.uint8)), layer="data")
@kernel(parallel=True)
def lookup_bytes(out, table, a):
    """out[i, j] = table[a[i, j]], in place."""
    for i in prange(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = table[a[i, j]]
