"""The deep-networks issue's experiments, each printing a Markdown table.

    python benchmarks/experiments.py crop   [--data-dir DIR] [--seeds 0,1,2]   # border crop 0..10, centre 8x8
    python benchmarks/experiments.py depth  [--data-dir DIR]   # 8 hidden layers: ReLU vs shifted ReLU
    python benchmarks/experiments.py ramp   [--data-dir DIR]   # batch-size ramp vs fixed batch

crop uses the book network (784-100-10 sigmoid, batch 256, lr 1, 10 epochs, no shuffle) on
the cropped inputs. depth trains 8 hidden layers of 100 units (SGD lr 0.05, batch 64, 10 epochs) with He
and with the book's initialisation, and reports each layer's weight RMS before and after. ramp
trains the deep preset's network both ways for the same number of epochs.
"""
import argparse
import time

from fastmlp import PRESETS, TrainConfig, load, train


def run(config, ds):
    start = time.perf_counter()
    net, records = train(config, ds)
    return net, records[-1], time.perf_counter() - start


def crop(ds, seeds):
    print(f"| input | pixels | val % | test % | full % (mean of seeds {', '.join(map(str, seeds))}) | full % per seed | train s/epoch |")
    print("|---|---|---|---|---|---|---|")
    cases = [(f"crop {n}", dict(crop=n)) for n in range(0, 11)] + [("centre 8x8", dict(center=8))]
    for label, extra in cases:
        lasts, seconds = [], []
        for seed in seeds:
            net, last, _ = run(TrainConfig(**{**PRESETS["book"], **extra, "seed": seed}), ds)
            lasts.append(last)
            seconds.append(last["seconds"])
        mean = lambda k: sum(l[k] for l in lasts) / len(lasts)
        per_seed = " / ".join(f"{l['full_acc']:.2f}" for l in lasts)
        print(f"| {label} | {net.W[0].shape[1]} | {mean('val_acc'):.2f} | {mean('test_acc'):.2f} | "
              f"{mean('full_acc'):.2f} | {per_seed} | "
              f"{min(seconds):.2f} |", flush=True)


def depth(ds):
    from fastmlp.train import build_network
    for init in ("he", "book"):
        rows = {}
        for act in ("relu", "shifted_relu"):
            config = TrainConfig(hidden=(100,) * 8, activation=(act,), init=init, optimizer="sgd", lr=0.05,
                                 batch_size=64, epochs=10, seed=0)
            net, last, _ = run(config, ds)
            rows[act] = (net.weight_stats(), last)
        start = build_network(config, 784, 10).weight_stats()  # same seed: the same initial weights
        print(f"\ninit = {init}\n")
        print("| layer | RMS at init | RMS after, ReLU | RMS after, shifted ReLU |")
        print("|---|---|---|---|")
        for s0, a, b in zip(start, rows["relu"][0], rows["shifted_relu"][0]):
            print(f"| {a['layer']} | {s0['rms']:.4f} | {a['rms']:.4f} | {b['rms']:.4f} |")
        print()
        for act, (_, last) in rows.items():
            print(f"- {act}: val {last['val_acc']:.2f}%, test {last['test_acc']:.2f}%, full {last['full_acc']:.2f}%")


def ramp(ds, epochs):
    print("| batch | val % | test % | full % | wall s |")
    print("|---|---|---|---|---|")
    for label, extra in (("ramp 32 -> 256", dict(batch_ramp=32)), ("fixed 256", dict(batch_ramp=None)),
                         ("fixed 32", dict(batch_ramp=None, batch_size=32))):
        _, last, wall = run(TrainConfig(**{**PRESETS["deep"], "epochs": epochs, **extra}), ds)
        print(f"| {label} | {last['val_acc']:.2f} | {last['test_acc']:.2f} | {last['full_acc']:.2f} | {wall:.0f} |",
              flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("experiment", choices=["crop", "depth", "ramp"])
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--epochs", type=int, default=10, help="epochs for ramp")
    ap.add_argument("--seeds", default="0,1,2", help="seeds for crop, comma-separated")
    args = ap.parse_args()
    ds = load(args.data_dir)
    {"crop": lambda: crop(ds, [int(v) for v in args.seeds.split(",")]), "depth": lambda: depth(ds), "ramp": lambda: ramp(ds, args.epochs)}[args.experiment]()


if __name__ == "__main__":
    main()
