"""Matrix products in outer-product form: Y = bias + A B, with A read as it is or transposed.

Shapes: Y[M, N], B[K, N], bias[N]. matmul_nn takes A[M, K]; matmul_tn takes A[K, M] and
uses Aᵀ; both call the one kernel, matmul. The dense layer's backward pass (B batch, D in, H out) calls them as
    dW[H, D] = dYᵀ X    matmul_tn(dW, dY, X, 0)
    dX[B, D] = dY W     matmul_nn(dX, dY, W, 0)
reading every operand where it is, without copies.
A tile owns 6 rows and `width` columns of Y (64: 4 vectors of 16, or 16: one vector) and
keeps their sums in registers while k runs over K, each step multiplying 6 numbers of A
by one row of B: 24 fused multiply-adds on 512-bit registers for a 6 x 64 float32 tile
(the shape BLAS kernels use on AVX-512). Every element of Y is one sum, bias first, then
k in order, each step one fused multiply-add, owned by one work item: the result does
not depend on the thread count, which thread ran the item, the tile width or the vector
width. Columns past
the last multiple of 16 use partial vectors; rows past the last multiple of 6 repeat the
last row (computed and stored again, the same bits).
"""
import numpy as np
from numba import prange

from .._math import like
from .._runtime.jit import host_has_avx512, kernel
from ._share import PARTS, SLOT, claim, counters, deal
from ._simd import LANES, address, at, vfma, vload, vstore

ROWS = 6      # rows of a tile
CHUNK = 4     # row groups (tiles of 6 rows) an iteration owns
DEPTH = 64    # k panel: rows of B a chunk's tiles run through before the next panel
WIDE_TILES = host_has_avx512()


def tile_columns(dtype):
    """Columns a tile owns: 64 for float32 where the CPU has AVX-512 (24 of its 32
    vector registers hold the tile's sums); else 16 (a 6 x 64 tile of float64, or of
    float32 in 16 AVX2 registers, would not fit in registers)."""
    return 64 if WIDE_TILES and np.dtype(dtype) == np.float32 else 16


