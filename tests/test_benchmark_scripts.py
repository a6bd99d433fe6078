"""The benchmark scripts time the real algorithm: their training code, run on a few
batches, gives the same weights as fastmlp.train (no timings are asserted here)."""
import os
import subprocess
import sys
import time

import numpy as np

from fastmlp import PRESETS, TrainConfig, prepare, train
from fastmlp.train import build_network

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.join(os.path.dirname(HERE), "benchmarks")


def test_epoch_book_trains_the_book_network_exactly_as_train_does(mnist):
    sys.path.insert(0, BENCH)
    try:
        import epoch_book
    finally:
        sys.path.remove(BENCH)
    config = TrainConfig(**{**PRESETS["book"], "epochs": 1, "limit": 1024})
    trained, _ = train(config, mnist)
    p = prepare(mnist, True, np.float32, limit=1024)
    net = build_network(config, 784, 10)
    epoch_book.fastmlp_epoch(net, p.train_x, p.train_t, 256, 1.0)
    assert np.array_equal(net.params, trained.params)


def test_book_numpy_learns(mnist):
    sys.path.insert(0, BENCH)
    try:
        import book_numpy
    finally:
        sys.path.remove(BENCH)
    p = prepare(mnist, True, np.float64, limit=6000)
    w1, w2 = book_numpy.initialize_weights(784, 100, 10, np.random.default_rng(0))
    for _ in range(3):
        book_numpy.train_epoch(p.train_x, p.train_t, w1, w2, 256, 1.0)
    assert (book_numpy.classify(p.test_x, w1, w2) == p.test_y).mean() > 0.85


def test_startup_child_reaches_a_training_step(mnist_dir):
    sys.path.insert(0, BENCH)
    try:
        import startup
    finally:
        sys.path.remove(BENCH)
    out = subprocess.run([sys.executable, "-c", startup.CHILD, mnist_dir], check=True, capture_output=True, text=True)
    float(out.stdout.strip().splitlines()[-1])


def test_kernel_times_runs_both_modes(mnist_dir):
    script = os.path.join(BENCH, "kernel_times.py")
    env = {**os.environ, "FASTMLP_DATA_DIR": mnist_dir}
    out = subprocess.run([sys.executable, script, "--repeats", "2"], check=True, capture_output=True, text=True, env=env)
    assert "deep dW2, batch 128" in out.stdout and "softmax_cross_entropy_forward" in out.stdout
    out = subprocess.run([sys.executable, script, "--steps", "book-b256", "--batches", "3"], check=True,
                         capture_output=True, text=True, env=env)
    assert "dense_forward 256x784x100" in out.stdout and "matmul_tn 100x256x784" in out.stdout and "outside the kernels" in out.stdout


def test_ab_commits_times_two_versions(mnist_dir):
    # A committed revision (exported with git archive) against the working tree, on two
    # steps: the script runs end to end and reports both sides and their ratio.
    script = os.path.join(BENCH, "ab_commits.py")
    env = {**os.environ, "FASTMLP_DATA_DIR": mnist_dir}
    out = subprocess.run([sys.executable, script, "HEAD", ".", "--config", "book-b32", "--rounds", "1", "--steps", "2"],
                         check=True, capture_output=True, text=True, env=env)
    assert "old (HEAD): median" in out.stdout and "new (.): median" in out.stdout and "old / new" in out.stdout
    bad = subprocess.run([sys.executable, script, "no-such-revision", "--rounds", "1", "--steps", "2"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0


def test_ab_commits_startup_child_stops_at_the_first_step(mnist_dir):
    # --startup runs this child for each version; here with the installed package.
    sys.path.insert(0, BENCH)
    try:
        import ab_commits
    finally:
        sys.path.remove(BENCH)
    start = time.time()
    out = subprocess.run([sys.executable, "-c", ab_commits.STARTUP, mnist_dir], check=True, capture_output=True,
                         text=True)
    assert start < float(out.stdout.split()[-1]) < time.time()


def test_ab_commits_distortion_child_times_the_dispatched_kernel(mnist_dir):
    # --distortion runs this child for each version; here with the installed package, on
    # 4 batches an epoch instead of all 469.
    sys.path.insert(0, BENCH)
    try:
        import ab_commits
    finally:
        sys.path.remove(BENCH)
    out = subprocess.run([sys.executable, "-c", ab_commits.DISTORT, mnist_dir, BENCH, "4"], check=True, capture_output=True,
                         text=True)
    assert 0 < float(out.stdout.split()[-1]) < 60


def test_ab_inprocess_times_two_versions_in_one_process(mnist_dir):
    # HEAD against the working tree, in one process under two package names: the script
    # runs end to end, and the two networks (same code in a clean checkout, or code that
    # keeps the bits) end bit-identical.
    script = os.path.join(BENCH, "ab_inprocess.py")
    env = {**os.environ, "FASTMLP_DATA_DIR": mnist_dir}
    out = subprocess.run([sys.executable, script, "HEAD", ".", "--config", "book-b32", "--rounds", "2", "--block", "3"],
                         check=True, capture_output=True, text=True, env=env)
    assert "old (HEAD): median" in out.stdout and "new (.): median" in out.stdout and "old / new" in out.stdout
    assert "weights after the last round: bit-identical" in out.stdout


def test_distortion_benchmark_runs(mnist_dir):
    script = os.path.join(BENCH, "distortion.py")
    env = {**os.environ, "FASTMLP_DATA_DIR": mnist_dir}
    out = subprocess.run([sys.executable, script, "--rounds", "1", "--batches", "2"], check=True, capture_output=True,
                         text=True, env=env)
    assert "dispatch runs distort_gather_lanes" in out.stdout and "images/s" in out.stdout and "of a" in out.stdout


def test_presets_benchmark_runs_the_command(mnist_dir):
    script = os.path.join(BENCH, "presets.py")
    out = subprocess.run([sys.executable, script, "--preset", "book", "--seeds", "0", "--data-dir", mnist_dir, "--",
                          "--epochs", "1", "--limit", "2000"], check=True, capture_output=True, text=True)
    rows = [l for l in out.stdout.splitlines() if l.startswith("| 0 |") or l.startswith("| mean |")]
    assert len(rows) == 2 and rows[0].split("|")[4] == rows[1].split("|")[4]  # one seed: its full is the mean
