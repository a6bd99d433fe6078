"""The classifier head in one kernel: the last dense layer, softmax, cross-entropy and
their gradients, for one training step.

Shapes: B batch, D inputs, K classes.  X[B, D] the last hidden layer, W[K, D], b[K],
T[B, K] targets; out: Z[B, K] logits, P[B, K] probabilities, L[B] per-row losses,
dZ[B, K], dW[K, D], db[K], dX[B, D] (skipped when input_grad is false).
    Z = X Wᵀ + b                              (dense_forward)
    P, L, loss = softmax and cross-entropy    (softmax_cross_entropy_forward)
    dZ = (P - T) / B                          (softmax_cross_entropy_backward)
    dX = dZ W,  dW = dZᵀ X,  db = sum_i dZ[i] (dense_backward)
    with kind >= 0: X = f(S) for activation `kind`, and dX becomes the gradient w.r.t.
    S instead, dX * f'(S)                     (activation_backward, in place)
The same numbers, bit for bit, as the fast layer's six or seven kernels one after
another (tests/test_head.py holds it to them; to the plain layer's, within the
tolerances of another summation order), from one call: a step runs them on a few
thousand numbers (K = 10), where waking the threads six times and the tiles' fixed
costs take longer than the arithmetic (BENCHMARKS.md, History, commit bf6e3d7).
Each element is summed as in those kernels: the logits with the forward tiles'
arithmetic (16 partial sums, vsum's tree, then the bias) in smaller tiles, the products
with matmul's tiles, the softmax with its row passes. Float32 on AVX-512 CPUs only
(where dense_forward_16lane computes the same way); fastmlp.Network falls back to the
separate kernels elsewhere (kernels/dispatch.py decides).
Two parallel loops: the first over shares of the batch (logits, softmax, loss, dZ, dX
for its rows), the second over tiles of dW, which needs every row's dZ.
"""
import numpy as np
from numba import prange

from .._math import like, vexp
from .._runtime.jit import kernel
from .._runtime.registry import fast
from ..activations import _df
from ._share import PARTS
from ._simd import LANES, address, lane, vfma, vload, vstore, vsums
from .losses import _mean, _normalize_rows, _shift_rows
from .matmul import ROWS, _tile_6x16

# Rows a share of the batch is a multiple of (the 4-row logit tiles and the 6-row tiles of
# dX repeat the share's last row rather than cross into the next share). 24, for whole
# tiles of both, split a batch of 256 into 144 + 112 rows.
SHARE = 8


@kernel(inline="always")
def _dot_4x2(y, H, x, w, bias, D, i, last_row, j, last_col):
    """Y[i:i+4, j:j+2] = bias[j:j+2] + X[i:i+4] W[j:j+2]ᵀ: dense._dot_8x3's arithmetic
    (16 partial sums an element, the last D % 16 masked, vsum's tree, then the bias), so
    the same bits, in a third of its size: the logits are a few units wide, and the 8x3
    tile, inlined here, about doubles this kernel's compile time."""
    r0 = min(i, last_row); r1 = min(i + 1, last_row); r2 = min(i + 2, last_row); r3 = min(i + 3, last_row)
    x0 = r0 * D; x1 = r1 * D; x2 = r2 * D; x3 = r3 * D
    j0 = min(j, last_col); j1 = min(j + 1, last_col)
    w0 = j0 * D; w1 = j1 * D
    s00 = vload(w, 0, 0); s01 = s00; s10 = s00; s11 = s00; s20 = s00; s21 = s00; s30 = s00; s31 = s00
    full = D // LANES * LANES
    for k in range(0, full, LANES):
        b0 = vload(w, w0 + k, LANES); b1 = vload(w, w1 + k, LANES)
        a = vload(x, x0 + k, LANES); s00 = vfma(a, b0, s00); s01 = vfma(a, b1, s01)
        a = vload(x, x1 + k, LANES); s10 = vfma(a, b0, s10); s11 = vfma(a, b1, s11)
        a = vload(x, x2 + k, LANES); s20 = vfma(a, b0, s20); s21 = vfma(a, b1, s21)
        a = vload(x, x3 + k, LANES); s30 = vfma(a, b0, s30); s31 = vfma(a, b1, s31)
    if full < D:  # the last D % 16, masked (as in _dot_8x3)
        k = full
        n = D - full
        b0 = vload(w, w0 + k, n); b1 = vload(w, w1 + k, n)
        a = vload(x, x0 + k, n); s00 = vfma(a, b0, s00); s01 = vfma(a, b1, s01)
        a = vload(x, x1 + k, n); s10 = vfma(a, b0, s10); s11 = vfma(a, b1, s11)
        a = vload(x, x2 + k, n); s20 = vfma(a, b0, s20); s21 = vfma(a, b1, s21)
        a = vload(x, x3 + k, n); s30 = vfma(a, b0, s30); s31 = vfma(a, b1, s31)
    r = vsums((s00, s10, s20, s30, s01, s11, s21, s31))
    c0 = bias[j0]; c1 = bias[j1]
    y[r0 * H + j0] = c0 + lane(r, 0); y[r0 * H + j1] = c1 + lane(r, 4)
    y[r1 * H + j0] = c0 + lane(r, 1); y[r1 * H + j1] = c1 + lane(r, 5)
    y[r2 * H + j0] = c0 + lane(r, 2); y[r2 * H + j1] = c1 + lane(r, 6)
    y[r3 * H + j0] = c0 + lane(r, 3); y[r3 * H + j1] = c1 + lane(r, 7)