@kernel(inline="always")
def _tile_6x64(y, a, rs, ks, b, bias, M, N, i, j, k0, k1):
    """Y[i:i+6, j:j+64] = (bias[j:j+64] if k0 == 0 else Y[i:i+6, j:j+64])
                          + (rows i..i+5 of A)[:, k0:k1] B[k0:k1, j:j+64],
    for pointers y, a, b, bias to Y[M, N], A (element (r, k) at r * rs + k * ks), B[K, N]
    and bias (pointers, unlike arrays, cost no reference counting in an inlined tile).
    Rows past M - 1 repeat row M - 1: they compute and store its values again, the same
    bits, so a last group of 1 to 5 rows runs at the full tile's speed."""
    r0 = min(i + 0, M - 1); r1 = min(i + 1, M - 1); r2 = min(i + 2, M - 1)
    r3 = min(i + 3, M - 1); r4 = min(i + 4, M - 1); r5 = min(i + 5, M - 1)
    if k0 == 0:
        c0 = vload(bias, j, LANES); c1 = vload(bias, j + 16, LANES)
        c2 = vload(bias, j + 32, LANES); c3 = vload(bias, j + 48, LANES)
        s00 = c0; s01 = c1; s02 = c2; s03 = c3
        s10 = c0; s11 = c1; s12 = c2; s13 = c3
        s20 = c0; s21 = c1; s22 = c2; s23 = c3
        s30 = c0; s31 = c1; s32 = c2; s33 = c3
        s40 = c0; s41 = c1; s42 = c2; s43 = c3
        s50 = c0; s51 = c1; s52 = c2; s53 = c3
    else:
        o = r0 * N + j; s00 = vload(y, o + 0, LANES); s01 = vload(y, o + 16, LANES); s02 = vload(y, o + 32, LANES); s03 = vload(y, o + 48, LANES)
        o = r1 * N + j; s10 = vload(y, o + 0, LANES); s11 = vload(y, o + 16, LANES); s12 = vload(y, o + 32, LANES); s13 = vload(y, o + 48, LANES)
        o = r2 * N + j; s20 = vload(y, o + 0, LANES); s21 = vload(y, o + 16, LANES); s22 = vload(y, o + 32, LANES); s23 = vload(y, o + 48, LANES)
        o = r3 * N + j; s30 = vload(y, o + 0, LANES); s31 = vload(y, o + 16, LANES); s32 = vload(y, o + 32, LANES); s33 = vload(y, o + 48, LANES)
        o = r4 * N + j; s40 = vload(y, o + 0, LANES); s41 = vload(y, o + 16, LANES); s42 = vload(y, o + 32, LANES); s43 = vload(y, o + 48, LANES)
        o = r5 * N + j; s50 = vload(y, o + 0, LANES); s51 = vload(y, o + 16, LANES); s52 = vload(y, o + 32, LANES); s53 = vload(y, o + 48, LANES)
    for k in range(k0, k1):
        o = k * N + j
        b0 = vload(b, o, LANES); b1 = vload(b, o + 16, LANES)
        b2 = vload(b, o + 32, LANES); b3 = vload(b, o + 48, LANES)
        o = k * ks
        x = at(a, r0 * rs + o)
        s00 = vfma(x, b0, s00); s01 = vfma(x, b1, s01); s02 = vfma(x, b2, s02); s03 = vfma(x, b3, s03)
        x = at(a, r1 * rs + o)
        s10 = vfma(x, b0, s10); s11 = vfma(x, b1, s11); s12 = vfma(x, b2, s12); s13 = vfma(x, b3, s13)
        x = at(a, r2 * rs + o)
        s20 = vfma(x, b0, s20); s21 = vfma(x, b1, s21); s22 = vfma(x, b2, s22); s23 = vfma(x, b3, s23)
        x = at(a, r3 * rs + o)
        s30 = vfma(x, b0, s30); s31 = vfma(x, b1, s31); s32 = vfma(x, b2, s32); s33 = vfma(x, b3, s33)
        x = at(a, r4 * rs + o)
        s40 = vfma(x, b0, s40); s41 = vfma(x, b1, s41); s42 = vfma(x, b2, s42); s43 = vfma(x, b3, s43)
        x = at(a, r5 * rs + o)
        s50 = vfma(x, b0, s50); s51 = vfma(x, b1, s51); s52 = vfma(x, b2, s52); s53 = vfma(x, b3, s53)
    o = r0 * N + j; vstore(y, o + 0, s00, LANES); vstore(y, o + 16, s01, LANES); vstore(y, o + 32, s02, LANES); vstore(y, o + 48, s03, LANES)
    o = r1 * N + j; vstore(y, o + 0, s10, LANES); vstore(y, o + 16, s11, LANES); vstore(y, o + 32, s12, LANES); vstore(y, o + 48, s13, LANES)
    o = r2 * N + j; vstore(y, o + 0, s20, LANES); vstore(y, o + 16, s21, LANES); vstore(y, o + 32, s22, LANES); vstore(y, o + 48, s23, LANES)
    o = r3 * N + j; vstore(y, o + 0, s30, LANES); vstore(y, o + 16, s31, LANES); vstore(y, o + 32, s32, LANES); vstore(y, o + 48, s33, LANES)
    o = r4 * N + j; vstore(y, o + 0, s40, LANES); vstore(y, o + 16, s41, LANES); vstore(y, o + 32, s42, LANES); vstore(y, o + 48, s43, LANES)
    o = r5 * N + j; vstore(y, o + 0, s50, LANES); vstore(y, o + 16, s51, LANES); vstore(y, o + 32, s52, LANES); vstore(y, o + 48, s53, LANES)


