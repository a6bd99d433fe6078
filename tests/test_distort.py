"""Elastic and affine distortion (--elastic, --rotate, --scale, --shear): the kernels
against their NumPy twin, the cases that must be exact, the field's statistics, and
training with it."""
import numba
import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp import kernels as K
from fastmlp.augment import gaussian_taps
from fastmlp.data import pixel_subset
from fastmlp.kernels import reference as R
from fastmlp.kernels.dispatch import Kernels
from fastmlp.kernels.fast.augment import distort_gather_lanes

DTYPES = [np.float32, np.float64]
DISTORTION = dict(alpha=34.0, rotate=15.0, scale=0.15, shear=15.0)


def _run(kernel, images, rows, pixels, S, alpha, sigma, rotate, scale, shear, seed=7, step=11, R_=28, C_=28,
         background=-0.5):
    dtype = images.dtype
    X = np.full((len(rows), len(pixels)), np.nan, dtype)
    work = np.full((len(rows), 4, R_ * C_), np.nan, dtype)
    kernel(X, work, images, rows, pixels, R_, C_, background, S, alpha, gaussian_taps(sigma, dtype), rotate, scale,
           shear, seed, step)
    return X, work


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [0, 1, 3])
@pytest.mark.parametrize("subset", [None, dict(crop=3), dict(center=5), dict(drop=0.4, seed=5)])
def test_no_distortion_is_exactly_the_shift(dtype, S, subset, rng):
    # alpha = 0 and no affine terms: the identity, moved by whole pixels as --shift moves.
    images = rng.standard_normal((50, 784)).astype(dtype)
    rows = rng.integers(0, 50, 37)
    pixels = np.arange(784) if subset is None else pixel_subset(28, 28, **subset)
    shifted = np.empty((37, pixels.size), dtype)
    K.shift_gather(shifted, images, rows, pixels, 28, 28, -0.5, S, 7, 11)
    kernels = [K.distort_gather, Kernels(dtype).distort_gather]
    if dtype == np.float32:
        kernels.append(distort_gather_lanes)
    for kernel in kernels:
        X, _ = _run(kernel, images, rows, pixels, S, 0.0, 4.0, 0.0, 0.0, 0.0)
        assert np.array_equal(X, shifted)
    if S == 0 and subset is None:
        assert np.array_equal(X, images[rows])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", [dict(S=0, alpha=34.0, sigma=4.0, rotate=0.0, scale=0.0, shear=0.0),
                                  dict(S=0, alpha=0.0, sigma=4.0, rotate=20.0, scale=0.2, shear=15.0),
                                  dict(S=2, alpha=36.0, sigma=6.0, rotate=15.0, scale=0.15, shear=15.0)])
@pytest.mark.parametrize("crop", [2, 0])  # a pixel subset, and every pixel (written straight into X's rows)
def test_kernels_match_the_numpy_twin(dtype, case, crop, rng):
    images = rng.random((30, 784)).astype(dtype)  # noise: the steepest images there are
    rows = rng.integers(0, 30, 21)
    pixels = pixel_subset(28, 28, crop=crop) if crop else np.arange(784)
    want, ex, ey = R.distort_gather(images, rows, pixels, 28, 28, -0.5, case["S"], case["alpha"],
                                    gaussian_taps(case["sigma"]), case["rotate"], case["scale"], case["shear"], 7, 11)
    # float64: rounding only. float32: the sample points carry float32 rounding (fields
    # summed in float32: about 1e-6 of alpha), times pixel differences of up to 1.
    atol = 1e-10 if dtype == np.float64 else 5e-5
    kernels = [K.distort_gather, Kernels(dtype).distort_gather]
    if dtype == np.float32:
        kernels.append(distort_gather_lanes)
    for kernel in kernels:
        X, work = _run(kernel, images, rows, pixels, case["S"], case["alpha"], case["sigma"], case["rotate"],
                       case["scale"], case["shear"])
        np.testing.assert_allclose(X, want, rtol=0, atol=atol)
        if case["alpha"]:
            np.testing.assert_allclose(work[:, 0], ex, rtol=0, atol=atol * case["alpha"] / 10)
            np.testing.assert_allclose(work[:, 1], ey, rtol=0, atol=atol * case["alpha"] / 10)


