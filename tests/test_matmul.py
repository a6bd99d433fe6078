"""The outer-product products (kernels/matmul.py) and the vector operations under them
(kernels/_simd.py): values against the NumPy reference, and the same bits whatever the
tile width, thread count or operand form, since every element is one in-order sum of
fused multiply-adds."""
import numpy as np
import pytest
from numba import njit

from fastmlp import kernels as K
from fastmlp.kernels import reference as R
from fastmlp.kernels._simd import LANES, at, vfma, vload, vstore
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


def test_matmul_bits_do_not_depend_on_tile_width_or_threads(rng):
    import numba
    A, B, bias = _operands(70, 200, 200, np.float32, rng)
    out = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            for width in (64, 16):
                Y = np.full((70, 200), np.nan, np.float32)
                K.matmul_nn(Y, A, B, bias, width)
                out.append(Y)
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(out[0], y) for y in out[1:])


def test_matmul_sums_in_order_with_fused_multiply_adds():
    # Y = bias + a0 b0 + a1 b1 with one rounding per step: 1 + 2^-24 * 1 is lost in
    # float32 only if the terms are added in another order (or rounded separately).
    A = np.array([[2.0 ** -24, 2.0 ** -24]], np.float32)
    B = np.ones((2, 1), np.float32)
    Y = np.empty((1, 1), np.float32)
    K.matmul_nn(Y, A, B, np.ones(1, np.float32), 16)
    expected = np.float32(np.float32(1 + np.float32(2.0 ** -24)) + np.float32(2.0 ** -24))
    assert Y[0, 0] == expected  # == 1: each step rounds to nearest even


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
    import llvmlite.binding as ll
    import os
    import subprocess
    import sys
    if "+avx512f" not in ll.get_host_cpu_features().flatten().split(","):
        pytest.skip("this CPU has no AVX-512")
    child = ("import re, numpy as np; from fastmlp.kernels.matmul import matmul, matmul_nn; "
             "matmul_nn(np.empty((12, 64), np.float32), np.ones((12, 3), np.float32), "
             "np.ones((3, 64), np.float32), np.zeros(64, np.float32), 64); "
             "asm = ''.join(matmul.inspect_asm().values()); "
             "print(len(re.findall(r'vfmadd\\w+ps\\s[^\\n]*zmm', asm)))")
    env = {**os.environ, "FASTMLP_NUMBA_CACHE": "0", "FASTMLP_AVX512": "0"}
    env.pop("NUMBA_CPU_FEATURES", None)
    out = subprocess.run([sys.executable, "-c", child], env=env, cwd=tmp_path, check=True, capture_output=True, text=True)
    assert int(out.stdout.split()[-1]) >= 24  # the 6 x 64 tile: 24 fused multiply-adds on zmm registers
