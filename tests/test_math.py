"""The float32 exp the activation and softmax kernels use (fastmlp.kernels._math)."""
import math

import numpy as np
from numba import njit

from fastmlp.kernels._math import like, vexp


@njit(cache=False)
def _exp_all(out, x):
    for i in range(x.shape[0]):
        out[i] = vexp(x[i])


def _run(x):
    out = np.empty_like(x)
    _exp_all(out, x)
    return out


def test_float32_exp_is_within_one_ulp_over_its_range():
    x = np.linspace(-87.3, 88.7, 1_000_001).astype(np.float32)
    x = np.concatenate([x, -np.logspace(-8, 1.9, 10001).astype(np.float32), np.logspace(-8, 1.9, 10001).astype(np.float32)])
    got = _run(x).astype(np.float64)
    exact = np.exp(x.astype(np.float64))
    ulps = np.abs(got - exact) / np.spacing(exact.astype(np.float32)).astype(np.float64)
    assert ulps.max() <= 1.0, (ulps.max(), x[ulps.argmax()])


def test_float32_exp_edges():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 89.0, 88.72, -87.33, -88.0, -1000.0, 1000.0], np.float32)
    got = _run(x)
    assert np.isnan(got[0])
    assert got[1] == np.inf and got[2] == 0.0 and got[3] == 1.0 and got[4] == 1.0
    assert got[5] == np.inf and np.isfinite(got[6]) and got[6] > 3e38  # exp(88.72) = 3.39e38 still fits
    assert got[7] > 0  # exp(-87.33) is the smallest normal float32 region
    assert got[8] == 0.0 and got[9] == 0.0 and got[10] == np.inf  # below that: 0 (no subnormals)
    assert got.dtype == np.float32


def test_float64_keeps_libm_exp():
    x = np.array([-700.0, -1.5, 0.0, 2.25, 700.0])
    assert np.array_equal(_run(x), np.array([math.exp(v) for v in x]))



@njit(cache=False)
def _scaled(a, v):
    return like(a, v) * a[0]


def test_like_keeps_float32_arithmetic_float32():
    # A float64 scalar would make float32 loops compute in float64 (half the vector width).
    import numba
    assert _scaled(np.ones(1, np.float32), 0.1) == float(np.float32(0.1)) != 0.1
    assert _scaled(np.ones(1, np.float64), 0.1) == 0.1
    returns = {sig.args[0].dtype: sig.return_type for sig in _scaled.nopython_signatures}
    assert returns == {numba.float32: numba.float32, numba.float64: numba.float64}