@pytest.mark.parametrize("shape", [(9, 9), (20, 24), (30, 40), (33, 64)])
def test_the_fast_kernel_matches_the_twin_at_other_image_sizes(shape, rng):
    # The fast kernel lays rows out in W = 32 or 64 lanes and writes whole vectors past a
    # row's end into later rows; a row shorter than the spill (9), a frame that is not two
    # vectors wide (24), two blocks of 32 lanes (40) and a row of exactly 64 lanes.
    R_, C_ = shape
    images = rng.random((12, R_ * C_)).astype(np.float32)
    rows = rng.integers(0, 12, 19)
    pixels = np.arange(R_ * C_)
    for alpha in (0.0, 30.0):
        want, ex, ey = R.distort_gather(images, rows, pixels, R_, C_, -0.5, 1, alpha, gaussian_taps(3.0), 12.0, 0.1,
                                        10.0, 7, 11)
        X, work = _run(distort_gather_lanes, images, rows, pixels, 1, alpha, 3.0, 12.0, 0.1, 10.0, R_=R_, C_=C_)
        np.testing.assert_allclose(X, want, rtol=0, atol=5e-5)
        if alpha:
            np.testing.assert_allclose(work[:, 0], ex, rtol=0, atol=5e-5 * alpha / 10)
            np.testing.assert_allclose(work[:, 1], ey, rtol=0, atol=5e-5 * alpha / 10)
        else:
            assert np.isnan(work).all()  # untouched


def test_the_centre_is_fixed_under_the_affine_terms():
    # A 9x9 image (centre pixel 4, 4): rotation, scaling and shear about the centre leave
    # it where it is, exactly; elsewhere the pixels move.
    image = np.arange(81, dtype=np.float64)[None, :]
    rows = np.zeros(200, np.int64)
    X = np.empty((200, 81))
    work = np.empty((200, 4, 81))
    K.distort_gather(X, work, image, rows, np.arange(81), 9, 9, 0.0, 0, 0.0, gaussian_taps(1.0), 30.0, 0.2, 20.0, 1, 2)
    assert (X[:, 40] == 40).all()
    assert (X[:, 31] != 31).mean() > 0.9  # the pixel above the centre


def test_affine_draws_stay_within_their_bounds():
    draws = np.array([R.affine_draws(3, step, i, 15.0, 0.2, 10.0) for step in range(20) for i in range(50)])
    angle, fx, fy, t = draws.T
    assert np.abs(angle).max() <= np.radians(15) and np.abs(angle).max() > 0.95 * np.radians(15)
    for f in (fx, fy):
        assert (np.abs(f - 1) <= 0.2).all() and np.abs(f - 1).max() > 0.19
    assert (np.abs(t) <= np.tan(np.radians(10))).all()
    # The four are drawn from different bits: no two agree in sign more than chance.
    for a, b in ((angle, fx - 1), (fx - 1, fy - 1), (fy - 1, t), (angle, t)):
        assert abs(np.mean(np.sign(a) == np.sign(b)) - 0.5) < 0.1


def test_the_smoothed_field_has_the_theoretical_mean_and_spread():
    # The field at pixel (y, x) is alpha * sum_jk gy[y-k] gx[x-j] U[k, j] with U uniform in
    # [-1, 1] (variance 1/3) and zero outside the image: mean 0 and variance
    # alpha^2 / 3 * (sum_k gy[y-k]^2) (sum_j gx[x-j]^2), lower near the border.
    alpha, sigma, B = 10.0, 4.0, 4000
    taps = gaussian_taps(sigma)
    g = R.gaussian_matrix(28, taps)
    energy = (g ** 2).sum(axis=1)  # sum over k of g[y, k]^2
    theory = alpha ** 2 / 3 * np.outer(energy, energy).ravel()
    X = np.empty((B, 784), np.float32)
    work = np.empty((B, 4, 784), np.float32)
    K.distort_gather(X, work, np.zeros((1, 784), np.float32), np.zeros(B, np.int64), np.arange(784), 28, 28, 0.0,
                     0, alpha, taps.astype(np.float32), 0.0, 0.0, 0.0, 5, 0)
    for field in (work[:, 0].astype(np.float64), work[:, 1].astype(np.float64)):
        for q in (0, 14 * 28 + 14, 3 * 28 + 20, 27 * 28 + 13):  # corner, centre, inside, edge
            sd = np.sqrt(theory[q])
            # Each pixel's B values are independent: the mean's standard error is sd/sqrt(B)
            # and the variance's about var * sqrt(2/B) (2.2%); bounds of 5 standard errors.
            assert abs(field[:, q].mean()) < 5 * sd / np.sqrt(B)
            assert abs(field[:, q].var() / theory[q] - 1) < 5 * np.sqrt(2 / B)
    # x and y fields are independent: their correlation is within noise of 0.
    assert abs(np.corrcoef(work[:, 0, 400], work[:, 1, 400])[0, 1]) < 5 / np.sqrt(B)
    # Simard's alpha = 34, sigma = 4 moves the centre by about 1.4 pixels (one standard deviation).
    assert 1.35 < np.sqrt(34 ** 2 / 3) * energy[14] < 1.45


