"""Training steps of two versions of fastmlp side by side: which one is faster, as a ratio.

    python benchmarks/ab_commits.py OLD [NEW] [--config book-b256] [--rounds 7] [--steps 200]
    python benchmarks/ab_commits.py OLD [NEW] --startup cold|warm [--rounds 7]
    python benchmarks/ab_commits.py OLD [NEW] --distortion [--rounds 7]

OLD and NEW are git revisions of this repository ("." is the working tree, the default
for NEW). Each is copied out (fastmlp/ with kernels/ as fastmlp/kernels) into a temporary
directory with its own Numba cache, which an untimed run of both versions at once fills
first (each compiles on a core of its own). Then, for --rounds rounds, a child process
of each version in turn (old first in even rounds, new first in odd ones) warms up,
times --steps training steps of --config three times and reports the median as seconds
per 60,000-sample epoch. Printed: each version's median over
rounds and the median of the per-round ratios OLD / NEW (above 1: NEW is faster).
Alternating processes is what makes the ratio trustworthy on a machine whose speed swings
by a third within minutes. Data: FASTMLP_DATA_DIR or --data-dir.

--startup times instead, in the same alternation, `fastmlp.train` of the book preset from
the launch of the process to the end of its first step: cold with a new, empty Numba
cache every run, warm with each version's own cache.

--distortion times, in the same alternation, the dispatch table's float32 distort_gather
over the 60,000 training images in batches of 128 with the simard preset's distortions
(as train() calls it; the median of three epochs in each child).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CHILD = r"""
import json, statistics, sys, time
import numpy as np
from fastmlp import PRESETS, TrainConfig, load, optim, prepare
from fastmlp.train import build_network
config, steps, data_dir = sys.argv[1], int(sys.argv[2]), sys.argv[3] or None
kind, bs = config.split("-b")
bs = int(bs)
settings = dict(PRESETS[kind])
settings.update(batch_size=bs, batch_ramp=None, shift=0)
cfg = TrainConfig(**settings)
p = prepare(load(data_dir), cfg.standardize, np.float32)
net = build_network(cfg, p.train_x.shape[1], 10)
opt = optim.make(cfg.optimizer, net.params.size, net.dtype)
n = min(steps, p.train_x.shape[0] // bs)

def run(n):
    t0 = time.perf_counter()
    for s in range(n):
        lo = s * bs
        if hasattr(net, "train_step"):  # commits from bf6e3d7 on
            net.train_step(p.train_x[lo:lo + bs], p.train_t[lo:lo + bs], s)
        else:
            net.forward(p.train_x[lo:lo + bs], training=True, step=s)
            net.loss_and_backward(p.train_t[lo:lo + bs])
        opt.step(net.params, net.grads, cfg.lr)
    return (time.perf_counter() - t0) * 60000 / (n * bs)

run(min(n, 20))  # compiles (or loads) the kernels, warms the caches
print(json.dumps(statistics.median([run(n) for _ in range(3)])))
"""

STARTUP = r"""
import sys, time
from fastmlp import PRESETS, TrainConfig, load
from fastmlp.train import train

class FirstStep(Exception):
    pass

def first_step(done, total):
    print(time.time(), flush=True)
    raise FirstStep

try:
    train(TrainConfig(**PRESETS["book"]), load(sys.argv[1] or None), on_step=first_step)
except FirstStep:
    pass
"""

DISTORT = r"""
import json, statistics, sys
import numpy as np
sys.path.insert(0, sys.argv[2])  # benchmarks/, for distortion.py's epoch loop
from distortion import distortion_epoch
from fastmlp import PRESETS, TrainConfig, load
from fastmlp.kernels.dispatch import Kernels
from fastmlp.train import prepare_for
config = TrainConfig(**PRESETS["simard"])
prepared = prepare_for(config, load(sys.argv[1] or None))
background = float(np.float32(-prepared.mean / prepared.std))
kernel = Kernels("float32").distort_gather
order = np.random.default_rng(0).permutation(len(prepared.train_x))
batches = int(sys.argv[3]) if len(sys.argv) > 3 else len(order)  # a quick check: fewer
distortion_epoch(kernel, prepared, order, config, background, 128, 2)  # compiles (or loads) the kernel
print(json.dumps(statistics.median(
    [distortion_epoch(kernel, prepared, order, config, background, 128, batches)[0] for _ in range(3)])))
"""


def export(rev, into):
    """Copy revision rev (or the working tree for ".") as an importable fastmlp package."""
    site = os.path.join(into, "site")
    os.makedirs(site)
    src = os.path.join(into, "src")
    if rev == ".":
        src = ROOT
    else:
        os.makedirs(src)
        archive = os.path.join(into, "rev.tar")
        git = subprocess.run(["git", "-C", ROOT, "archive", "-o", archive, rev, "fastmlp", "kernels"],
                             capture_output=True, text=True)
        if git.returncode:
            sys.exit(f"ab_commits: cannot export revision {rev!r}: {git.stderr.strip()}")
        with tarfile.open(archive) as t:
            t.extractall(src, filter="data")
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(os.path.join(src, "fastmlp"), os.path.join(site, "fastmlp"), ignore=ignore)
    shutil.copytree(os.path.join(src, "kernels"), os.path.join(site, "fastmlp", "kernels"), ignore=ignore)
    return site


def revision_arguments(rounds):
    """The arguments both A/B scripts take: OLD [NEW], --config, --rounds."""
    ap = argparse.ArgumentParser()
    ap.add_argument("old")
    ap.add_argument("new", nargs="?", default=".")
    ap.add_argument("--config", default="book-b256",
                    choices=["book-b32", "book-b64", "book-b128", "book-b256", "deep-b128"])
    ap.add_argument("--rounds", type=int, default=rounds)
    return ap


def main():
    ap = revision_arguments(7)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--startup", choices=["cold", "warm"], default=None)
    ap.add_argument("--distortion", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sides = {}
        for name, rev in (("old", args.old), ("new", args.new)):
            d = os.path.join(tmp, name)
            sides[name] = (export(rev, d), os.path.join(d, "numba-cache"))

        def start(name, script, *argv, cache=None):
            site, own = sides[name]
            env = {**os.environ, "PYTHONPATH": site, "NUMBA_CACHE_DIR": cache or own}
            return subprocess.Popen([sys.executable, "-c", script, *argv], env=env, cwd=tmp,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

        def finish(name, process):
            """The last line `process` (version `name`) printed; exits if it failed."""
            stdout, stderr = process.communicate()
            if process.returncode:
                sys.exit(f"ab_commits: the {name} version failed:\n{stderr.strip()}")
            return stdout.strip().splitlines()[-1]

        def child(name, script, *argv, cache=None):
            """Run `script` with version `name`; its last line of output."""
            return finish(name, start(name, script, *argv, cache=cache))

        def fill_caches(script, *argv):
            """One untimed run of each version at once, so each compiles into its own cache
            on a core of its own before anything is timed."""
            for name, process in [(name, start(name, script, *argv)) for name in sides]:
                finish(name, process)

        bench = os.path.dirname(os.path.abspath(__file__))
        if args.startup:
            def once(name):
                begin = time.time()
                cache = tempfile.mkdtemp(dir=tmp) if args.startup == "cold" else None
                return float(child(name, STARTUP, args.data_dir, cache=cache)) - begin
            if args.startup == "warm":
                fill_caches(STARTUP, args.data_dir)
            title, digits = f"{args.startup} start of the book preset to the end of its first step", 2
        elif args.distortion:
            def once(name):
                return json.loads(child(name, DISTORT, args.data_dir, bench))
            fill_caches(DISTORT, args.data_dir, bench, "1")
            title, digits = "distorting 60,000 images (the simard preset's distortions, batch 128)", 3
        else:
            def once(name):
                return json.loads(child(name, CHILD, args.config, str(args.steps), args.data_dir))
            fill_caches(CHILD, args.config, "1", args.data_dir)
            title, digits = f"{args.config}, {args.rounds} rounds of {args.steps} steps", 3
        times = {"old": [], "new": []}
        for r in range(args.rounds):
            for name in (["old", "new"] if r % 2 == 0 else ["new", "old"]):  # neither side always goes first
                times[name].append(once(name))
    ratios = [o / n for o, n in zip(times["old"], times["new"])]
    per = "" if args.startup or args.distortion else " per 60,000-sample epoch"
    print(f"{title}; seconds{per}, {args.rounds} rounds")
    for name, rev in (("old", args.old), ("new", args.new)):
        print(f"  {name} ({rev}): median {statistics.median(times[name]):.{digits}f} s  "
              f"(rounds: {', '.join(f'{t:.{digits}f}' for t in times[name])})")
    print(f"  old / new: median {statistics.median(ratios):.3f}x  (range {min(ratios):.3f}-{max(ratios):.3f}x)")


if __name__ == "__main__":
    main()
