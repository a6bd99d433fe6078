"""Fast dense layer: replaces the plain layer's dense_forward and dense_backward
(kernels/dense.py) with register tiles. Shapes as there: X[B, D], W[H, D], b[H], Y[B, H].
    forward  Y[i, j] = b[j] + sum_k X[i, k] W[j, k]: dot products, both operands read
             along k: 8x3 tiles of 16-lane vectors for float32 on AVX-512 CPUs
             (dense_forward_tiles), else 2x4 tiles that Numba vectorises itself
             (dense_forward_dot).
    dW = dYᵀ X and dX = dY W: outer-product tiles that read dY, X and W in place
             (kernels/fast/matmul.py).
The forward pass could use the outer-product tiles too, but they need Wᵀ, and copying W
every step made whole epochs no faster (BENCHMARKS.md, History, commit 50f8afe). All arrays
are C-contiguous and of one dtype (the network's buffers are). Every output element is
owned by one prange iteration or work item (kernels/fast/_share.py) and summed in a fixed
order: results do not depend on the thread count or on which thread ran what, but differ
from the plain layer's in the last bits (another order of the same sums).
"""
from numba import prange

from .._math import like
from .._runtime.jit import FAST, kernel
from .._runtime.registry import fast
from ._share import PARTS, SLOT, claim, counters, deal
from ._simd import LANES, address, lane, prefetch, vfma, vload, vstore, vsums
from .matmul import matmul
BLOCK_BYTES = 1 << 18  # dense_forward_tiles: rows of W a thread runs through the batch with
# dense_forward_tiles: another thread takes a share's items only while this many are
# left (it has to bring that share's rows of W to its own core first).
KEEP_ROWS = 2

# dense_forward gives each thread blocks of 16 columns from this many output units on
# (faster on the deep network's 1200-unit layers: BENCHMARKS.md, History, commit e7cf420);
# narrower layers keep 4-column blocks, so that there are enough blocks to share.
WIDE_MIN_UNITS = 256


@kernel(inline="always")
def _nt_tile(Y, A, Bt, bias, i, j):
    """Y[i:i+2, j:j+4] = bias[j:j+4] + A[i:i+2] Bt[j:j+4]ᵀ: a 2x4 register tile of 8
    accumulators, both operands read along k: with 16 AVX2 registers, 8 vectorised sums
    and the 6 rows they read fit, where a 4x4 tile's 16 sums spilled."""
    K = A.shape[1]
    s00 = bias[j]; s01 = bias[j + 1]; s02 = bias[j + 2]; s03 = bias[j + 3]
    s10 = bias[j]; s11 = bias[j + 1]; s12 = bias[j + 2]; s13 = bias[j + 3]
    for k in range(K):
        a0 = A[i, k]; a1 = A[i + 1, k]
        w0 = Bt[j, k]; w1 = Bt[j + 1, k]; w2 = Bt[j + 2, k]; w3 = Bt[j + 3, k]
        s00 += a0 * w0; s01 += a0 * w1; s02 += a0 * w2; s03 += a0 * w3
        s10 += a1 * w0; s11 += a1 * w1; s12 += a1 * w2; s13 += a1 * w3
    Y[i, j] = s00; Y[i, j + 1] = s01; Y[i, j + 2] = s02; Y[i, j + 3] = s03
    Y[i + 1, j] = s10; Y[i + 1, j + 1] = s11; Y[i + 1, j + 2] = s12; Y[i + 1, j + 3] = s13


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
    """Y[:, j0:j1] = bias + A Bt[j0:j1]ᵀ. Rows 2 at a time, and for each pair of rows
    the block's columns 4 at a time, so a block of 16 columns writes whole cache lines
    of Y before moving on; a leftover row takes 1x4 tiles, leftover columns (fewer than 4)
    plain dot products."""
    R, K = A.shape
    jt = j0 + (j1 - j0) // 4 * 4
    i = 0
    while i + 2 <= R:
        for j in range(j0, jt, 4):
            _nt_tile(Y, A, Bt, bias, i, j)
        i += 2
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