def test_a_new_step_or_row_draws_a_new_field():
    B = 200
    X = np.empty((B, 784))
    work = np.empty((B, 4, 784))
    args = (np.zeros((1, 784)), np.zeros(B, np.int64), np.arange(784), 28, 28, 0.0, 0, 34.0, gaussian_taps(4.0), 0.0,
            0.0, 0.0, 5)
    K.distort_gather(X, work, *args, 0)
    first = work[:, 0].copy()
    K.distort_gather(X, work, *args, 1)
    # A smooth field has few degrees of freedom, so two independent ones correlate by up to
    # about +-0.5 by chance; the mean of 199 such correlations has a standard error of
    # about 0.02.
    rows = [np.corrcoef(first[i], first[i + 1])[0, 1] for i in range(B - 1)]
    steps = [np.corrcoef(first[i], work[i, 0])[0, 1] for i in range(B)]
    assert abs(np.mean(rows)) < 0.1 and abs(np.mean(steps)) < 0.1
    K.distort_gather(X, work, *args, 0)
    assert np.array_equal(first, work[:, 0])


def test_gaussian_taps():
    taps = gaussian_taps(4.0)
    assert len(taps) == 13 and taps[0] == taps.max()
    assert abs(taps[0] + 2 * taps[1:].sum() - 1) < 1e-15
    assert np.allclose(taps[1] / taps[0], np.exp(-1 / 32))


CONFIG = dict(hidden=(64,), activation=("relu",), init="he", optimizer="adam", lr=2e-3, epochs=2, batch_size=64,
              limit=3000, seed=1)


def test_training_with_distortion_calls_the_kernel_and_learns(mnist, monkeypatch):
    config = TrainConfig(**CONFIG, elastic_alpha=34.0, elastic_sigma=4.0, rotate=10.0, scale=0.1, shear=10.0, crop=2)
    network_calls = []
    import importlib
    T = importlib.import_module("fastmlp.train")
    build = T.build_network

    def spy(*a, **kw):
        net = build(*a, **kw)
        kernel = net.k.distort_gather

        def counted(X, work, images, rows, pixels, *rest):
            network_calls.append((X.shape, images.shape, pixels.size, rest[-1]))
            return kernel(X, work, images, rows, pixels, *rest)
        net.k.distort_gather = counted
        return net
    monkeypatch.setattr(T, "build_network", spy)
    network, records = train(config, mnist)
    steps = (3000 + 63) // 64
    assert len(network_calls) == 2 * steps
    assert network_calls[0][1] == (3000, 784) and network_calls[0][2] == 24 * 24
    assert [c[-1] for c in network_calls] == list(range(2 * steps))  # keyed by the step counter
    assert records[-1]["full_acc"] > 85
    plain, _ = train(TrainConfig(**CONFIG, crop=2), mnist)
    assert not np.array_equal(plain.params, network.params)


def test_distorted_training_is_bit_identical_for_any_thread_count(mnist):
    config = dict(CONFIG, elastic_alpha=34.0, rotate=10.0, scale=0.1, shear=10.0, shift=1, epochs=1)
    one, _ = train(TrainConfig(**config, threads=1), mnist)
    two, _ = train(TrainConfig(**config, threads=numba.config.NUMBA_NUM_THREADS), mnist)
    again, _ = train(TrainConfig(**config, threads=1), mnist)
    assert np.array_equal(one.params, again.params) and np.array_equal(one.params, two.params)


def test_options_are_checked():
    for bad, word in ((dict(elastic_alpha=-1.0), "elastic alpha"), (dict(elastic_sigma=0.0), "elastic sigma"),
                      (dict(rotate=200.0), "rotate"), (dict(scale=1.0), "scale"), (dict(shear=70.0), "shear")):
        with pytest.raises(ValueError, match=word):
            TrainConfig(**bad).validate()
