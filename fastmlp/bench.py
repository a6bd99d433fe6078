"""Benchmark harness: epoch time, samples/s, GFLOP/s, fraction of the machine's float32
peak and peak RSS, for fastmlp and, in the same run, PyTorch on the CPU (when installed)
or else a plain NumPy float32 network (fastmlp.kernels.reference-style code). With
precision bf16, fastmlp runs its bf16 products (kernels/dispatch.py: precision_note says how
on this CPU) and PyTorch its forward pass and loss under torch.autocast("cpu",
dtype=torch.bfloat16); NumPy has no bfloat16, so that side stays float32.

Every measurement runs in its own child process (`python -m fastmlp.bench --child ...`),
one after another, so that one side's thread pool never competes with the other's.
FLOPs of a training epoch count the matrix products actually computed, 2 * fan_in * fan_out
a sample each: the forward product and dW of every layer, and dX only where a layer below
needs it (never for the first layer, whose input is the data): 4*784*100 + 6*100*10 =
319,600 a sample for the book network. The peak is a large float32 matrix product through
NumPy's BLAS with the same thread count, measured in the same run.
"""
import json
import os
import platform
import resource
import subprocess
import sys
import time

CONFIGS = {
    "book-b32": dict(hidden=(100,), activation="sigmoid", batch=32, optimizer="sgd", lr=1.0, dropout=0.0),
    "book-b128": dict(hidden=(100,), activation="sigmoid", batch=128, optimizer="sgd", lr=1.0, dropout=0.0),
    "book-b256": dict(hidden=(100,), activation="sigmoid", batch=256, optimizer="sgd", lr=1.0, dropout=0.0),
    "deep-b128": dict(hidden=(1200, 1200), activation="shifted_relu", batch=128, optimizer="adam", lr=1e-3,
                      dropout=0.5, input_dropout=0.2),
}


def flops_per_sample(hidden, inputs=784, classes=10):
    """FLOPs of the products of one training sample of a serial network: forward and dW
    for every layer (2 * fan_in * fan_out each), dX for every layer but the first."""
    sizes = [inputs, *hidden, classes]
    return sum((4 if i == 0 else 6) * a * b for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])))


def _data(samples):
    import numpy as np
    from fastmlp import load, prepare
    ds = load()
    p = prepare(ds, True, np.float32)
    return p.train_x[:samples], p.train_t[:samples], p.train_y[:samples]


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_fastmlp(name, samples, repeats, precision="float32"):
    import numpy as np
    from fastmlp import kernels as K
    from fastmlp import optim
    from fastmlp.network import Network
    c = CONFIGS[name]
    x, t, _ = _data(samples)
    net = Network.serial([784, *c["hidden"], 10], [c["activation"]] * len(c["hidden"]), c["batch"],
                         np.float32, "he", 0, c.get("input_dropout", 0.0), c["dropout"], precision)
    opt = optim.make(c["optimizer"], net.params.size, net.dtype)
    K.warmup(np.float32)
    bs, times, step = c["batch"], [], 0
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for lo in range(0, x.shape[0], bs):
            net.train_step(x[lo:lo + bs], t[lo:lo + bs], step)
            opt.step(net.params, net.grads, c["lr"])
            step += 1
        times.append(time.perf_counter() - start)
    return times[1:]