@kernel(inline="always")
def _dot_8x3(y, H, x, w, bias, D, i, last_row, j, last_col, ahead):
    """Y[i:i+8, j:j+3] = bias[j:j+3] + X[i:i+8] W[j:j+3]ᵀ, given pointers y, x, w, bias to
    Y[B, H], X[B, D], W[H, D] and b: 24 vector sums, k 16 at a time (plain loads), then
    the last D % 16 (masked loads, which cost an extra instruction each). Rows past
    last_row and columns past last_col repeat the last one (the same bits, stored
    again), so the batch and the units need not be multiples of 8 and 3. Meanwhile it
    prefetches the row of X that starts at element `ahead`, one cache line a step."""
    i0 = min(i + 0, last_row); i1 = min(i + 1, last_row); i2 = min(i + 2, last_row); i3 = min(i + 3, last_row)
    i4 = min(i + 4, last_row); i5 = min(i + 5, last_row); i6 = min(i + 6, last_row); i7 = min(i + 7, last_row)
    x0 = i0 * D; x1 = i1 * D; x2 = i2 * D; x3 = i3 * D; x4 = i4 * D; x5 = i5 * D; x6 = i6 * D; x7 = i7 * D
    j0 = min(j + 0, last_col); j1 = min(j + 1, last_col); j2 = min(j + 2, last_col)
    w0 = j0 * D; w1 = j1 * D; w2 = j2 * D
    z = vload(w, 0, 0)  # 16 zeros
    s00 = z; s01 = z; s02 = z
    s10 = z; s11 = z; s12 = z
    s20 = z; s21 = z; s22 = z
    s30 = z; s31 = z; s32 = z
    s40 = z; s41 = z; s42 = z
    s50 = z; s51 = z; s52 = z
    s60 = z; s61 = z; s62 = z
    s70 = z; s71 = z; s72 = z
    full = D // LANES * LANES
    for k in range(0, full, LANES):
        prefetch(x, ahead + k)
        b0 = vload(w, w0 + k, LANES); b1 = vload(w, w1 + k, LANES); b2 = vload(w, w2 + k, LANES)
        a = vload(x, x0 + k, LANES); s00 = vfma(a, b0, s00); s01 = vfma(a, b1, s01); s02 = vfma(a, b2, s02)
        a = vload(x, x1 + k, LANES); s10 = vfma(a, b0, s10); s11 = vfma(a, b1, s11); s12 = vfma(a, b2, s12)
        a = vload(x, x2 + k, LANES); s20 = vfma(a, b0, s20); s21 = vfma(a, b1, s21); s22 = vfma(a, b2, s22)
        a = vload(x, x3 + k, LANES); s30 = vfma(a, b0, s30); s31 = vfma(a, b1, s31); s32 = vfma(a, b2, s32)
        a = vload(x, x4 + k, LANES); s40 = vfma(a, b0, s40); s41 = vfma(a, b1, s41); s42 = vfma(a, b2, s42)
        a = vload(x, x5 + k, LANES); s50 = vfma(a, b0, s50); s51 = vfma(a, b1, s51); s52 = vfma(a, b2, s52)
        a = vload(x, x6 + k, LANES); s60 = vfma(a, b0, s60); s61 = vfma(a, b1, s61); s62 = vfma(a, b2, s62)
        a = vload(x, x7 + k, LANES); s70 = vfma(a, b0, s70); s71 = vfma(a, b1, s71); s72 = vfma(a, b2, s72)
    if full < D:
        k = full
        n = D - full
        b0 = vload(w, w0 + k, n); b1 = vload(w, w1 + k, n); b2 = vload(w, w2 + k, n)
        a = vload(x, x0 + k, n); s00 = vfma(a, b0, s00); s01 = vfma(a, b1, s01); s02 = vfma(a, b2, s02)
        a = vload(x, x1 + k, n); s10 = vfma(a, b0, s10); s11 = vfma(a, b1, s11); s12 = vfma(a, b2, s12)
        a = vload(x, x2 + k, n); s20 = vfma(a, b0, s20); s21 = vfma(a, b1, s21); s22 = vfma(a, b2, s22)
        a = vload(x, x3 + k, n); s30 = vfma(a, b0, s30); s31 = vfma(a, b1, s31); s32 = vfma(a, b2, s32)
        a = vload(x, x4 + k, n); s40 = vfma(a, b0, s40); s41 = vfma(a, b1, s41); s42 = vfma(a, b2, s42)
        a = vload(x, x5 + k, n); s50 = vfma(a, b0, s50); s51 = vfma(a, b1, s51); s52 = vfma(a, b2, s52)
        a = vload(x, x6 + k, n); s60 = vfma(a, b0, s60); s61 = vfma(a, b1, s61); s62 = vfma(a, b2, s62)
        a = vload(x, x7 + k, n); s70 = vfma(a, b0, s70); s71 = vfma(a, b1, s71); s72 = vfma(a, b2, s72)
    c0 = bias[j0]; c1 = bias[j1]; c2 = bias[j2]
    r = vsums((s00, s10, s20, s30, s40, s50, s60, s70, s01, s11, s21, s31, s41, s51, s61, s71))
    q = vsums((s02, s12, s22, s32, s42, s52, s62, s72))
    o = i0 * H; y[o + j0] = c0 + lane(r, 0); y[o + j1] = c1 + lane(r, 8); y[o + j2] = c2 + lane(q, 0)
    o = i1 * H; y[o + j0] = c0 + lane(r, 1); y[o + j1] = c1 + lane(r, 9); y[o + j2] = c2 + lane(q, 1)
    o = i2 * H; y[o + j0] = c0 + lane(r, 2); y[o + j1] = c1 + lane(r, 10); y[o + j2] = c2 + lane(q, 2)
    o = i3 * H; y[o + j0] = c0 + lane(r, 3); y[o + j1] = c1 + lane(r, 11); y[o + j2] = c2 + lane(q, 3)
    o = i4 * H; y[o + j0] = c0 + lane(r, 4); y[o + j1] = c1 + lane(r, 12); y[o + j2] = c2 + lane(q, 4)
    o = i5 * H; y[o + j0] = c0 + lane(r, 5); y[o + j1] = c1 + lane(r, 13); y[o + j2] = c2 + lane(q, 5)
    o = i6 * H; y[o + j0] = c0 + lane(r, 6); y[o + j1] = c1 + lane(r, 14); y[o + j2] = c2 + lane(q, 6)
    o = i7 * H; y[o + j0] = c0 + lane(r, 7); y[o + j1] = c1 + lane(r, 15); y[o + j2] = c2 + lane(q, 7)


