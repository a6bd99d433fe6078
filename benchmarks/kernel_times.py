"""Kernel timings in isolation, and where a training step's time goes, for working on a
kernel: edit it, rerun this, compare.

    python benchmarks/kernel_times.py [--repeats 200] [--threads N]
    python benchmarks/kernel_times.py --steps book-b256|book-b128|deep-b128 [--batches 200]

Without --steps: each kernel on the shapes the book and deep networks give it, float32,
the fastest and the 25th-percentile time of --repeats calls (after a warm-up call), and
for products the GFLOP/s of both and NumPy's BLAS on the same product in the same run.
With --steps: that many training steps on real MNIST (FASTMLP_DATA_DIR or --data-dir),
with a timer around every kernel call, printed as milliseconds per 60,000-sample epoch.
The timer adds about a microsecond a call. No figure here is asserted by a test.
"""
import argparse
import collections
import os
import sys
import time

import numba
import numpy as np

from fastmlp import PRESETS, TrainConfig, load, optim, prepare
from fastmlp import kernels as K
from fastmlp.kernels._runtime.jit import host_has_avx512
from fastmlp.kernels.fast import dense as D
from fastmlp.kernels._runtime.jit import WIDE_FEATURES
from fastmlp.kernels.fast.matmul import tile_columns
from fastmlp.train import build_network

# name: (kernel, M, K, N) for Y[M, N] = A B, as the dense layer calls it: dense_forward
# for the forward pass (A = X, B = Wᵀ, W read along k), matmul_tn for dW (A = dY read
# transposed, B = X), matmul_nn for dX (A = dY, B = W).
PRODUCTS = {
    "book forward, batch 256": ("dense_forward", 256, 784, 100),
    "book forward, batch 32": ("dense_forward", 32, 784, 100),
    "book dW1, batch 256": ("matmul_tn", 100, 256, 784),
    "book dW1, batch 128": ("matmul_tn", 100, 128, 784),
    "deep forward 1, batch 128": ("dense_forward", 128, 784, 1200),
    "deep forward 2, batch 128": ("dense_forward", 128, 1200, 1200),
    "deep dX2, batch 128": ("matmul_nn", 128, 1200, 1200),
    "deep dW2, batch 128": ("matmul_tn", 1200, 128, 1200),
    "deep dW1, batch 128": ("matmul_tn", 1200, 128, 784),
}


def timed(f, repeats):
    f()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts), float(np.percentile(ts, 25))


