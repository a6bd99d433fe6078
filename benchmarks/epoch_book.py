"""One epoch of the book network (784-100-10, sigmoid, batch 256, lr 1, no shuffle) in
fastmlp float32 and in plain NumPy float64 (benchmarks/book_numpy.py), timed in the same
run and compared as a ratio of medians.

    python benchmarks/epoch_book.py [--rounds 3] [--epochs 3] [--threads N] [--data-dir DIR]

Each side runs in its own child process (after a warm-up epoch), alternating
fastmlp, numpy, fastmlp, ... for --rounds rounds: in one process, OpenBLAS's spinning
threads and Numba's thread pool slow each other down, which measures the neighbour
rather than the code.
"""
import argparse
import json
import os
import subprocess
import platform
import statistics
import sys
import time

import numba
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import book_numpy  # noqa: E402

from fastmlp import PRESETS, TrainConfig, load, prepare  # noqa: E402
from fastmlp import kernels as K  # noqa: E402
from fastmlp.train import build_network  # noqa: E402


def fastmlp_epoch(net, x, t, bs, lr):
    for lo in range(0, x.shape[0], bs):
        xb, tb = x[lo:lo + bs], t[lo:lo + bs]
        net.train_step(xb, tb)
        K.sgd_step(net.params, net.grads, lr)


def run_side(side, epochs, threads, data_dir):
    """In a child process: warm up, then time `epochs` epochs of one side; print JSON."""
    if threads:
        numba.set_num_threads(threads)
    ds = load(data_dir)
    times = []
    if side == "fastmlp":
        p = prepare(ds, True, np.float32)
        net = build_network(TrainConfig(**PRESETS["book"]), p.train_x.shape[1], ds.classes)
        K.warmup(np.float32)
        for i in range(epochs + 1):
            t0 = time.perf_counter()
            fastmlp_epoch(net, p.train_x, p.train_t, 256, 1.0)
            times.append(time.perf_counter() - t0)
    else:
        p = prepare(ds, True, np.float64)
        w1, w2 = book_numpy.initialize_weights(784, 100, 10, np.random.default_rng(0))
        for i in range(epochs + 1):
            t0 = time.perf_counter()
            book_numpy.train_epoch(p.train_x, p.train_t, w1, w2, 256, 1.0)
            times.append(time.perf_counter() - t0)
    print(json.dumps(times[1:]))  # the first epoch warms caches and is dropped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--side", choices=["fastmlp", "numpy"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        run_side(args.side, args.epochs, args.threads, args.data_dir)
        return
    extra = [f"--epochs={args.epochs}"] + ([f"--threads={args.threads}"] if args.threads else []) \
        + ([f"--data-dir={args.data_dir}"] if args.data_dir else [])
    results = {"fastmlp": [], "numpy": []}
    for _ in range(args.rounds):
        for side in results:
            out = subprocess.run([sys.executable, os.path.abspath(__file__), f"--side={side}", *extra],
                                 check=True, capture_output=True, text=True).stdout
            results[side] += json.loads(out.strip().splitlines()[-1])
    ours, theirs = results["fastmlp"], results["numpy"]
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numba "
          f"{numba.__version__} ({args.threads or numba.config.NUMBA_NUM_THREADS} threads), numpy {np.__version__}")
    print(f"fastmlp float32     : median {a:.3f} s/epoch  (runs: {', '.join(f'{x:.3f}' for x in ours)})")
    print(f"numpy float64 (book): median {b:.3f} s/epoch  (runs: {', '.join(f'{x:.3f}' for x in theirs)})")
    print(f"ratio numpy/fastmlp : {b / a:.2f}x")


if __name__ == "__main__":
    main()