@kernel(inline="always")
def _tile_6x16(y, a, rs, ks, b, bias, M, N, i, j, n, k0, k1):
    """As _tile_6x64 for Y[i:i+6, j:j+n], n <= 16 columns: one (partial) vector a row."""
    r0 = min(i, M - 1); r1 = min(i + 1, M - 1); r2 = min(i + 2, M - 1)
    r3 = min(i + 3, M - 1); r4 = min(i + 4, M - 1); r5 = min(i + 5, M - 1)
    if k0 == 0:
        c = vload(bias, j, n)
        s0 = c; s1 = c; s2 = c; s3 = c; s4 = c; s5 = c
    else:
        s0 = vload(y, r0 * N + j, n); s1 = vload(y, r1 * N + j, n); s2 = vload(y, r2 * N + j, n)
        s3 = vload(y, r3 * N + j, n); s4 = vload(y, r4 * N + j, n); s5 = vload(y, r5 * N + j, n)
    for k in range(k0, k1):
        v = vload(b, k * N + j, n)
        o = k * ks
        s0 = vfma(at(a, r0 * rs + o), v, s0)
        s1 = vfma(at(a, r1 * rs + o), v, s1)
        s2 = vfma(at(a, r2 * rs + o), v, s2)
        s3 = vfma(at(a, r3 * rs + o), v, s3)
        s4 = vfma(at(a, r4 * rs + o), v, s4)
        s5 = vfma(at(a, r5 * rs + o), v, s5)
    vstore(y, r0 * N + j, s0, n); vstore(y, r1 * N + j, s1, n); vstore(y, r2 * N + j, s2, n)
    vstore(y, r3 * N + j, s3, n); vstore(y, r4 * N + j, s4, n); vstore(y, r5 * N + j, s5, n)


