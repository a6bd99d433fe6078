"""Start-up cost: wall time from launching a process to the end of its first training
step, with an empty Numba cache (cold) and with the cache it left behind (warm). The
child does what `fastmlp train` does before its first step: read MNIST, build the book
network, K.warmup() the kernels training and preparing the data will call, standardize
the data, then one step.

    python benchmarks/startup.py [--repeats 3] [--data-dir DIR] [--compare-helpers]

Each run gets its own NUMBA_CACHE_DIR (a fresh temporary directory for cold runs).
--compare-helpers: each repeat also runs cold with warmup's helper processes turned off
(helpers=0, one process compiling everything), alternated with the default, and prints
the ratio of the medians.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import time, sys
from fastmlp import PRESETS, TrainConfig, load, optim, prepare
from fastmlp import kernels as K
from fastmlp.train import build_network, data_kernels, kernels_for
import numpy as np
ds = load(sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else None)
helpers = int(sys.argv[2]) if len(sys.argv) > 2 else None
config = TrainConfig(**PRESETS["book"])
net = build_network(config, 784, 10)
sgd = optim.make("sgd", net.params.size, net.dtype)
K.warmup(np.float32, kernels_for(config, net, sgd) + data_kernels(config, ds), helpers=helpers)
p = prepare(ds, True, np.float32)
x, t = p.train_x[:256], p.train_t[:256]
net.train_step(x, t); sgd.step(net.params, net.grads, 1.0)
print(time.time())
"""


def first_step(cache_dir, data_dir, helpers=None):
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.time()
    args = [data_dir or ""] + ([str(helpers)] if helpers is not None else [])
    out = subprocess.run([sys.executable, "-c", CHILD] + args, env=env, capture_output=True, text=True,
                         check=True).stdout
    return float(out.strip().splitlines()[-1]) - start


def _line(label, xs):
    return f"{label}: median {statistics.median(xs):.2f} s  ({', '.join(f'{x:.2f}' for x in xs)})"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--compare-helpers", action="store_true")
    args = ap.parse_args()
    cold, warm, alone = [], [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(first_step(d, args.data_dir))
            warm.append(first_step(d, args.data_dir))
        if args.compare_helpers:
            with tempfile.TemporaryDirectory() as d:
                alone.append(first_step(d, args.data_dir, helpers=0))
    print(_line("cold (empty cache)", cold))
    print(_line("warm (cache present)", warm))
    if alone:
        print(_line("cold, no helper processes", alone))
        print(f"cold without helpers / with: {statistics.median(alone) / statistics.median(cold):.2f}x")


if __name__ == "__main__":
    main()
