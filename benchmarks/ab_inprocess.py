"""Training steps of two versions of fastmlp in one process, block by block: which one is
faster, as a ratio, and whether they compute the same bits.

    python benchmarks/ab_inprocess.py OLD [NEW] [--config book-b256] [--rounds 30]

OLD and NEW are git revisions ("." is the working tree, the default for NEW). Each is
copied out as a package of its own name (fastmlp_old, fastmlp_new: the name fastmlp
rewritten in its sources), both are imported into this process and each trains its own
copy of the network on the same batches. A round runs --block steps of each, in
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
import importlib
import os
import re
import statistics
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


def main():
    ap = revision_arguments(30)
    ap.add_argument("--block", type=int, default=None, help="steps of each version a round (default: a fifth "
                    "of an epoch for the book network, 10 for the deep one)")
    ap.add_argument("--data-dir", default=None)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("NUMBA_CACHE_DIR", os.path.join(tmp, "numba-cache"))
        mods = {}
        for side, rev in (("old", args.old), ("new", args.new)):
            name = f"fastmlp_{side}"
            sys.path.insert(0, renamed(rev, os.path.join(tmp, side), name))
            mods[side] = importlib.import_module(name)
        kind, bs = args.config.split("-b")
        bs = int(bs)
        nets, opts = {}, {}
        settings = dict(mods["new"].PRESETS[kind])
        settings.update(batch_size=bs, batch_ramp=None, shift=0)
        cfg = mods["new"].TrainConfig(**settings)
        p = mods["new"].prepare(mods["new"].load(args.data_dir), cfg.standardize, np.float32)
        for side, m in mods.items():
            train = importlib.import_module(f"{m.__name__}.train")
            nets[side] = train.build_network(m.TrainConfig(**settings), p.train_x.shape[1], 10)
            opts[side] = m.optim.make(cfg.optimizer, nets[side].params.size, nets[side].dtype)
        steps = p.train_x.shape[0] // bs
        block = args.block or (max(10, steps // 5) if kind == "book" else 10)
        pos = {"old": 0, "new": 0}

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