def child_torch(name, samples, repeats, threads, precision="float32"):
    import contextlib

    import torch
    torch.set_num_threads(threads)
    c = CONFIGS[name]
    x, _, y = _data(samples)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    act = {"sigmoid": torch.nn.Sigmoid, "shifted_relu": lambda: torch.nn.Threshold(-1.0, -1.0)}[c["activation"]]
    layers, width = [], 784
    if c.get("input_dropout"):
        layers.append(torch.nn.Dropout(c["input_dropout"]))
    for h in c["hidden"]:
        layers += [torch.nn.Linear(width, h), act()]
        if c["dropout"]:
            layers.append(torch.nn.Dropout(c["dropout"]))
        width = h
    layers.append(torch.nn.Linear(width, 10))
    model = torch.nn.Sequential(*layers)
    opt = (torch.optim.SGD if c["optimizer"] == "sgd" else torch.optim.Adam)(model.parameters(), lr=c["lr"])
    loss_fn = torch.nn.CrossEntropyLoss()
    autocast = ((lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16"
                else contextlib.nullcontext)
    bs, times = c["batch"], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for lo in range(0, x.shape[0], bs):
            opt.zero_grad(set_to_none=False)
            with autocast():
                loss = loss_fn(model(x[lo:lo + bs]), y[lo:lo + bs])
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times[1:]


def child_numpy(name, samples, repeats):
    """A plain NumPy float32 network: the same algorithm with matmuls through BLAS."""
    import numpy as np
    c = CONFIGS[name]
    x, t, _ = _data(samples)
    rng = np.random.default_rng(0)
    sizes = [784, *c["hidden"], 10]
    Ws = [(rng.standard_normal((b, a)) * np.sqrt(2 / a)).astype(np.float32) for a, b in zip(sizes[:-1], sizes[1:])]
    bs_ = [np.zeros(b, np.float32) for b in sizes[1:]]
    f = (lambda z: 1 / (1 + np.exp(-z))) if c["activation"] == "sigmoid" else (lambda z: np.maximum(z, -1))
    df = (lambda z, a: a * (1 - a)) if c["activation"] == "sigmoid" else (lambda z, a: (z > -1).astype(np.float32))
    m = [np.zeros_like(p) for p in Ws + bs_]
    v = [np.zeros_like(p) for p in Ws + bs_]
    bs, times, step = c["batch"], [], 0
    for _ in range(repeats + 1):
        start = time.perf_counter()
        for lo in range(0, x.shape[0], bs):
            xb, tb = x[lo:lo + bs], t[lo:lo + bs]
            acts, zs = [xb], []
            for i, (W, b) in enumerate(zip(Ws, bs_)):
                z = acts[-1] @ W.T + b
                zs.append(z)
                if i < len(Ws) - 1:
                    a = f(z)
                    if c["dropout"]:
                        a = a * (rng.random(a.shape) >= c["dropout"]) / (1 - c["dropout"])
                    acts.append(a)
            z = zs[-1] - zs[-1].max(axis=1, keepdims=True)
            p = np.exp(z)
            p /= p.sum(axis=1, keepdims=True)
            d = (p - tb) / xb.shape[0]
            grads = [None] * (2 * len(Ws))
            for i in range(len(Ws) - 1, -1, -1):
                grads[i] = d.T @ acts[i]
                grads[len(Ws) + i] = d.sum(axis=0)
                if i > 0:
                    d = (d @ Ws[i]) * df(zs[i - 1], acts[i])
            step += 1
            for k, (param, g) in enumerate(zip(Ws + bs_, grads)):
                if c["optimizer"] == "sgd":
                    param -= c["lr"] * g
                else:
                    m[k] = 0.9 * m[k] + 0.1 * g
                    v[k] = 0.999 * v[k] + 0.001 * g * g
                    param -= c["lr"] * (m[k] / (1 - 0.9 ** step)) / (np.sqrt(v[k] / (1 - 0.999 ** step)) + 1e-8)
        times.append(time.perf_counter() - start)
    return times[1:]


def child_peak(size=2048, repeats=5):
    """GFLOP/s of a size x size float32 matrix product through NumPy's BLAS."""
    import numpy as np
    a = np.random.default_rng(0).standard_normal((size, size)).astype(np.float32)
    b = a.T.copy()
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return [2 * size ** 3 / best / 1e9]


def _timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def _run_child(args, threads):
    from fastmlp.kernels._runtime.jit import SPIN_COUNT_SET
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "OPENBLAS_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    if SPIN_COUNT_SET and args[0] != "fastmlp":  # fastmlp's default, not the other side's
        env.pop("GOMP_SPINCOUNT", None)
    out = subprocess.run([sys.executable, "-m", "fastmlp.bench", "--child", *args], env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {' '.join(args)} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch():
    import importlib.util
    return importlib.util.find_spec("torch") is not None


def run(configs=None, threads=2, samples=None, repeats=2, rounds=1, log=print, as_json=False, precision="float32"):
    """Measure every configuration; returns a list of row dicts and prints a table (or, with
    as_json, one JSON object per configuration and side: config, side, epoch_s,
    samples_per_s, flops_per_epoch, gflops, peak_fraction, rss_mb, and on fastmlp's rows
    ratio, ratio_range and rounds).

    Each round runs one fastmlp child, then one child of the other side; a round's ratio
    compares those two neighbours in time. With several rounds the table shows the median
    of each side's epoch times, the median of the round ratios and their range, so a noisy
    machine shows up as a wide range rather than as a lucky figure."""
    import statistics
    configs = configs or list(CONFIGS)
    other = "torch" if have_torch() else "numpy"
    peak = _run_child(["peak"], threads)["values"][0]
    rows = []
    for name in configs:
        n = samples or (60000 if CONFIGS[name]["hidden"] == (100,) else 12800)
        row = {"config": name, "samples": n, "peak_gflops": peak}
        seconds = {"fastmlp": [], other: []}
        rss = {"fastmlp": 0.0, other: 0.0}
        for _ in range(rounds):
            for side in ("fastmlp", other):
                r = _run_child([side, name, str(n), str(repeats), str(threads), precision], threads)
                seconds[side].append(min(r["values"]))
                rss[side] = max(rss[side], r["rss_mb"])
        flops_per_epoch = flops_per_sample(CONFIGS[name]["hidden"]) * 60000
        for side in ("fastmlp", other):
            t = statistics.median(seconds[side])
            gflops = flops_per_sample(CONFIGS[name]["hidden"]) * n / t / 1e9
            row[side] = dict(epoch_s=t * 60000 / n, samples_per_s=n / t, flops_per_epoch=flops_per_epoch,
                             gflops=gflops, peak_fraction=gflops / peak, rss_mb=rss[side])
        ratios = [b / a for a, b in zip(seconds["fastmlp"], seconds[other])]
        row["speedup"] = statistics.median(ratios)
        row["speedup_range"] = (min(ratios), max(ratios))
        rows.append(row)
    import llvmlite.binding
    from fastmlp.kernels import dispatch
    from fastmlp.kernels._runtime.jit import WIDE_FEATURES
    chosen = dispatch.table("float32")
    width = ("auto-vectorised kernels 512-bit (FASTMLP_AVX512=1)" if WIDE_FEATURES
             else f"auto-vectorised kernels at LLVM's default width for {llvmlite.binding.get_host_cpu_name()}") \
        + f"; precision {precision}: " + ", ".join(
            f"{op} {chosen[op].implementation}" for op in
            [dispatch.precision_op(o, precision) for o in ("dense_forward", "dense_backward")]
            + (["head"] if precision == "float32" else []))
    ran = {"fastmlp": width, "torch": "bf16 autocast" if precision == "bf16" else "float32",
           "numpy": "float32 (NumPy has no bfloat16)"}
    machine = f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} cpus, {threads} threads"
    if as_json:
        for row in rows:
            for side in ("fastmlp", other):
                record = dict(config=row["config"], side=side, **row[side], samples=row["samples"],
                              peak_gflops=peak, machine=machine, precision=precision, ran=ran[side])
                if side == "fastmlp":
                    record.update(ratio=row["speedup"], ratio_range=list(row["speedup_range"]), rounds=rounds,
                                  versus=other)
                log(json.dumps(record))
        return rows
    log(f"machine: {machine}; float32 peak "
        f"(NumPy BLAS 2048^3 matmul) {peak:.0f} GFLOP/s; comparison: {_version(other)} {ran[other]}; "
        f"{rounds} round(s); fastmlp: {width}")
    log(f"| config | side | s/epoch | samples/s | GFLOP/s | of peak | peak RSS MB | {other}/fastmlp | range |")
    log("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for side in ("fastmlp", other):
            s = row[side]
            ratio = f"{row['speedup']:.2f}x" if side == "fastmlp" else ""
            spread = "{:.2f}-{:.2f}x".format(*row["speedup_range"]) if side == "fastmlp" else ""
            log(f"| {row['config']} | {side} | {s['epoch_s']:.3f} | {s['samples_per_s']:,.0f} | {s['gflops']:.1f} | "
                f"{100 * s['peak_fraction']:.0f}% | {s['rss_mb']:.0f} | {ratio} | {spread} |")
    return rows


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def _version(side):
    if side == "torch":
        import importlib.metadata
        return f"PyTorch {importlib.metadata.version('torch')}"
    return "NumPy float32"


def _child(argv):
    kind = argv[0]
    if kind == "peak":
        values = child_peak()
    elif kind == "fastmlp":
        values = child_fastmlp(argv[1], int(argv[2]), int(argv[3]), argv[5])
    elif kind == "torch":
        values = child_torch(argv[1], int(argv[2]), int(argv[3]), int(argv[4]), argv[5])
    else:
        values = child_numpy(argv[1], int(argv[2]), int(argv[3]))
    print(json.dumps({"values": values, "rss_mb": _peak_rss_mb()}))


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "--child":
    _child(sys.argv[2:])
