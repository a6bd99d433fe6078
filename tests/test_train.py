"""End to end on real MNIST, and reproducibility."""
import threading

import numba
import numpy as np

from fastmlp import TrainConfig, train


def test_subset_training_reaches_accuracy(mnist):
    # 10k images, 3 epochs of the book network: measured 94.7% test / 92.6% full here.
    config = TrainConfig(hidden=(100,), epochs=3, batch_size=64, lr=0.5, limit=10000, seed=1)
    _, records = train(config, mnist)
    last = records[-1]
    assert last["full_acc"] >= 91.0 and last["test_acc"] >= 93.0, last
    assert records[-1]["loss"] < records[0]["loss"]


def test_float64_training_also_learns(mnist):
    config = TrainConfig(hidden=(32,), activation=("shifted_relu",), epochs=1, batch_size=32, lr=0.05,
                         limit=5000, dtype="float64", init="he")
    net, records = train(config, mnist)
    assert net.params.dtype == np.float64 and records[-1]["full_acc"] > 80.0


def test_same_seed_same_bits_and_thread_count_does_not_matter(mnist):
    base = dict(hidden=(48, 24), activation=("relu", "sigmoid"), epochs=1, batch_size=37, lr=0.1,
                limit=3000, seed=7)
    a, _ = train(TrainConfig(**base, threads=1), mnist)
    b, _ = train(TrainConfig(**base, threads=numba.config.NUMBA_NUM_THREADS), mnist)
    c, _ = train(TrainConfig(**base, threads=1), mnist)
    assert np.array_equal(a.params, c.params)
    assert np.array_equal(a.params, b.params)
    d, _ = train(TrainConfig(**{**base, "seed": 8}), mnist)
    assert not np.array_equal(a.params, d.params)


def test_networks_trained_side_by_side_in_python_threads_keep_their_bits(mnist, thread_safe_kernels):
    # Parallel kernels release the GIL, so a Dask worker's threads (or a user's) can be inside
    # kernels at once; each Python thread has its own work-sharing counters (kernels/_share.py).
    # With one shared set, threads took each other's items and outputs were left unwritten
    # (a CI run before commit 923d3c9: a sweep run diverged with NaN at its first step).
    configs = [TrainConfig(hidden=(64,), epochs=1, batch_size=b, lr=0.5, limit=2400, seed=s)
               for s, b in ((1, 64), (2, 256))]
    alone = [train(c, mnist)[0].params for c in configs]
    for _ in range(5):
        together = [None] * len(configs)

        def run(i):
            together[i] = train(configs[i], mnist)[0].params
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(configs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, p in enumerate(together):
            assert p is not None and np.array_equal(p, alone[i]), configs[i]
