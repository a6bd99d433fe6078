"""Fast bfloat16 products for CPUs without bfloat16 units: replace dense_forward_bf16 and
dense_backward_bf16 (kernels/dense.py) with the float32 tiles of kernels/fast/dense.py and
kernels/fast/matmul.py, run on copies of the operands rounded to bfloat16 by the plain
layer's bf16(). A product of two bfloat16 numbers is exact in float32, so these give the
plain kernels' numbers up to the order of the float32 sums, as AMX or AVX512-BF16 would;
they are no faster than float32 (the rounding is extra work), which the dispatch table's
precision note says. float32 only.
"""
import numpy as np
from numba import prange

from .._math import bf16
from .._runtime.jit import kernel
from .._runtime.registry import fast
from ._share import PARTS, counters
from .dense import _check, column_sums, dense_forward_dot
from .matmul import matmul


@kernel(parallel=True)
def round_bf16(out, A):
    """out = bf16(A), element by element (2-D, same shape)."""
    R, C = A.shape
    for i in prange(R):
        for j in range(C):
            out[i, j] = bf16(A[i, j])


def _rounded(A):
    out = np.empty_like(A)
    round_bf16(out, A)
    return out


@fast(replaces=("dense_forward_bf16",), needs=("float32",), compiled=(round_bf16, dense_forward_dot), seconds=3.0)
def dense_forward_bf16_2x4(Y, X, W, b):
    """Replaces dense_forward_bf16: dense_forward_dot on bf16(X) and bf16(W)."""
    _check(Y, X, W, b)
    dense_forward_dot(Y, _rounded(X), _rounded(W), b)


@fast(replaces=("dense_backward_bf16",), needs=("float32",), compiled=(round_bf16, matmul, column_sums), seconds=4.4)
def dense_backward_bf16_6x16(dX, dW, db, dY, X, W, zeros, input_grad):
    """Replaces dense_backward_bf16: dW = bf16(dY)ᵀ bf16(X) and dX = bf16(dY) bf16(W) with
    the 6 x 16 outer-product tiles; db the column sums of dY itself (not rounded)."""
    D = X.shape[1]
    g = _rounded(dY)
    matmul(dW, g, _rounded(X), zeros[:D], 16, True, db, False, PARTS, counters())
    column_sums(db, dY)
    if input_grad:
        matmul(dX, g, _rounded(W), zeros[:D], 16, False, db, False, PARTS, counters())