def isolated(repeats):
    rng = np.random.default_rng(0)
    f32 = np.float32
    print("product                          | kernel            |   M x   K x   N | fastmlp GFLOP/s best / p25 | NumPy best / p25")
    for name, (kern, M, Kd, N) in PRODUCTS.items():
        A = rng.standard_normal((M, Kd)).astype(f32)
        B = rng.standard_normal((Kd, N)).astype(f32)
        Y = np.empty((M, N), f32)
        b = np.zeros(N, f32)
        flops = 2 * M * Kd * N
        if kern == "matmul_nn":
            ours = timed(lambda: K.matmul_nn(Y, A, B, b, tile_columns(f32)), repeats)
        elif kern == "matmul_tn":
            At = np.ascontiguousarray(A.T)
            ours = timed(lambda: K.matmul_tn(Y, At, B, b, tile_columns(f32)), repeats)
        else:
            Bt = np.ascontiguousarray(B.T)
            ours = timed(lambda: K.dense_forward(Y, A, Bt, b), repeats)
        blas = timed(lambda: np.matmul(A, B, out=Y), repeats)
        print(f"{name:32s} | {kern:17s} | {M:4d} x{Kd:4d} x{N:4d} | {flops / ours[0] / 1e9:7.1f} / {flops / ours[1] / 1e9:7.1f}"
              f"        | {flops / blas[0] / 1e9:6.1f} / {flops / blas[1] / 1e9:6.1f}")
    print()
    print("kernel                                     | best us | p25 us")
    rows = []
    Z = (rng.standard_normal((256, 10)) * 3).astype(f32)
    Tt = np.eye(10, dtype=f32)[rng.integers(0, 10, 256)]
    P, L = np.empty_like(Z), np.empty(256, f32)
    rows.append(("softmax_cross_entropy_forward 256x10", timed(lambda: K.softmax_cross_entropy_forward(P, L, Z, Tt), repeats)))
    H = rng.standard_normal((256, 100)).astype(f32)
    Ha = np.empty_like(H)
    sigmoid = K.ACTIVATIONS["sigmoid"]
    rows.append(("activation_forward sigmoid 256x100", timed(lambda: K.activation_forward(Ha, H, sigmoid), repeats)))
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    rows.append(("  the same on 1 thread", timed(lambda: K.activation_forward(Ha, H, sigmoid), repeats)))
    numba.set_num_threads(threads)
    dH, Ha2 = rng.standard_normal((256, 100)).astype(f32), np.empty_like(H)  # dZ apart from dA: no shrinking to subnormals
    rows.append(("activation_backward sigmoid 256x100", timed(lambda: K.activation_backward(Ha2, dH, H, Ha, sigmoid), repeats)))
    G = rng.standard_normal((128, 1200)).astype(f32)
    dG, G2 = rng.standard_normal((128, 1200)).astype(f32), np.empty_like(G)
    shifted = K.ACTIVATIONS["shifted_relu"]
    rows.append(("activation_backward shifted_relu 128x1200", timed(lambda: K.activation_backward(G2, dG, G, G, shifted), repeats)))
    p = rng.standard_normal(2_395_210).astype(f32)
    m, v, g = np.zeros_like(p), np.zeros_like(p), rng.standard_normal(p.size).astype(f32)
    rows.append(("adam_step 2.4M parameters", timed(lambda: K.adam_step(p, m, v, g, 1e-3, 0.9, 0.999, 1e-8, 1), max(repeats // 10, 3))))
    for name, (best, p25) in rows:
        print(f"{name:42s} | {best * 1e6:7.1f} | {p25 * 1e6:6.1f}")


def steps(config, batches, data_dir):
    kind, bs = config.split("-b")
    bs = int(bs)
    settings = dict(PRESETS[kind])
    settings.update(batch_size=bs, batch_ramp=None, shift=0)
    cfg = TrainConfig(**settings)
    ds = load(data_dir)
    p = prepare(ds, cfg.standardize, np.float32)
    net = build_network(cfg, p.train_x.shape[1], ds.classes)
    K.warmup(np.float32)
    spent = collections.Counter()

    def timer(module, name, label=None):
        f = getattr(module, name)

        def wrapped(*args):
            t0 = time.perf_counter()
            out = f(*args)
            spent[label(*args) if label else name] += time.perf_counter() - t0
            return out
        setattr(module, name, wrapped)

    # The products by shape: Y[M, N] = A B with M x K x N.
    timer(D, "matmul", lambda Y, A, B, b, w, t, *sums: f"matmul_{'tn' if t else 'nn'} {Y.shape[0]}x{B.shape[0]}x{B.shape[1]}")
    # The network calls what its dispatch table chose (net.k); the optimizers call fastmlp.kernels.
    timer(net.k, "dense_forward", lambda Y, X, W, b: f"dense_forward {X.shape[0]}x{X.shape[1]}x{W.shape[0]}")
    for name in ("activation_forward", "activation_backward", "softmax_cross_entropy_forward",
                 "softmax_cross_entropy_backward", "head", "dropout_forward", "dropout_backward"):
        if getattr(net.k, name) is not None:
            timer(net.k, name)
    for name in ("sgd_step", "adam_step"):
        timer(K, name)
    opt = optim.make(cfg.optimizer, net.params.size, net.dtype)
    n = min(batches, p.train_x.shape[0] // bs)

    def run():
        for s in range(n):
            lo = s * bs
            net.train_step(p.train_x[lo:lo + bs], p.train_t[lo:lo + bs], s)
            opt.step(net.params, net.grads, cfg.lr)

    run()
    spent.clear()
    t0 = time.perf_counter()
    run()
    total = time.perf_counter() - t0
    per_epoch = 60000 / (n * bs)
    print(f"{config}: {n} steps, {total * per_epoch:.3f} s per 60,000-sample epoch")
    for name, t in spent.most_common():
        print(f"  {name:44s} {t * per_epoch * 1000:8.1f} ms")
    print(f"  {'outside the kernels (Python)':44s} {(total - sum(spent.values())) * per_epoch * 1000:8.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--steps", choices=["book-b256", "book-b128", "book-b32", "deep-b128"])
    ap.add_argument("--batches", type=int, default=200)
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    if args.threads:
        numba.set_num_threads(args.threads)
    print(f"machine: {os.uname().machine}, {os.cpu_count()} cpus, numba {numba.__version__} "
          f"({numba.get_num_threads()} threads), numpy {np.__version__}, "
          f"forward {'8x3 vector' if host_has_avx512() else '2x4 dot'} tiles, "
          f"backward product tiles {tile_columns(np.float32)} float32 columns wide, other kernels "
          f"{'512' if WIDE_FEATURES else '256'}-bit")
    if args.steps:
        steps(args.steps, args.batches, args.data_dir)
    else:
        isolated(args.repeats)


if __name__ == "__main__":
    sys.exit(main())
