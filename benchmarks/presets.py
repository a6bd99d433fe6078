"""Each preset's figures and wall time, seed by seed, from the command a user types.

    python benchmarks/presets.py --preset speedrun --seeds 0,1,2 [--data-dir DIR] [-- extra train options]

Runs `fastmlp train --preset P --seed S --json` as a child process per seed (the kernel
cache warm, as after `fastmlp warmup`), times the command from start to exit, and prints
val / test / full, the wall time and where it went: start-up (the interpreter, imports and
the command line: the command's time less the run's own), reading the data, compiling or
loading the kernels, training and evaluation; then the mean over the seeds. Nothing here
is asserted by a test.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def run(preset, seed, data_dir, extra):
    script = os.path.join(os.path.dirname(sys.executable), "fastmlp")  # the console script beside this Python
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "fastmlp.cli.main"]
    command += ["train", "--preset", preset, "--seed", str(seed), "--json"]
    if data_dir:
        command += ["--data-dir", data_dir]
    start = time.perf_counter()
    out = subprocess.run(command + list(extra), capture_output=True, text=True)
    wall = time.perf_counter() - start
    if out.returncode != 0:
        sys.exit(f"{' '.join(command)}: exit {out.returncode}: {out.stderr.strip()[-300:]}")
    final = json.loads(out.stdout.strip().splitlines()[-1])
    return dict(seed=seed, val=final["val_acc"], test=final["test_acc"], full=final["full_acc"], wall=wall,
                startup=wall - final["wall_seconds"], data=final["data_seconds"], compile=final["compile_seconds"],
                training=final["seconds"], evaluation=final["eval_seconds"], epochs=final["epochs"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", required=True)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--data-dir", default=os.environ.get("FASTMLP_DATA_DIR"))
    ap.add_argument("extra", nargs="*", help="further `fastmlp train` options (after --)")
    a = ap.parse_args()
    rows = []
    print(f"fastmlp train --preset {a.preset} {' '.join(a.extra)}".rstrip())
    print("| seed | val | test | full | wall s | start-up | data | kernels | training | evaluation |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in a.seeds.split(",")):
        r = run(a.preset, seed, a.data_dir, a.extra)
        rows.append(r)
        print(f"| {seed} | {r['val']:.2f} | {r['test']:.2f} | **{r['full']:.2f}** | {r['wall']:.1f} | "
              f"{r['startup']:.2f} | {r['data']:.2f} | {r['compile']:.2f} | {r['training']:.1f} | {r['evaluation']:.2f} |",
              flush=True)
    mean = {k: statistics.mean(r[k] for r in rows) for k in rows[0] if k != "seed"}
    print(f"| mean | {mean['val']:.2f} | {mean['test']:.2f} | **{mean['full']:.2f}** | {mean['wall']:.1f} | "
          f"{mean['startup']:.2f} | {mean['data']:.2f} | {mean['compile']:.2f} | {mean['training']:.1f} | "
          f"{mean['evaluation']:.2f} |")


if __name__ == "__main__":
    main()
