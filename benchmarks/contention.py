"""Training beside other busy processes: how long libgomp's threads spin before they sleep.

    python benchmarks/contention.py [--spins 300000,unset] [--busy 0,1] [--batch 32] [--rounds 5]

Numba's OpenMP threading layer ends every parallel loop at a barrier. libgomp's threads
wait there by spinning GOMP_SPINCOUNT times (libgomp's default 300,000; "unset" below
leaves it to fastmlp.kernels, which sets 1000: kernels/_runtime/jit.py) before they sleep. A thread that spins is never
"woken", so when another process holds its core the scheduler gives it the core back
only at the end of a time slice, and every parallel loop can cost milliseconds.

For each --busy count (that many Python busy loops run beside the training, each in a
session of its own as if started from another terminal, started before it and killed
after) and each GOMP_SPINCOUNT value, alternated round by round,
a child process trains the book network (784-100-10) for two epochs of 20,000 images at
--batch after one untimed epoch, with as many Numba threads as cores. Printed: each
setting's median seconds and each value's median ratio to the first value's time in the
same round (above 1: faster than the first). Data: FASTMLP_DATA_DIR.
"""
import argparse
import os
import statistics
import subprocess
import sys

CHILD = r"""
import sys, time
from fastmlp import PRESETS, TrainConfig, load, train
data = load()
settings = {**PRESETS["book"], "batch_size": int(sys.argv[1]), "limit": 20000}
train(TrainConfig(**{**settings, "epochs": 1}), data)  # compiles (or loads) the kernels
start = time.perf_counter()
train(TrainConfig(**{**settings, "epochs": 2}), data)
print(time.perf_counter() - start)
"""


def timed(spins, batch):
    env = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    if spins != "unset":  # unset: fastmlp's own default (kernels/_runtime/jit.py)
        env["GOMP_SPINCOUNT"] = spins
    out = subprocess.run([sys.executable, "-c", CHILD, str(batch)], env=env, capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"contention: the child failed:\n{out.stderr.strip()}")
    return float(out.stdout.split()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spins", default="300000,unset", help="GOMP_SPINCOUNT values, comma-separated "
                    "(unset: fastmlp's default)")
    ap.add_argument("--busy", default="0,1", help="counts of busy processes beside the training")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    spins = args.spins.split(",")
    for busy in (int(b) for b in args.busy.split(",")):
        times = {s: [] for s in spins}
        ratios = {s: [] for s in spins}
        for r in range(args.rounds):
            # Each in a session of its own, as a program started from another terminal: where
            # the kernel groups processes by session (autogroup), that group gets its own share.
            loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
                     for _ in range(busy)]
            try:
                order = spins if r % 2 == 0 else spins[::-1]  # neither value always goes first
                now = {s: timed(s, args.batch) for s in order}
            finally:
                for loop in loops:
                    loop.kill()
                    loop.wait()
            for s in spins:
                times[s].append(now[s])
                ratios[s].append(now[spins[0]] / now[s])
        print(f"{busy} busy process(es), batch {args.batch}, {args.rounds} rounds; seconds for two epochs of "
              f"20,000 images, {os.cpu_count()} cores")
        for s in spins:
            print(f"  GOMP_SPINCOUNT={s}: median {statistics.median(times[s]):.3f} s  "
                  f"(rounds: {', '.join(f'{t:.3f}' for t in times[s])}); "
                  f"{spins[0]} / this: median {statistics.median(ratios[s]):.2f}x "
                  f"(range {min(ratios[s]):.2f}-{max(ratios[s]):.2f}x)")


if __name__ == "__main__":
    main()
