"""Optimizer and dropout kernels against their references; the generator's known answers."""
import numba
import numpy as np
import pytest

from fastmlp import kernels as K
from fastmlp.kernels import dropout as KD
from fastmlp.kernels import reference as R
from conftest import TOL, assert_close

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_step(dtype, nesterov, rng):
    p, v, g = (rng.standard_normal(257).astype(dtype) for _ in range(3))
    rp, rv = R.momentum_step(p, v, g, 0.1, 0.9, nesterov)
    K.momentum_step(p, v, g, 0.1, 0.9, nesterov)
    assert_close(p, rp, dtype, **TOL[dtype])
    assert_close(v, rv, dtype, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("t", [1, 2, 1000])
def test_adam_step(dtype, t, rng):
    p, m, g = (rng.standard_normal(257).astype(dtype) for _ in range(3))
    v = np.abs(rng.standard_normal(257)).astype(dtype)
    rp, rm, rv = R.adam_step(p, m, v, g, 1e-3, 0.9, 0.999, 1e-8, t)
    K.adam_step(p, m, v, g, 1e-3, 0.9, 0.999, 1e-8, t)
    for a, r in ((p, rp), (m, rm), (v, rv)):
        assert_close(a, r, dtype, **TOL[dtype])


def test_splitmix64_known_answers():
    # Published splitmix64 outputs for the state sequence starting at 0 (Vigna's
    # reference splitmix64.c): the k-th output is mix(k * golden) with the increment inside.
    expected = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    state = 0
    for e in expected:
        assert R.splitmix64(state) == e
        assert int(KD.splitmix64(np.uint64(state))) == e
        state = (state + 0x9E3779B97F4A7C15) & ((1 << 64) - 1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_matches_reference_and_is_keyed(dtype, rng):
    X = rng.standard_normal((9, 13)).astype(dtype)
    Y, M = np.empty_like(X), np.empty_like(X)
    K.dropout_forward(Y, M, X, 0.3, 42, 5, 2)
    rY, rM = R.dropout_forward(X, 0.3, 42, 5, 2)
    assert_close(M, rM, dtype, **TOL[dtype])
    assert_close(Y, rY, dtype, **TOL[dtype])
    dY = rng.standard_normal(X.shape).astype(dtype)
    dX = np.empty_like(X)
    K.dropout_backward(dX, dY, M)
    assert_close(dX, R.dropout_backward(dY, M), dtype, **TOL[dtype])
    # Same key, same mask; any part of the key changed, a different mask.
    M2 = np.empty_like(M)
    K.dropout_forward(Y, M2, X, 0.3, 42, 5, 2)
    assert np.array_equal(M, M2)
    for key in ((43, 5, 2), (42, 6, 2), (42, 5, 3)):
        K.dropout_forward(Y, M2, X, 0.3, *key)
        assert not np.array_equal(M, M2)


def test_dropout_kept_fraction_and_thread_independence():
    X = np.ones((1000, 1000))
    Y, M = np.empty_like(X), np.empty_like(X)
    p = 0.25
    K.dropout_forward(Y, M, X, p, 7, 0, 0)
    kept = (M > 0).mean()
    # Binomial(10^6, 0.75): standard deviation 4.3e-4; 6 sigma is 2.6e-3.
    assert abs(kept - (1 - p)) < 2.6e-3
    np.testing.assert_allclose(Y.mean(), 1.0, atol=6 * np.sqrt(p / (1 - p) / 1e6))
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        M1 = np.empty_like(M)
        K.dropout_forward(Y, M1, X, p, 7, 0, 0)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(M, M1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_decay(dtype, rng):
    g, p = (rng.standard_normal(301).astype(dtype) for _ in range(2))
    expected = R.weight_decay(g, p, 0.01)
    K.weight_decay(g, p, 0.01)
    assert_close(g, expected, dtype, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_norm(dtype, rng):
    W = rng.standard_normal((9, 50)).astype(dtype)
    W[0] *= 0.01  # a row well inside the bound stays exactly as it was
    keep = W[0].copy()
    expected = R.max_norm(W, 2.0)
    K.max_norm(W, 2.0)
    assert_close(W, expected, dtype, **TOL[dtype])
    assert np.array_equal(W[0], keep)
    np.testing.assert_allclose(np.sqrt((W[1:].astype(np.float64) ** 2).sum(axis=1)), 2.0, rtol=1e-6)
