"""Random translation (--shift): the kernel against its reference, the offsets it draws,
and training with it."""
import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp import kernels as K
from fastmlp.data import pixel_subset
from fastmlp.kernels import reference as R
from conftest import assert_close

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("S", [0, 1, 3])
@pytest.mark.parametrize("subset", [None, dict(crop=3), dict(center=8), dict(drop=0.4, seed=5)])
def test_shift_gather_matches_reference(dtype, S, subset, rng):
    images = rng.standard_normal((50, 28 * 28)).astype(dtype)
    rows = rng.integers(0, 50, 37)
    pixels = np.arange(28 * 28) if subset is None else pixel_subset(28, 28, **subset)
    X = np.full((37, pixels.size), np.nan, dtype)
    K.shift_gather(X, images, rows, pixels, 28, 28, -0.5, S, 7, 11)
    # A gather moves values without arithmetic: exact equality in both dtypes.
    assert_close(X, R.shift_gather(images, rows, pixels, 28, 28, -0.5, S, 7, 11).astype(dtype), dtype)


def test_shift_zero_is_a_plain_gather(rng):
    images = rng.standard_normal((20, 6 * 5)).astype(np.float32)
    rows = np.array([3, 0, 19, 3])
    X = np.empty((4, 30), np.float32)
    K.shift_gather(X, images, rows, np.arange(30), 6, 5, 99.0, 0, 1, 2)
    assert np.array_equal(X, images[rows])


def test_offsets_are_exact_translations_and_cover_the_square_uniformly():
    # One lit pixel in the middle of a blank 9x9 image: where it lands gives (dy, dx).
    S, B = 2, 5000
    image = np.zeros((1, 81))
    image[0, 4 * 9 + 4] = 1.0
    X = np.empty((B, 81))
    K.shift_gather(X, image, np.zeros(B, np.int64), np.arange(81), 9, 9, 0.0, S, 3, 0)
    assert (X.sum(axis=1) == 1).all()  # nothing lost, nothing added, no blending
    lit = X.argmax(axis=1)
    dy, dx = lit // 9 - 4, lit % 9 - 4
    assert list(zip(dy, dx)) == R.shift_offsets(3, 0, B, S)
    counts = np.zeros((2 * S + 1, 2 * S + 1))
    np.add.at(counts, (dy + S, dx + S), 1)
    # 25 cells, 200 expected each; a 6-sigma band of the binomial count.
    expected = B / counts.size
    sigma = np.sqrt(B * (1 / counts.size) * (1 - 1 / counts.size))
    assert np.abs(counts - expected).max() < 6 * sigma, counts
    # A new step draws new offsets.
    X2 = np.empty_like(X)
    K.shift_gather(X2, image, np.zeros(B, np.int64), np.arange(81), 9, 9, 0.0, S, 3, 1)
    assert (X2.argmax(axis=1) != lit).mean() > 0.9


def test_blank_border_gets_the_background_value():
    image = np.ones((1, 16), np.float32)
    X = np.empty((400, 16), np.float32)
    K.shift_gather(X, image, np.zeros(400, np.int64), np.arange(16), 4, 4, -0.25, 1, 0, 0)
    assert set(np.unique(X)) == {np.float32(1.0), np.float32(-0.25)}
    # Moved by (dy, dx): exactly (4 - |dy|) * (4 - |dx|) pixels still carry the image.
    for row, (dy, dx) in zip(X, R.shift_offsets(0, 0, 400, 1)):
        assert (row == 1).sum() == (4 - abs(dy)) * (4 - abs(dx))


def test_training_with_shift_moves_the_images_and_learns(mnist, monkeypatch):
    config = TrainConfig(hidden=(64,), activation=("relu",), init="he", optimizer="adam", lr=2e-3, epochs=2,
                         batch_size=64, limit=3000, seed=1, crop=2)
    unshifted, _ = train(config, mnist)
    calls = []
    gather = K.shift_gather

    def counted(X, images, rows, pixels, R, C, background, S, seed, step):
        calls.append((X.shape, images.shape, pixels.size, S, step))
        return gather(X, images, rows, pixels, R, C, background, S, seed, step)

    monkeypatch.setattr(K, "shift_gather", counted)
    shifted, recs = train(TrainConfig(**{**vars(config), "shift": 1}), mnist)
    calls = [c for c in calls if c[1] == (3000, 784)]  # not warm-up's tiny call
    # Every step gathers from the full 28x28 images, moved by up to 1 pixel, then cropped.
    assert len(calls) == 2 * 47 and calls[0] == ((64, 24 * 24), (3000, 784), 24 * 24, 1, 0)
    assert [c[4] for c in calls] == list(range(2 * 47))  # keyed by the global step
    assert shifted.width["input"] == 24 * 24
    assert not np.array_equal(shifted.params, unshifted.params)  # the moves changed training
    assert recs[-1]["full_acc"] > 85.0, recs[-1]


def test_shift_out_of_range_is_rejected():
    with pytest.raises(ValueError, match="shift must be between 0 and 13"):
        TrainConfig(shift=14).validate()
    with pytest.raises(ValueError, match="shift"):
        TrainConfig(shift=-1).validate()