@kernel(parallel=True)
def dense_forward_tiles(Y, X, W, b, parts, counters):
    """Y[i, j] = b[j] + sum_k X[i, k] W[j, k], in place, for float32 on AVX-512 CPUs.
    Y must not alias X. Each element is one vector of 16 partial sums (k, k + 16, ...
    in order, one fused multiply-add each, the last 16 masked), added up by vsum's fixed
    tree (vsums: 16 of them at once), then b[j] added: the bits do not depend on the tile,
    the thread count or which thread ran it.
    8x3 tiles (24 of the 32 vector registers; the 8 rows of X stay in L1 while W's rows
    go by). Each of `parts` shares (dense_forward passes PARTS, one for each thread
    Numba may start) owns a run of the units (rows of W, columns of Y), in blocks of
    BLOCK_BYTES of W; its work items are (block, group of 8 rows), in that order, so a
    thread runs through the batch with one block of W at a time and reads the same rows
    of W every step, which mostly stay in its core's cache (the optimizers split the
    flat parameters into contiguous halves too, nearly the same split for the largest
    layer; measured against splitting the batch instead: BENCHMARKS.md, History, commit
    5116902).
    A thread that finishes its share takes items from the end of another while at least
    KEEP_ROWS are left (kernels/fast/_share.py; counters: make_counters(parts))."""
    B, D = X.shape
    H = W.shape[0]
    y, x, w, bp = address(Y), address(X), address(W), address(b)
    parts = max(1, min(parts, counters.shape[0] // SLOT))
    width = -(-H // parts)
    width = -(-width // 3) * 3
    block = max(3, BLOCK_BYTES // (4 * max(D, 1)) // 3 * 3)
    shares = -(-H // max(width, 1)) if B > 0 else 0
    groups = -(-B // 8)
    for q in range(shares):
        deal(counters, q, -(-(min(q * width + width, H) - q * width) // block) * groups)
    for p in prange(shares):
        for r in range(shares):
            q = (p + r) % shares
            while True:
                t0, t1 = claim(counters, q, r == 0, KEEP_ROWS)
                if t0 >= t1:
                    break
                for t in range(t0, t1):
                    j0 = q * width + t // groups * block
                    j1 = min(j0 + block, q * width + width, H)
                    i = t % groups * 8
                    for j in range(j0, j1, 3):
                        # The next 8 rows of X, one a tile, into L2 (a batch sliced from
                        # the training set comes from memory: 12% of this kernel's time)
                        ahead = min(i + 8 + (j - j0) // 3 % 8, B - 1) * D
                        _dot_8x3(y, H, x, w, bp, D, i, B - 1, j, j1 - 1, ahead)


@kernel(parallel=True, fastmath=FAST)
def dense_forward_dot(Y, X, W, b):
    """Y[i, j] = b[j] + sum_k X[i, k] W[j, k], in place, for float64 and CPUs without
    AVX-512: Numba vectorises the k loop of 2x4 scalar tiles itself. Y must not alias X.
    Threads own blocks of 16 output columns (4 where there are fewer than WIDE_MIN_UNITS);
    each element is summed by one tile in a fixed order."""
    H = W.shape[0]
    width = 16 if H >= WIDE_MIN_UNITS else 4
    for jb in prange((H + width - 1) // width):
        _nt_block(Y, X, W, b, width * jb, min(width * jb + width, H))


def _check(Y, X, W, b):
    if not (X.ndim == Y.ndim == W.ndim == 2 and b.ndim == 1 and X.shape[0] == Y.shape[0]
            and X.shape[1] == W.shape[1] and Y.shape[1] == W.shape[0] == b.shape[0]):
        raise ValueError(f"dense_forward: shapes Y{Y.shape} X{X.shape} W{W.shape} b{b.shape} do not fit")
    if not (Y.flags.c_contiguous and X.flags.c_contiguous and W.flags.c_contiguous and b.flags.c_contiguous):
        raise ValueError("dense_forward: Y, X, W and b must be C-contiguous")


@fast(replaces=("dense_forward",), needs=("float32", "avx512"), compiled=(dense_forward_tiles,), seconds=2.2)
def dense_forward_16lane(Y, X, W, b):
    """Replaces dense_forward for float32 on AVX-512 CPUs: dense_forward_tiles with this
    thread's work-sharing counters. Raises ValueError for shapes that do not fit or
    arrays that are not C-contiguous."""
    _check(Y, X, W, b)
    dense_forward_tiles(Y, X, W, b, PARTS, counters())


@fast(replaces=("dense_forward",), compiled=(dense_forward_dot,), seconds=3.0)
def dense_forward_2x4(Y, X, W, b):
    """Replaces dense_forward for float64, and for float32 on CPUs without AVX-512:
    dense_forward_dot (faster for float64, and the only choice with 16 AVX2 registers)."""
    _check(Y, X, W, b)
    dense_forward_dot(Y, X, W, b)


def _products(dX, dW, db, dY, X, W, zeros, input_grad, width):
    D = X.shape[1]
    matmul(dW, dY, X, zeros[:D], width, True, db, True, PARTS, counters())  # dW = dYᵀ X, db = column sums of dY
    if input_grad:
        matmul(dX, dY, W, zeros[:D], width, False, db, False, PARTS, counters())  # dX = dY W


@fast(replaces=("dense_backward",), needs=("float32", "avx512"), compiled=(matmul,), seconds=4.4)
def dense_backward_6x64(dX, dW, db, dY, X, W, zeros, input_grad):
    """Replaces dense_backward for float32 on AVX-512 CPUs: outer-product tiles of 6 rows
    by 64 columns (kernels/fast/matmul.py); db from the dW product's column sums."""
    _products(dX, dW, db, dY, X, W, zeros, input_grad, 64)


@fast(replaces=("dense_backward",), compiled=(matmul,), seconds=4.4)
def dense_backward_6x16(dX, dW, db, dY, X, W, zeros, input_grad):
    """Replaces dense_backward elsewhere: the same tiles, 16 columns wide (a 6 x 64 tile
    of float64, or of float32 in 16 AVX2 registers, would not fit in registers)."""
    _products(dX, dW, db, dY, X, W, zeros, input_grad, 16)