@kernel(parallel=True)
def matmul(Y, A, B, bias, width, transposed, S, sums, parts, counters):
    """Y = bias + A B (transposed false: A[M, K]) or bias + Aᵀ B (transposed true:
    A[K, M]), for B[K, N], in place; all C-contiguous, one dtype, Y not aliasing A, B or
    bias; shapes unchecked (matmul_nn and matmul_tn check them). width: the
    columns a tile owns, 64 (float32 on AVX-512) or 16; tile_columns(dtype) picks (without
    AVX-512, a block of 64 runs as four tiles of 16: the same sums).
    With sums true (and transposed true), also S[m] = sum_k A[k, m], k in order, as
    dense.column_sums(S, A) adds them (same bits): the dense layer's bias gradient
    without a kernel call of its own; each chunk's first column block adds its rows. The
    tiles read A through a flat view, element (r, k) at r * rs + k * ks, so one compiled
    kernel serves both forms (half the compile time of two).
    A work item owns a block of `width` columns (one block may be narrower: see
    `narrow` below) and CHUNK row groups of Y, and walks
    k in panels of DEPTH: the panel's rows of B (DEPTH x 64 float32 = 16 kB) stay in
    the L1 cache while the chunk's row groups use them, and the sums wait in Y between
    panels (stored and reloaded exactly, so the order of the sum does not change).
    The items are split into `parts` contiguous shares, one a thread to begin with; a
    thread that finishes its share takes the last items of the others
    (kernels/_share.py; counters: make_counters(parts)). Where Y has more rows than
    columns (M > N) items run along a chunk's column blocks, so each thread reads its
    share of A once; otherwise down a column block's chunks, so each thread reads its
    share of B once."""
    M = A.shape[1] if transposed else A.shape[0]
    K = B.shape[0]
    N = B.shape[1]
    yp, ap, bp, cp = address(Y), address(A), address(B), address(bias)
    rs = 1 if transposed else K   # step between rows of the product's A
    ks = M if transposed else 1   # step along k
    groups = (M + ROWS - 1) // ROWS
    chunks = (groups + CHUNK - 1) // CHUNK
    blocks = (N + width - 1) // width
    # The narrow block (the last N % width columns) goes in the middle of the row of
    # blocks, where the split between two threads' shares falls, rather than at the end,
    # which gave the second thread less work (dW1 of the book network: 46% of it).
    # Only where it keeps the blocks after it on whole vectors (N % width a multiple of
    # LANES: float32 rows on 64-byte lines), else it stays last.
    full = N // width
    rest = N - full * width
    narrow = full // 2 if (rest > 0 and rest % LANES == 0) else full
    one = like(bias, 1.0)
    items = blocks * chunks
    parts = max(1, min(parts, counters.shape[0] // SLOT))
    share = -(-items // parts)
    for q in range(parts):
        deal(counters, q, max(0, min(share, items - q * share)))
    for p in prange(parts):
        for r in range(parts):
            q = (p + r) % parts
            while True:
                t0, t1 = claim(counters, q, r == 0, 1)
                if t0 >= t1:
                    break
                for t in range(t0, t1):
                    item = q * share + t
                    h, c = (item // blocks, item % blocks) if M > N else (item % chunks, item // chunks)
                    if sums and c == 0:
                        for m in range(h * CHUNK * ROWS, min(h * CHUNK * ROWS + CHUNK * ROWS, M), LANES):
                            n = min(LANES, M - m)
                            s = vload(ap, m, n) if K > 0 else vload(bias, 0, 0)
                            for k in range(1, K):
                                s = vfma(one, vload(ap, k * M + m, n), s)
                            vstore(S, m, s, n)
                    j0 = c * width if c <= narrow else (c - 1) * width + rest
                    j1 = min(j0 + (rest if c == narrow else width), N)
                    for k0 in range(0, max(K, 1), DEPTH):
                        k1 = min(k0 + DEPTH, K)
                        for g in range(h * CHUNK, min(h * CHUNK + CHUNK, groups)):
                            i = g * ROWS
                            # WIDE_TILES first: Numba prunes the branch before inlining on
                            # CPUs without AVX-512, so the 6 x 64 tile is not compiled there.
                            if WIDE_TILES and j1 - j0 == 64:
                                _tile_6x64(yp, ap, rs, ks, bp, cp, M, N, i, j0, k0, k1)
                            else:
                                for j in range(j0, j1, LANES):
                                    # A whole vector with the literal LANES: plain loads. With
                                    # a run-time count every load of B is a masked one, which
                                    # on AVX2 also holds the mask in registers the 12 sums
                                    # need: half the speed on the deep network's products.
                                    if j1 - j >= LANES:
                                        _tile_6x16(yp, ap, rs, ks, bp, cp, M, N, i, j, LANES, k0, k1)
                                    else:
                                        _tile_6x16(yp, ap, rs, ks, bp, cp, M, N, i, j, j1 - j, k0, k1)


def _check(Y, A, B, bias, width, transposed):
    """The kernel reads and writes without bounds checks: shapes are checked here."""
    M, K = (A.shape[1], A.shape[0]) if transposed else A.shape
    if B.shape[0] != K or Y.shape != (M, B.shape[1]) or bias.shape[0] < B.shape[1] or width not in (16, 64):
        raise ValueError(f"matmul: Y {Y.shape}, A {A.shape}{' transposed' if transposed else ''}, "
                         f"B {B.shape}, bias {bias.shape}, width {width} do not fit")


def matmul_nn(Y, A, B, bias, width):
    """Y = bias + A B for A[M, K], B[K, N], in place; all C-contiguous, one dtype; Y must
    not alias A, B or bias."""
    _check(Y, A, B, bias, width, False)
    matmul(Y, A, B, bias, width, False, bias, False, PARTS, counters())


def matmul_tn(Y, A, B, bias, width, S=None):
    """Y = bias + Aᵀ B for A[K, M], B[K, N], in place; as matmul_nn. With S[M] given,
    also S = the column sums of A (dense.column_sums' order and bits)."""
    _check(Y, A, B, bias, width, True)
    if S is not None and not (S.ndim == 1 and S.shape[0] == Y.shape[0] and S.dtype == Y.dtype and S.flags.c_contiguous):
        raise ValueError(f"matmul_tn: S {S.shape} does not fit Y {Y.shape}")
    matmul(Y, A, B, bias, width, True, bias if S is None else S, S is not None, PARTS, counters())
