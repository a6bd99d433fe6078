"""Shared fixtures. MNIST is found exactly as `fastmlp train` finds it: $FASTMLP_DATA_DIR
when set (CI points it at ../shared/data/mnist), else the per-user cache, downloading what
is missing from the mirrors ($FASTMLP_MIRRORS, else the public ones) with SHA-256 checks."""
import pathlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mnist_dir():
    from fastmlp import data as D
    try:
        return D.locate(log=print).directory
    except D.DataError as e:
        pytest.fail(f"MNIST is not available: {e}")


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from fastmlp import load
    return load(mnist_dir)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_close(actual, expected, dtype, rtol=0.0, atol=0.0):
    """The one comparison helper: shape, then dtype, then values within rtol/atol."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype} != {np.dtype(dtype)}"
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol)


# Tolerances, justified: float64 kernels differ from NumPy only by summation order
# (reassociated dot products), ~1e-15 relative per term, so 1e-12 on sums; float32 sums of
# up to ~1000 terms of O(1) values lose ~sqrt(n) * 6e-8, so 1e-4 relative with a small
# absolute floor for results near zero. Elementwise kernels use the same libm functions.
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}


@pytest.fixture
def thread_safe_kernels():
    """For tests that run kernels from several Python threads at once: skips them where
    Numba's threading layer is not thread-safe (workqueue: it aborts the process)."""
    from fastmlp import kernels as K
    if not K.thread_safe():
        pytest.skip("Numba's workqueue threading layer is not thread-safe (install libgomp or tbb)")
