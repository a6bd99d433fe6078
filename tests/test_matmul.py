"""The outer-product products (kernels/matmul.py) and the vector operations under them
(kernels/_simd.py): values against the NumPy reference, and the same bits whatever the
tile width, thread count or operand form, since every element is one in-order sum of
fused multiply-adds."""
import numpy as np
import pytest
from numba import njit

from fastmlp import kernels as K
from fastmlp.kernels import reference as R
from fastmlp.kernels.fast._simd import LANES, address, at, lane, vfma, vload, vstore, vsum, vsums
from conftest import TOL, assert_close

# Rows: whole 6-row groups and leftovers; columns: whole 64- and 16-column blocks, partial
# vectors (1, 3, 15 lanes) and a single column; K from 1.
SHAPES = [(1, 1, 1), (6, 3, 64), (7, 5, 3), (13, 9, 130), (12, 1, 79), (100, 256, 784),
          (129, 7, 129), (5, 300, 81), (64, 33, 17)]


def _operands(M, Kd, N, dtype, rng):
    return (rng.standard_normal((M, Kd)).astype(dtype), rng.standard_normal((Kd, N)).astype(dtype),
            rng.standard_normal(N).astype(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [64, 16])
@pytest.mark.parametrize("M,Kd,N", SHAPES)
def test_matmul_against_reference_and_same_bits_in_both_forms(dtype, width, M, Kd, N, rng):
    A, B, bias = _operands(M, Kd, N, dtype, rng)
    Y = np.full((M, N), np.nan, dtype)
    K.matmul_nn(Y, A, B, bias, width)
    tol = TOL[dtype]
    assert_close(Y, R.matmul_nn(A, B, bias), dtype, rtol=tol["rtol"], atol=tol["atol"] * max(1.0, np.sqrt(Kd)) * 10)
    Yt = np.full((M, N), np.nan, dtype)
    K.matmul_tn(Yt, np.ascontiguousarray(A.T), B, bias, width)
    assert np.array_equal(Y, Yt)


# Both task orders (M < N, M > N), and a narrow last block (208 = 3 x 64 + 16) that the
# kernel moves to the middle of the row of blocks.
@pytest.mark.parametrize("M,N", [(70, 200), (200, 70), (70, 208)])
def test_matmul_bits_do_not_depend_on_tile_width_or_threads(M, N, rng):
    import numba
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("Numba runs one thread here")
    A, B, bias = _operands(M, 200, N, np.float32, rng)
    out = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            for width in (64, 16):
                Y = np.full((M, N), np.nan, np.float32)
                K.matmul_nn(Y, A, B, bias, width)
                out.append(Y)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(out[0], y) for y in out[1:])


def _one_column(terms, bias, M=7, N=70, depth=150):
    """Y = bias + A B where column 5 of every row gets sum_k a[k] b[k] with a[k] b[k] the
    given (a, b) pairs placed at k = 0, 70, 140 (three k panels), everything else zero;
    M = 7 and N = 70 take a 6 x 64 tile, a partial vector and a one-row tile."""
    A = np.zeros((M, depth), np.float32)
    B = np.zeros((depth, N), np.float32)
    for (a, b), k in zip(terms, (0, 70, 140)):
        A[:, k] = a
        B[k, 5] = B[k, 66] = b
    Y = np.empty((M, N), np.float32)
    K.matmul_nn(Y, A, B, np.full(N, bias, np.float32), 64)
    return Y[:, 5], Y[:, 66]


def test_matmul_rounds_once_per_step_fused_multiply_add():
    # a = b = 1 + 2^-12: a b = 1 + 2^-11 + 2^-24, which float32 rounds to 1 + 2^-11.
    # With bias -(1 + 2^-11) a fused multiply-add leaves 2^-24; a separate multiply, 0.
    a = np.float32(1 + 2.0 ** -12)
    for column in _one_column([(a, a)], -(1 + 2.0 ** -11)):
        assert (column == np.float32(2.0 ** -24)).all()


def test_matmul_sums_bias_first_then_k_in_order():
    # 1 + 2^-24 rounds back to 1 (to even), twice; adding the two small terms first
    # would give 1 + 2^-23. Bias 0 first, then k = 0, 70, 140 in order.
    for column in _one_column([(1, 1), (2.0 ** -24, 1), (2.0 ** -24, 1)], 0.0):
        assert (column == 1).all()


def test_matmul_with_empty_reduction_gives_the_bias():
    Y = np.full((7, 20), np.nan, np.float32)
    bias = np.arange(20, dtype=np.float32)
    K.matmul_nn(Y, np.empty((7, 0), np.float32), np.empty((0, 20), np.float32), bias, 64)
    assert (Y == bias).all()


def test_matmul_checks_shapes():
    f32 = np.float32
    with pytest.raises(ValueError, match="do not fit"):
        K.matmul_nn(np.empty((3, 4), f32), np.empty((3, 5), f32), np.empty((6, 4), f32), np.zeros(4, f32), 64)
    with pytest.raises(ValueError, match="do not fit"):
        K.matmul_tn(np.empty((3, 4), f32), np.empty((5, 3), f32), np.empty((5, 4), f32), np.zeros(4, f32), 32)


