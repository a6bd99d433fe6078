"""Start-up cost: wall time from launching a process to the end of its first training
step, with an empty Numba cache (cold) and with the cache it left behind (warm).

    python benchmarks/startup.py [--repeats 3] [--data-dir DIR]

Each run gets its own NUMBA_CACHE_DIR (a fresh temporary directory for cold runs).
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
from fastmlp import PRESETS, TrainConfig, load, prepare
from fastmlp import kernels as K
from fastmlp.train import build_network
import numpy as np
ds = load(sys.argv[1] if len(sys.argv) > 1 else None)
p = prepare(ds, True, np.float32)
net = build_network(TrainConfig(**PRESETS["book"]), 784, 10)
x, t = p.train_x[:256], p.train_t[:256]
net.train_step(x, t); K.sgd_step(net.params, net.grads, 1.0)
print(time.time())
"""


def first_step(cache_dir, data_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    start = time.time()
    out = subprocess.run([sys.executable, "-c", CHILD] + ([data_dir] if data_dir else []),
                         env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1]) - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    cold, warm = [], []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as d:
            cold.append(first_step(d, args.data_dir))
            warm.append(first_step(d, args.data_dir))
    print(f"cold (empty cache): median {statistics.median(cold):.2f} s  ({', '.join(f'{x:.2f}' for x in cold)})")
    print(f"warm (cache present): median {statistics.median(warm):.2f} s  ({', '.join(f'{x:.2f}' for x in warm)})")


if __name__ == "__main__":
    main()
