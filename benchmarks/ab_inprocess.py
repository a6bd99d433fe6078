"""Training steps of two versions of fastmlp in one process, block by block: which one is
faster, as a ratio, and whether they compute the same bits.

    python benchmarks/ab_inprocess.py OLD [NEW] [--config book-b256] [--rounds 30]

OLD and NEW are git revisions ("." is the working tree, the default for NEW). Each is
copied out as a package of its own name (fastmlp_old, fastmlp_new: the name fastmlp
rewritten in its sources); two child processes compile their kernels into one cache at
once, then both are imported into this process and each trains its own copy of the
network on the same batches. A round runs --block steps of each, in
alternating order; every fourth round both networks start again from the same fresh
weights (a long run reaches tiny gradients, whose subnormal numbers slow the products
down and would weigh on the later rounds). Printed: each version's median time per
60,000-sample epoch and the median of the per-round ratios OLD / NEW (above 1: NEW is
faster), and whether the two networks' weights are bit-identical at the end.

Both versions share the machine's moments: a slow minute slows both, so the ratio of
neighbouring blocks is far steadier here than across processes (ab_commits.py), which
wait seconds apart. Data: FASTMLP_DATA_DIR or --data-dir. No figure here is asserted by a
test.
"""
import argparse
import importlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab_commits import export, revision_arguments  # noqa: E402  (the same export and arguments)


def renamed(rev, into, name):
    """Export revision rev and rename its package fastmlp -> name; returns the site dir."""
    site = export(rev, into)
    os.rename(os.path.join(site, "fastmlp"), os.path.join(site, name))
    word = re.compile(r"\bfastmlp\b")
    for folder, _, files in os.walk(os.path.join(site, name)):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                with open(path, encoding="utf-8") as fh:
                    text = fh.read()
                with open(path, "w", encoding="utf-8") as fh:
                    fh.write(word.sub(name, text))
    return site


def versions(mods, config, data_dir):
    """For each imported version: its network and optimizer for `config`, both from the
    same settings; returns (prepared data, settings, batch size, nets, optimizers)."""
    kind, bs = config.split("-b")
    bs = int(bs)
    first = mods.get("new") or next(iter(mods.values()))  # the settings of NEW
    settings = dict(first.PRESETS[kind])
    settings.update(batch_size=bs, batch_ramp=None, shift=0)
    cfg = first.TrainConfig(**settings)
    p = first.prepare(first.load(data_dir), cfg.standardize, np.float32)
    nets, opts = {}, {}
    for side, m in mods.items():
        train = importlib.import_module(f"{m.__name__}.train")
        nets[side] = train.build_network(m.TrainConfig(**settings), p.train_x.shape[1], 10)
        opts[side] = m.optim.make(cfg.optimizer, nets[side].params.size, nets[side].dtype)
    return p, cfg, bs, nets, opts


def steps_of(p, cfg, bs, nets, opts, pos):
    """run(side, n): n training steps of version `side`, in seconds."""
    steps = p.train_x.shape[0] // bs

    def run(side, n):
        net, opt = nets[side], opts[side]
        start = time.perf_counter()
        for _ in range(n):
            lo = (pos[side] % steps) * bs
            if hasattr(net, "train_step"):  # commits from bf6e3d7 on
                net.train_step(p.train_x[lo:lo + bs], p.train_t[lo:lo + bs], pos[side])
            else:
                net.forward(p.train_x[lo:lo + bs], training=True, step=pos[side])
                net.loss_and_backward(p.train_t[lo:lo + bs])
            opt.step(net.params, net.grads, cfg.lr)
            pos[side] += 1
        return time.perf_counter() - start
    return run


def main():
    ap = revision_arguments(30)
    ap.add_argument("--block", type=int, default=None, help="steps of each version a round (default: a fifth "
                    "of an epoch for the book network, 10 for the deep one)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--fill-cache", nargs=2, metavar=("SITE", "NAME"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.fill_cache:  # a child: compile one version's kernels into NUMBA_CACHE_DIR
        sys.path.insert(0, args.fill_cache[0])
        p, cfg, bs, nets, opts = versions({"one": importlib.import_module(args.fill_cache[1])}, args.config,
                                          args.data_dir)
        steps_of(p, cfg, bs, nets, opts, {"one": 0})("one", 5)
        return
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tmp, "numba-cache"))
        sites = {side: (renamed(rev, os.path.join(tmp, side), f"fastmlp_{side}"), f"fastmlp_{side}")
                 for side, rev in (("old", args.old), ("new", args.new))}
        # Both versions compile at once, each in a child on a core of its own; this process
        # then loads their kernels from the cache.
        children = [subprocess.Popen([sys.executable, os.path.abspath(__file__), args.old, args.new, "--config",
                                      args.config, *(["--data-dir", args.data_dir] if args.data_dir else []),
                                      "--fill-cache", site, name], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True) for site, name in sites.values()]
        for child in children:
            _, stderr = child.communicate()
            if child.returncode:
                sys.exit(f"ab_inprocess: a version failed:\n{stderr.strip()}")
        mods = {}
        for side, (site, name) in sites.items():
            sys.path.insert(0, site)
            mods[side] = importlib.import_module(name)
        p, cfg, bs, nets, opts = versions(mods, args.config, args.data_dir)
        kind = args.config.split("-b")[0]
        steps = p.train_x.shape[0] // bs
        block = args.block or (max(10, steps // 5) if kind == "book" else 10)
        pos = {"old": 0, "new": 0}
        run = steps_of(p, cfg, bs, nets, opts, pos)

        for side in nets:
            run(side, 5)  # compiles (or loads) the kernels
        times = {"old": [], "new": []}
        for r in range(args.rounds):
            if r % 4 == 0:
                for side, net in nets.items():
                    net.initialize(cfg.init, r)
                    opts[side] = mods[side].optim.make(cfg.optimizer, net.params.size, net.dtype)
                    pos[side] = 0
            for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
                times[side].append(run(side, block))
        same = bool((nets["old"].params.view("int32") == nets["new"].params.view("int32")).all())
    per_epoch = 60000 / (block * bs)
    ratios = [o / n for o, n in zip(times["old"], times["new"])]
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else ratios * 3
    print(f"{args.config}, one process, {args.rounds} rounds of {block} steps each; seconds per 60,000-sample epoch")
    for side, rev in (("old", args.old), ("new", args.new)):
        print(f"  {side} ({rev}): median {statistics.median(times[side]) * per_epoch:.3f} s")
    print(f"  old / new: median {statistics.median(ratios):.3f}x  (quartiles {q[0]:.3f}-{q[2]:.3f}x)")
    print(f"  weights after the last round: {'bit-identical' if same else 'different'}")


if __name__ == "__main__":
    main()
