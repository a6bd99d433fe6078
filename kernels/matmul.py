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
k in order, each step one fused multiply-add, owned by one prange iteration: the result
does not depend on the thread count, the tile width or the vector width. Columns past
the last multiple of 16 use partial vectors; rows past the last multiple of 6 one-row
tiles.
"""
import numpy as np
from numba import prange

from ._jit import host_has_avx512, kernel
from ._simd import LANES, at, vfma, vload, vstore

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
def _tile_6x64(Y, a, rs, ks, B, bias, i, j, k0, k1):
    """Y[i:i+6, j:j+64] = (bias[j:j+64] if k0 == 0 else Y[i:i+6, j:j+64])
                          + (rows i..i+5 of A)[:, k0:k1] B[k0:k1, j:j+64]."""
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
        y = Y[i]; s00 = vload(y, j, LANES); s01 = vload(y, j + 16, LANES); s02 = vload(y, j + 32, LANES); s03 = vload(y, j + 48, LANES)
        y = Y[i + 1]; s10 = vload(y, j, LANES); s11 = vload(y, j + 16, LANES); s12 = vload(y, j + 32, LANES); s13 = vload(y, j + 48, LANES)
        y = Y[i + 2]; s20 = vload(y, j, LANES); s21 = vload(y, j + 16, LANES); s22 = vload(y, j + 32, LANES); s23 = vload(y, j + 48, LANES)
        y = Y[i + 3]; s30 = vload(y, j, LANES); s31 = vload(y, j + 16, LANES); s32 = vload(y, j + 32, LANES); s33 = vload(y, j + 48, LANES)
        y = Y[i + 4]; s40 = vload(y, j, LANES); s41 = vload(y, j + 16, LANES); s42 = vload(y, j + 32, LANES); s43 = vload(y, j + 48, LANES)
        y = Y[i + 5]; s50 = vload(y, j, LANES); s51 = vload(y, j + 16, LANES); s52 = vload(y, j + 32, LANES); s53 = vload(y, j + 48, LANES)
    for k in range(k0, k1):
        row = B[k]
        b0 = vload(row, j, LANES); b1 = vload(row, j + 16, LANES)
        b2 = vload(row, j + 32, LANES); b3 = vload(row, j + 48, LANES)
        o = i * rs + k * ks
        x = at(a, o)
        s00 = vfma(x, b0, s00); s01 = vfma(x, b1, s01); s02 = vfma(x, b2, s02); s03 = vfma(x, b3, s03)
        x = at(a, o + 1 * rs)
        s10 = vfma(x, b0, s10); s11 = vfma(x, b1, s11); s12 = vfma(x, b2, s12); s13 = vfma(x, b3, s13)
        x = at(a, o + 2 * rs)
        s20 = vfma(x, b0, s20); s21 = vfma(x, b1, s21); s22 = vfma(x, b2, s22); s23 = vfma(x, b3, s23)
        x = at(a, o + 3 * rs)
        s30 = vfma(x, b0, s30); s31 = vfma(x, b1, s31); s32 = vfma(x, b2, s32); s33 = vfma(x, b3, s33)
        x = at(a, o + 4 * rs)
        s40 = vfma(x, b0, s40); s41 = vfma(x, b1, s41); s42 = vfma(x, b2, s42); s43 = vfma(x, b3, s43)
        x = at(a, o + 5 * rs)
        s50 = vfma(x, b0, s50); s51 = vfma(x, b1, s51); s52 = vfma(x, b2, s52); s53 = vfma(x, b3, s53)
    y = Y[i]; vstore(y, j, s00, LANES); vstore(y, j + 16, s01, LANES); vstore(y, j + 32, s02, LANES); vstore(y, j + 48, s03, LANES)
    y = Y[i + 1]; vstore(y, j, s10, LANES); vstore(y, j + 16, s11, LANES); vstore(y, j + 32, s12, LANES); vstore(y, j + 48, s13, LANES)
    y = Y[i + 2]; vstore(y, j, s20, LANES); vstore(y, j + 16, s21, LANES); vstore(y, j + 32, s22, LANES); vstore(y, j + 48, s23, LANES)
    y = Y[i + 3]; vstore(y, j, s30, LANES); vstore(y, j + 16, s31, LANES); vstore(y, j + 32, s32, LANES); vstore(y, j + 48, s33, LANES)
    y = Y[i + 4]; vstore(y, j, s40, LANES); vstore(y, j + 16, s41, LANES); vstore(y, j + 32, s42, LANES); vstore(y, j + 48, s43, LANES)
    y = Y[i + 5]; vstore(y, j, s50, LANES); vstore(y, j + 16, s51, LANES); vstore(y, j + 32, s52, LANES); vstore(y, j + 48, s53, LANES)


@kernel(inline="always")
def _tile_6x16(Y, a, rs, ks, B, bias, i, j, n, k0, k1):
    """As _tile_6x64 for Y[i:i+6, j:j+n], n <= 16 columns: one (partial) vector a row."""
    if k0 == 0:
        c = vload(bias, j, n)
        s0 = c; s1 = c; s2 = c; s3 = c; s4 = c; s5 = c
    else:
        s0 = vload(Y[i], j, n); s1 = vload(Y[i + 1], j, n); s2 = vload(Y[i + 2], j, n)
        s3 = vload(Y[i + 3], j, n); s4 = vload(Y[i + 4], j, n); s5 = vload(Y[i + 5], j, n)
    for k in range(k0, k1):
        b = vload(B[k], j, n)
        o = i * rs + k * ks
        s0 = vfma(at(a, o), b, s0)
        s1 = vfma(at(a, o + rs), b, s1)
        s2 = vfma(at(a, o + 2 * rs), b, s2)
        s3 = vfma(at(a, o + 3 * rs), b, s3)
        s4 = vfma(at(a, o + 4 * rs), b, s4)
        s5 = vfma(at(a, o + 5 * rs), b, s5)
    vstore(Y[i], j, s0, n); vstore(Y[i + 1], j, s1, n); vstore(Y[i + 2], j, s2, n)
    vstore(Y[i + 3], j, s3, n); vstore(Y[i + 4], j, s4, n); vstore(Y[i + 5], j, s5, n)


@kernel(inline="always")
def _tile_1x16(Y, a, rs, ks, B, bias, i, j, n, k0, k1):
    """As _tile_6x64 for Y[i, j:j+n], one row, n <= 16."""
    s = vload(bias, j, n) if k0 == 0 else vload(Y[i], j, n)
    for k in range(k0, k1):
        s = vfma(at(a, i * rs + k * ks), vload(B[k], j, n), s)
    vstore(Y[i], j, s, n)


@kernel(parallel=True)
def matmul(Y, A, B, bias, width, transposed):
    """Y = bias + A B (transposed false: A[M, K]) or bias + Aᵀ B (transposed true:
    A[K, M]), for B[K, N], in place; all C-contiguous, one dtype, Y not aliasing A, B or
    bias; shapes unchecked (matmul_nn and matmul_tn check them). width: the
    columns a tile owns, 64 (float32 on AVX-512) or 16; tile_columns(dtype) picks. The
    tiles read A through a flat view, element (r, k) at r * rs + k * ks, so one compiled
    kernel serves both forms (half the compile time of two).
    An iteration owns a block of `width` columns and CHUNK row groups of Y, and walks
    k in panels of DEPTH: the panel's rows of B (DEPTH x 64 float32 = 16 kB) stay in
    the L1 cache while the chunk's row groups use them, and the sums wait in Y between
    panels (stored and reloaded exactly, so the order of the sum does not change).
    prange hands each thread a contiguous run of iterations. Where Y has more rows than
    columns (M > N) they run along a chunk's column blocks, so each thread reads its
    share of A once; otherwise down a column block's chunks, so each thread reads its
    share of B once."""
    M = A.shape[1] if transposed else A.shape[0]
    K = B.shape[0]
    N = B.shape[1]
    a = A.reshape(A.size)
    rs = 1 if transposed else K   # step between rows of the product's A
    ks = M if transposed else 1   # step along k
    groups = (M + ROWS - 1) // ROWS
    chunks = (groups + CHUNK - 1) // CHUNK
    blocks = (N + width - 1) // width
    for t in prange(blocks * chunks):
        h, c = (t // blocks, t % blocks) if M > N else (t % chunks, t // chunks)
        j0 = c * width
        j1 = min(j0 + width, N)
        for k0 in range(0, max(K, 1), DEPTH):
            k1 = min(k0 + DEPTH, K)
            for g in range(h * CHUNK, min(h * CHUNK + CHUNK, groups)):
                i = g * ROWS
                if i + ROWS <= M and j1 - j0 == 64:
                    _tile_6x64(Y, a, rs, ks, B, bias, i, j0, k0, k1)
                elif i + ROWS <= M:
                    for j in range(j0, j1, LANES):
                        _tile_6x16(Y, a, rs, ks, B, bias, i, j, min(LANES, j1 - j), k0, k1)
                else:
                    for r in range(i, M):
                        for j in range(j0, j1, LANES):
                            _tile_1x16(Y, a, rs, ks, B, bias, r, j, min(LANES, j1 - j), k0, k1)


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
    matmul(Y, A, B, bias, width, False)


def matmul_tn(Y, A, B, bias, width):
    """Y = bias + Aᵀ B for A[K, M], B[K, N], in place; as matmul_nn."""
    _check(Y, A, B, bias, width, True)
    matmul(Y, A, B, bias, width, True)
