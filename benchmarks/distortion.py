"""What distorting the training images costs: an epoch of distort_gather (60,000 MNIST
images in batches of 128, as train() calls it) against a training epoch of 784-800-10
(ReLU, dropout 0.3, Adam, batch 128) in the same process, alternated round by round.

    python benchmarks/distortion.py [--rounds 5] [--elastic 34,4] [--rotate 15] [--scale 0.15] [--shear 15]
                                    [--threads N] [--batches N]

Prints, per round and as medians: the distortion epoch with the dispatch table's kernel
(the fast layer's where it applies) and with the plain kernel, images/s, and the share of
the training epoch. --batches N times only the first N batches of each (a quick check).
"""
import argparse
import statistics
import time

import numba
import numpy as np

from fastmlp import TrainConfig, load, optim
from fastmlp import kernels as K
from fastmlp.augment import gaussian_taps
from fastmlp.kernels.dispatch import Kernels
from fastmlp.step import step as one_step
from fastmlp.train import build_network, prepare_for


def distortion_epoch(kernel, prepared, order, config, background, batch, batches):
    R = C = 28
    X = np.empty((batch, len(prepared.pixels)), np.float32)
    work = np.empty((batch, 4, R * C), np.float32)
    taps = gaussian_taps(config.elastic_sigma, np.float32)
    start = time.perf_counter()
    n = 0
    for s, lo in enumerate(range(0, min(len(order), batches * batch), batch)):
        rows = order[lo:lo + batch]
        kernel(X[:len(rows)], work, prepared.train_images, rows, prepared.pixels, R, C, background, config.shift,
               config.elastic_alpha, taps, config.rotate, config.scale, config.shear, config.seed, s)
        n += len(rows)
    return time.perf_counter() - start, n


def training_epoch(network, optimizer, prepared, order, batch, batches):
    start = time.perf_counter()
    n = 0
    for s, lo in enumerate(range(0, min(len(order), batches * batch), batch)):
        rows = order[lo:lo + batch]
        x, t = network.x[:len(rows)], network.t[:len(rows)]
        np.take(prepared.train_x, rows, axis=0, out=x)
        np.take(prepared.train_t, rows, axis=0, out=t)
        one_step(network, optimizer, x, t, s, 1e-3, None)
        n += len(rows)
    return time.perf_counter() - start, n


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--elastic", default="34,4")
    ap.add_argument("--rotate", type=float, default=15.0)
    ap.add_argument("--scale", type=float, default=0.15)
    ap.add_argument("--shear", type=float, default=15.0)
    ap.add_argument("--shift", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--batches", type=int, default=10 ** 9)
    ap.add_argument("--data-dir", default=None)
    a = ap.parse_args()
    if a.threads:
        numba.set_num_threads(a.threads)
    alpha, sigma = (float(v) for v in a.elastic.split(","))
    config = TrainConfig(hidden=(800,), activation=("relu",), init="he", optimizer="adam", lr=1e-3, dropout=0.3,
                         batch_size=128, elastic_alpha=alpha, elastic_sigma=sigma, rotate=a.rotate, scale=a.scale,
                         shear=a.shear, shift=a.shift)
    config.validate()
    dataset = load(a.data_dir)
    prepared = prepare_for(config, dataset)
    background = float(np.float32(-prepared.mean / prepared.std))
    network = build_network(config, 784, 10)
    optimizer = optim.make("adam", network.params.size, network.dtype, weights=network.weight_slices)
    fast = Kernels("float32").distort_gather
    plain = K.distort_gather
    rng = np.random.default_rng(0)
    print(f"distortion: elastic {alpha:g},{sigma:g}  rotate {a.rotate:g}  scale {a.scale:g}  shear {a.shear:g}  "
          f"shift {a.shift}; {numba.get_num_threads()} threads; dispatch runs "
          f"{K.dispatch.table('float32')['distort_gather'].implementation}")
    order = rng.permutation(len(prepared.train_x))
    distortion_epoch(fast, prepared, order[:256], config, background, 128, 2)  # compile / load both
    distortion_epoch(plain, prepared, order[:256], config, background, 128, 2)
    training_epoch(network, optimizer, prepared, order[:256], 128, 2)
    rows = []
    for r in range(a.rounds):
        order = rng.permutation(len(prepared.train_x))
        f, n = distortion_epoch(fast, prepared, order, config, background, 128, a.batches)
        t, _ = training_epoch(network, optimizer, prepared, order, 128, a.batches)
        p, _ = distortion_epoch(plain, prepared, order, config, background, 128, a.batches)
        rows.append((f, p, t))
        print(f"round {r + 1}: distortion {f:.3f} s ({n / f:,.0f} images/s), plain kernel {p:.3f} s, "
              f"training epoch {t:.3f} s: share {f / t:.1%} (plain {p / t:.1%})")
    f, p, t = (statistics.median(c) for c in zip(*rows))
    share = statistics.median(r[0] / r[2] for r in rows)
    plain_share = statistics.median(r[1] / r[2] for r in rows)
    print(f"median of {a.rounds}: distortion {f:.3f} s = {n / f:,.0f} images/s, {share:.1%} of a {t:.3f} s training "
          f"epoch; plain kernel {p:.3f} s = {n / p:,.0f} images/s, {plain_share:.1%}")


if __name__ == "__main__":
    main()
