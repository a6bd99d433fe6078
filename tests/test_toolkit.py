"""Training-loop techniques: optimizers, schedules, batch ramp, dropout at evaluation,
weight decay, max-norm, weight statistics, input pixel subsets."""
import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp.data import pixel_subset


def test_pixel_subsets():
    assert pixel_subset(28, 28) is None
    crop = pixel_subset(28, 28, crop=3)
    assert crop.size == 22 * 22 and crop[0] == 3 * 28 + 3 and crop[-1] == 24 * 28 + 24
    center = pixel_subset(28, 28, center=8)
    assert center.size == 64 and center[0] == 10 * 28 + 10 and center[-1] == 17 * 28 + 17
    dropped = pixel_subset(28, 28, drop=0.25, seed=5)
    assert dropped.size == 588 and np.all(np.diff(dropped) > 0)
    assert np.array_equal(dropped, pixel_subset(28, 28, drop=0.25, seed=5))
    assert not np.array_equal(dropped, pixel_subset(28, 28, drop=0.25, seed=6))
    assert pixel_subset(28, 28, crop=13).size == 4


@pytest.mark.parametrize("kwargs,message", [
    (dict(crop=14), "crop must be between 0 and 13"),
    (dict(crop=-1), "crop must be between 0 and 13"),
    (dict(center=29), "center must be between 1 and 28"),
    (dict(drop=1.0), "drop-pixels must be in [0, 1)"),
    (dict(drop=-0.1), "drop-pixels must be in [0, 1)"),
    (dict(crop=2, center=8), "cannot be combined"),
])
def test_pixel_subset_errors(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        pixel_subset(28, 28, **kwargs)


def test_input_experiment_shrinks_the_input_layer(mnist):
    net, records = train(TrainConfig(center=8, hidden=(16,), epochs=1, limit=2000, lr=0.5), mnist)
    assert net.W[0].shape == (16, 64)
    net, _ = train(TrainConfig(crop=4, drop_pixels=0.5, hidden=(16,), epochs=1, limit=500), mnist)
    assert net.W[0].shape == (16, 200)


def test_batch_ramp_and_schedules():
    c = TrainConfig(batch_size=256, batch_ramp=32, epochs=6, lr=0.1, lr_schedule="cosine")
    assert [c.batch_for_epoch(e) for e in range(1, 7)] == [32, 64, 128, 256, 256, 256]
    assert c.lr_for_epoch(1) == 0.1 and c.lr_for_epoch(4) == pytest.approx(0.05)
    s = TrainConfig(lr=1.0, lr_schedule="step", lr_step=2, lr_gamma=0.5)
    assert [s.lr_for_epoch(e) for e in range(1, 6)] == [1.0, 1.0, 0.5, 0.5, 0.25]


@pytest.mark.parametrize("optimizer,lr,extra", [("adam", 0.002, {}), ("momentum", 0.05, {}),
                                                ("momentum", 0.05, {"nesterov": True})])
def test_optimizers_learn(mnist, optimizer, lr, extra):
    config = TrainConfig(hidden=(64,), activation=("shifted_relu",), init="he", optimizer=optimizer, lr=lr,
                         epochs=2, batch_size=64, limit=5000, seed=2, **extra)
    _, records = train(config, mnist)
    # Measured here (full 10k, 5k training images, 2 epochs): adam 89.58, momentum 89.71,
    # Nesterov 91.08; plain SGD at lr 0.1 gets 87.05. Training is deterministic.
    assert records[-1]["full_acc"] > 88.0
    assert records[-1]["loss"] < records[0]["loss"]


def test_dropout_is_off_at_evaluation_and_reproducible(mnist):
    config = TrainConfig(hidden=(64,), activation=("relu",), input_dropout=0.2, dropout=0.5, init="he",
                         optimizer="adam", lr=0.002, epochs=1, batch_size=100, limit=3000, seed=4)
    a, ra = train(config, mnist)
    b, rb = train(config, mnist)
    assert np.array_equal(a.params, b.params) and ra[-1]["full_acc"] == rb[-1]["full_acc"]
    x = np.ascontiguousarray(np.random.default_rng(0).standard_normal((50, 784)).astype(np.float32))
    first = a.forward(x).copy()
    np.testing.assert_array_equal(a.forward(x), first)  # no randomness at evaluation


def test_max_norm_and_weight_decay(mnist):
    base = dict(hidden=(32,), epochs=1, batch_size=50, limit=2000, lr=0.5, seed=1)
    net, _ = train(TrainConfig(max_norm=0.5, **base), mnist)
    for W in net.W:
        assert np.sqrt((W.astype(np.float64) ** 2).sum(axis=1)).max() <= 0.5 * (1 + 1e-6)
    plain, _ = train(TrainConfig(**base), mnist)
    decayed, _ = train(TrainConfig(weight_decay=0.01, **base), mnist)
    assert np.abs(decayed.W[0]).mean() < np.abs(plain.W[0]).mean()


def test_weight_stats_recorded(mnist):
    _, records = train(TrainConfig(hidden=(16, 8), epochs=1, limit=500, weight_stats=True), mnist)
    stats = records[0]["weight_stats"]
    assert [s["layer"] for s in stats] == ["dense1", "dense2", "logits"]
    for s in stats:
        assert 0 < s["mean_abs"] <= s["rms"] <= s["max_abs"]


def test_adamw_decays_the_weights_themselves_and_spares_the_biases(mnist):
    # Trained alike, AdamW ends with smaller weights than Adam without decay, and not where
    # Adam with the same decay as L2 ends.
    from fastmlp import optim
    import numpy as np
    base = dict(hidden=(16,), activation=("relu",), init="he", epochs=1, batch_size=100, lr=1e-3, limit=1000, seed=2)
    plain, _ = train(TrainConfig(optimizer="adam", **base), mnist)
    decoupled, _ = train(TrainConfig(optimizer="adamw", weight_decay=0.1, **base), mnist)
    coupled, _ = train(TrainConfig(optimizer="adam", weight_decay=0.1, **base), mnist)
    assert np.linalg.norm(decoupled.W[0]) < np.linalg.norm(plain.W[0])
    assert not np.array_equal(decoupled.params, coupled.params)
    # The decay is the optimizer's: one AdamW step on a zero gradient shrinks W by (1 - lr wd), b not at all.
    p = np.ones(6, np.float32)
    opt = optim.make("adamw", 6, np.float32, weight_decay=0.5, weights=((0, 4),))
    opt.step(p, np.zeros(6, np.float32), 0.1)
    assert np.allclose(p[:4], 1 - 0.1 * 0.5) and np.array_equal(p[4:], np.ones(2, np.float32))
    opt = optim.make("sgd", 6, np.float32, weight_decay=0.5, weights=((0, 4),))
    p = np.ones(6, np.float32)
    opt.step(p, np.zeros(6, np.float32), 0.1)
    assert np.allclose(p[:4], 1 - 0.1 * 0.5) and np.array_equal(p[4:], np.ones(2, np.float32))  # L2 with SGD: the same
