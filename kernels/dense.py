"""Dense (fully connected) layer: Y = X Wᵀ + b, and its gradients dW, db, dX.

Shapes: B batch, D inputs, H outputs.  X[B, D], W[H, D], b[H], Y[B, H].
W holds one row per output unit.
    forward  Y[i, j] = b[j] + sum_k X[i, k] W[j, k]: both operands read along k, in 4x4
             tiles of 16 dot products (dense_forward).
    dW = dYᵀ X and dX = dY W: outer-product tiles that read dY, X and W in place
             (kernels/matmul.py: matmul_tn, matmul_nn).
The forward pass could use the outer-product tiles too, but they need Wᵀ, and copying W
every step made whole epochs no faster (BENCHMARKS.md, session 4). All arrays are
C-contiguous and of one dtype (the network's buffers are). Every output element is owned by one prange iteration and summed in a
fixed order: results do not depend on the thread count.
"""
from numba import prange

from ._jit import FAST, kernel
from ._math import like
from ._simd import LANES, vfma, vload, vstore
from .matmul import matmul, tile_columns

# dense_forward gives each thread blocks of 16 columns from this many output units on
# (a 1200 x 1200 product: 54 -> 89-112 GFLOP/s, BENCHMARKS.md); narrower layers keep
# 4-column blocks, so that there are enough blocks to share.
WIDE_MIN_UNITS = 256


@kernel(inline="always")
def _nt_tile(Y, A, Bt, bias, i, j):
    """Y[i:i+4, j:j+4] = bias[j:j+4] + A[i:i+4] Bt[j:j+4]ᵀ: a 4x4 register tile of 16
    accumulators, both operands read along k."""
    K = A.shape[1]
    s00 = bias[j]; s01 = bias[j + 1]; s02 = bias[j + 2]; s03 = bias[j + 3]
    s10 = bias[j]; s11 = bias[j + 1]; s12 = bias[j + 2]; s13 = bias[j + 3]
    s20 = bias[j]; s21 = bias[j + 1]; s22 = bias[j + 2]; s23 = bias[j + 3]
    s30 = bias[j]; s31 = bias[j + 1]; s32 = bias[j + 2]; s33 = bias[j + 3]
    for k in range(K):
        a0 = A[i, k]; a1 = A[i + 1, k]; a2 = A[i + 2, k]; a3 = A[i + 3, k]
        w0 = Bt[j, k]; w1 = Bt[j + 1, k]; w2 = Bt[j + 2, k]; w3 = Bt[j + 3, k]
        s00 += a0 * w0; s01 += a0 * w1; s02 += a0 * w2; s03 += a0 * w3
        s10 += a1 * w0; s11 += a1 * w1; s12 += a1 * w2; s13 += a1 * w3
        s20 += a2 * w0; s21 += a2 * w1; s22 += a2 * w2; s23 += a2 * w3
        s30 += a3 * w0; s31 += a3 * w1; s32 += a3 * w2; s33 += a3 * w3
    Y[i, j] = s00; Y[i, j + 1] = s01; Y[i, j + 2] = s02; Y[i, j + 3] = s03
    Y[i + 1, j] = s10; Y[i + 1, j + 1] = s11; Y[i + 1, j + 2] = s12; Y[i + 1, j + 3] = s13
    Y[i + 2, j] = s20; Y[i + 2, j + 1] = s21; Y[i + 2, j + 2] = s22; Y[i + 2, j + 3] = s23
    Y[i + 3, j] = s30; Y[i + 3, j + 1] = s31; Y[i + 3, j + 2] = s32; Y[i + 3, j + 3] = s33


@kernel(inline="always")
def _nt_row(Y, A, Bt, bias, i, j):
    """Y[i, j:j+4] for one leftover row: a 1x4 tile."""
    K = A.shape[1]
    s0 = bias[j]; s1 = bias[j + 1]; s2 = bias[j + 2]; s3 = bias[j + 3]
    for k in range(K):
        a = A[i, k]
        s0 += a * Bt[j, k]; s1 += a * Bt[j + 1, k]; s2 += a * Bt[j + 2, k]; s3 += a * Bt[j + 3, k]
    Y[i, j] = s0; Y[i, j + 1] = s1; Y[i, j + 2] = s2; Y[i, j + 3] = s3


@kernel(inline="always")
def _nt_block(Y, A, Bt, bias, j0, j1):
    """Y[:, j0:j1] = bias + A Bt[j0:j1]ᵀ. Rows 4 at a time, and for each group of rows
    the block's columns 4 at a time, so a block of 16 columns writes whole cache lines
    of Y before moving on; leftover rows take 1x4 tiles, leftover columns (fewer than 4)
    plain dot products."""
    R, K = A.shape
    jt = j0 + (j1 - j0) // 4 * 4
    i = 0
    while i + 4 <= R:
        for j in range(j0, jt, 4):
            _nt_tile(Y, A, Bt, bias, i, j)
        i += 4
    while i < R:
        for j in range(j0, jt, 4):
            _nt_row(Y, A, Bt, bias, i, j)
        i += 1
    for u in range(jt, j1):
        for i in range(R):
            s = bias[u]
            for k in range(K):
                s += A[i, k] * Bt[u, k]
            Y[i, u] = s


@kernel(parallel=True)
def column_sums(s, A):
    """s[j] = sum_i A[i, j], rows added in order (0 for no rows). Threads own blocks of
    16 columns and add whole rows of the block as one vector; vfma(1, x, t) is t + x
    exactly."""
    R, C = A.shape
    if R == 0:
        s[:C] = 0.0
        return
    one = like(s, 1.0)
    for jb in prange((C + LANES - 1) // LANES):
        j = jb * LANES
        n = min(LANES, C - j)
        t = vload(A[0], j, n)
        for i in range(1, R):
            t = vfma(one, vload(A[i], j, n), t)
        vstore(s, j, t, n)


@kernel(parallel=True, fastmath=FAST)
def dense_forward(Y, X, W, b):
    """Y[i, j] = b[j] + sum_k X[i, k] W[j, k], in place. Y must not alias X.
    Threads own blocks of 16 output columns (4 where there are fewer than WIDE_MIN_UNITS);
    each element is summed by one tile in a fixed order."""
    H = W.shape[0]
    width = 16 if H >= WIDE_MIN_UNITS else 4
    for jb in prange((H + width - 1) // width):
        _nt_block(Y, X, W, b, width * jb, min(width * jb + width, H))


def dense_backward(dX, dW, db, dY, X, W, zeros, input_grad):
    """Gradients of Y = X Wᵀ + b given dY[B, H]; overwrites dW[H, D], db[H] and, when
    input_grad is true, dX[B, D] (the first layer skips it: nothing needs it).
    zeros: at least D zeros (the products' bias). A sequence of kernel calls, no allocation.
    """
    D = X.shape[1]
    width = tile_columns(dW.dtype)
    column_sums(db, dY)
    matmul(dW, dY, X, zeros[:D], width, True)      # dW = dYᵀ X
    if input_grad:
        matmul(dX, dY, W, zeros[:D], width, False)  # dX = dY W