def test_matmul_propagates_nan_and_inf(rng):
    A, B, bias = _operands(12, 8, 70, np.float32, rng)
    A[3, 2] = np.nan
    B[5, 66] = np.inf
    Y = np.empty((12, 70), np.float32)
    K.matmul_nn(Y, A, B, bias, 64)
    assert np.isnan(Y[3]).all() and not np.isfinite(Y[:, 66]).any()
    assert np.isfinite(np.delete(np.delete(Y, 3, 0), 66, 1)).all()


@njit
def _elements(x, idx):
    out = np.empty(idx.size, x.dtype)
    for n in range(idx.size):
        out[n] = at(x, idx[n])
    return out


def test_at_reads_the_element():
    x = np.arange(10, dtype=np.float32) * 1.5
    idx = np.array([0, 3, 9])
    assert np.array_equal(_elements(x, idx), x[idx])


@njit
def _vsum_and_dot(x, w):
    p, q = address(x), address(w)
    return vsum(vload(p, 0, LANES)), vsum(vfma(vload(p, 0, LANES), vload(q, 0, LANES), vload(p, 0, 0)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vsum_adds_lanes_by_its_documented_tree_and_vfma_takes_two_vectors(dtype, rng):
    # 2**p followed by fifteen ones: added in order the ones vanish (2**p); by the tree
    # (l + l+8, then l + l+4, l + l+2, l + l+1) the first one vanishes and the rest
    # survive in pairs: 2**p + 14. Exact would be 2**p + 15.
    big = dtype(2.0 ** (24 if dtype == np.float32 else 53))
    x = np.ones(LANES, dtype)
    x[0] = big
    w = rng.standard_normal(LANES).astype(dtype)
    s, _ = _vsum_and_dot(x, w)
    assert s == big + dtype(14)

    def tree(v):
        for d in (8, 4, 2, 1):
            v = (v[:d] + v[d:2 * d]).astype(dtype)
        return v[0]
    x = (rng.standard_normal(LANES) * 10.0 ** rng.integers(-6, 7, LANES)).astype(dtype)
    s, dot = _vsum_and_dot(x, w)
    assert s == tree(x)
    assert dot == tree((x * w).astype(dtype))  # one rounding a product, as a fused a*b + 0


@njit
def _copy_through_vectors(y, x, j, n):
    vstore(y, j, vfma(x[0], vload(x, j, n), vload(y, j, n)), n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 3, 15, LANES])
def test_partial_vectors_touch_only_their_lanes(dtype, n):
    x = np.arange(1, 41, dtype=dtype)
    y = np.full(40, 7, dtype)
    _copy_through_vectors(y, x, 5, n)
    expected = np.full(40, 7, dtype)
    expected[5:5 + n] = x[0] * x[5:5 + n] + 7
    assert np.array_equal(y, expected)


def test_tiles_use_512_bit_registers_without_the_opt_in(tmp_path):
    # In a child process without the kernel cache: code loaded from the cache has no
    # assembly to inspect.
    import os
    import subprocess
    import sys
    from fastmlp.kernels._runtime.jit import host_has_avx512
    if not host_has_avx512():
        pytest.skip("this CPU has no AVX-512")
    child = ("import re, numpy as np; from fastmlp.kernels.fast.matmul import matmul, matmul_nn; "
             "matmul_nn(np.empty((12, 64), np.float32), np.ones((12, 3), np.float32), "
             "np.ones((3, 64), np.float32), np.zeros(64, np.float32), 64); "
             "asm = ''.join(matmul.inspect_asm().values()); "
             "print(len(re.findall(r'vfmadd\\w+ps\\s[^\\n]*zmm', asm)))")
    env = {**os.environ, "FASTMLP_NUMBA_CACHE": "0", "FASTMLP_AVX512": "0"}
    env.pop("NUMBA_CPU_FEATURES", None)
    out = subprocess.run([sys.executable, "-c", child], env=env, cwd=tmp_path, check=True, capture_output=True, text=True)
    assert int(out.stdout.split()[-1]) >= 24  # the 6 x 64 tile: 24 fused multiply-adds on zmm registers


@njit
def _vsums_against_vsum(X, out, ref):
    p = address(X)
    a0 = vload(p, 0, LANES); a1 = vload(p, 16, LANES); a2 = vload(p, 32, LANES)
    r = vsums((a0, a1, a2, a2, a1, a0, a0, a1, a2, a0, a1, a2, a2, a0, a1, a2))
    vstore(out, 0, r, LANES)
    q = vsums((a2, a0, a1))
    out[16] = lane(q, 0); out[17] = lane(q, 1); out[18] = lane(q, 2)
    ref[0] = vsum(a0); ref[1] = vsum(a1); ref[2] = vsum(a2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vsums_gives_each_lane_the_bits_of_vsum(dtype, rng):
    # The forward tiles add up 16 (and 8) vectors at once with vsums; every lane must be
    # what vsum gives the vector alone, or the tile's bits would depend on its neighbours.
    X = (rng.standard_normal(48) * 10.0 ** rng.integers(-6, 7, 48)).astype(dtype)
    out, ref = np.zeros(19, dtype), np.zeros(3, dtype)
    _vsums_against_vsum(X, out, ref)
    order = [0, 1, 2, 2, 1, 0, 0, 1, 2, 0, 1, 2, 2, 0, 1, 2]
    assert np.array_equal(out[:16], ref[order]) and np.array_equal(out[16:], ref[[2, 0, 1]])

