"""One epoch of the book network (784-100-10, sigmoid, batch 256, lr 1, no shuffle) in
fastmlp float32 and in plain NumPy float64 (benchmarks/book_numpy.py), timed in the same
run, alternating, and compared as a ratio of medians.

    python benchmarks/epoch_book.py [--repeats 7] [--threads N] [--data-dir DIR]
"""
import argparse
import os
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
        net.forward(xb)
        net.loss_and_backward(xb, tb)
        K.sgd_step(net.params, net.grads, lr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    ds = load(args.data_dir)
    config = TrainConfig(**PRESETS["book"])
    p32 = prepare(ds, True, np.float32)
    p64 = prepare(ds, True, np.float64)
    net = build_network(config, p32.train_x.shape[1], ds.classes)
    K.warmup(np.float32)
    w1, w2 = book_numpy.initialize_weights(784, 100, 10, np.random.default_rng(0))
    fastmlp_epoch(net, p32.train_x, p32.train_t, 256, 1.0)  # warm caches
    ours, theirs = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fastmlp_epoch(net, p32.train_x, p32.train_t, 256, 1.0)
        ours.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        book_numpy.train_epoch(p64.train_x, p64.train_t, w1, w2, 256, 1.0)
        theirs.append(time.perf_counter() - t0)
    a, b = statistics.median(ours), statistics.median(theirs)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, numba "
          f"{numba.__version__} ({numba.get_num_threads()} threads), numpy {np.__version__}")
    print(f"fastmlp float32     : median {a:.3f} s/epoch  (runs: {', '.join(f'{x:.3f}' for x in ours)})")
    print(f"numpy float64 (book): median {b:.3f} s/epoch  (runs: {', '.join(f'{x:.3f}' for x in theirs)})")
    print(f"ratio numpy/fastmlp : {b / a:.2f}x")


if __name__ == "__main__":
    main()