def _example(d):
    y, x, w = np.empty((2, 2), d), np.ones((2, 3), d), np.ones((2, 3), d)
    return (y, np.empty_like(y), np.empty(2, d), np.empty_like(y), np.empty_like(x), np.empty_like(w),
            np.empty(2, d), x, w, np.zeros(2, d), np.eye(2, dtype=d), x, 1, np.zeros(3, d), PARTS, True)


@fast(replaces=("dense_forward", "softmax_cross_entropy_forward", "softmax_cross_entropy_backward",
                "dense_backward", "activation_backward"), example=_example, needs=("float32", "avx512"), seconds=6.0)
@kernel(parallel=True)
def head_step(Z, P, L, dZ, dX, dW, db, X, W, b, T, S, kind, zeros, parts, input_grad):
    """Logits, softmax, per-row losses and every gradient of the head (module header);
    returns the mean loss. All arrays C-contiguous float32, shapes as the header, none
    aliasing another; S[B, D] is read only when kind >= 0 (an ACTIVATIONS code; -1: none).
    zeros: at least D zeros. parts: shares of the batch for the first loop (the threads
    Numba may start: _share.PARTS)."""
    B, D = X.shape
    K = W.shape[0]
    z, p, dz, x, w, bp, t = address(Z), address(P), address(dZ), address(X), address(W), address(b), address(T)
    dx, dw, zp, sp = address(dX), address(dW), address(zeros), address(S)
    share = -(-B // max(1, parts))
    share = -(-share // SHARE) * SHARE
    shares = -(-B // share) if B > 0 else 0
    for s in prange(shares):
        lo = s * share
        hi = min(lo + share, B)
        # Z = X Wᵀ + b for rows lo..hi, dense_forward_tiles' arithmetic in 4x2 tiles; rows
        # past hi - 1 repeat it (never another share's rows).
        for i in range(lo, hi, 4):
            for j in range(0, K, 2):
                _dot_4x2(z, K, x, w, bp, D, i, hi - 1, j, K - 1)
        # softmax_cross_entropy_forward's passes, over these rows.
        _shift_rows(P, Z, lo, hi)
        for n in range(lo * K, hi * K):
            p[n] = vexp(p[n])
        _normalize_rows(P, L, Z, T, lo, hi)
        # softmax_cross_entropy_backward's dZ.
        for n in range(lo * K, hi * K):
            dz[n] = (p[n] - t[n]) / B
        # dX = dZ W for these rows: matmul's tiles, as matmul_nn(dX, dZ, W, zeros).
        if input_grad:
            for i in range(lo, hi, ROWS):
                # 16 columns a tile only: 6x64 tiles here and in dW below would add
                # about 5 s to this kernel's compile time, for 1-2 us a step.
                for j in range(0, D, LANES):
                    _tile_6x16(dx, dz, K, 1, w, zp, hi, D, i, j, min(LANES, D - j), 0, K)
            # Through the activation, while these rows are in cache.
            if kind >= 0:
                for n in range(lo * D, hi * D):
                    dx[n] = dx[n] * _df(kind, sp[n], x[n])
    # dW = dZᵀ X: matmul's tiles, as matmul_tn(dW, dZ, X, zeros); row groups of 6 by
    # column blocks of 64, a block's groups one after the other, so that a thread reads
    # only its blocks' columns of X (written by both threads in the loop above), and reads
    # them for the second group from its L1 cache.
    groups = -(-K // ROWS)
    blocks = -(-D // 64)
    for g in prange(groups * blocks):
        i = g % groups * ROWS
        j0 = g // groups * 64
        for j in range(j0, min(j0 + 64, D), LANES):  # 16 columns a tile (compile time, as dX)
            _tile_6x16(dw, dz, 1, K, x, zp, K, D, i, j, min(LANES, D - j), 0, B)
    # db: dense.column_sums' order, rows added one after another.
    one = like(db, 1.0)
    for j in range(0, K, LANES):
        n = min(LANES, K - j)
        acc = vload(dZ[0], j, n) if B > 0 else vload(zeros, 0, n)
        for i in range(1, B):
            acc = vfma(one, vload(dZ[i], j, n), acc)
        vstore(db, j, acc, n)
    return _mean(L[:B])
