"""Sweeps: a base configuration and lists of values, every combination trained, several at a
time, with one results table.

A sweep file (TOML):

    [base]                 # any experiment-file keys (see fastmlp.config), preset included
    preset = "book"
    epochs = 5

    [grid]                 # each key: a list of values; every combination is one run
    crop = [0, 2, 4]
    hidden = [[100], [200]]

Each finished run is stored as OUT/runs/<id>.json (written atomically), so re-running an
interrupted sweep skips the finished runs. A run that fails is reported in the table and
does not stop the others. Workers get cores // workers Numba threads each; the kernels are
compiled once, before the fan-out, into the shared on-disk cache.
"""
import concurrent.futures
import contextlib
import csv
import hashlib
import io
import itertools
import json
import multiprocessing
import os
import socket
import tempfile
import threading
import time

from fastmlp import config as C
from fastmlp.files import publish


class SweepError(ValueError):
    """A sweep file that cannot run; one line naming the file."""


def read(path):
    """(list of (run id, TrainConfig values dict, the grid values of that run))."""
    try:
        table = C.read_toml(path)
    except C.ConfigError as e:
        raise SweepError(str(e)) from None
    unknown = sorted(set(table) - {"base", "grid"})
    if unknown:
        raise SweepError(f"{path}: unknown key {unknown[0]!r} (a sweep file has [base] and [grid])")
    base, grid = table.get("base", {}), table.get("grid", {})
    if not isinstance(grid, dict) or not grid:
        raise SweepError(f"{path}: no runs: [grid] is missing or empty")
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{path}: grid key {key!r} must be a non-empty list of values")
    runs = []
    keys = list(grid)
    for combo in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, combo))
        try:
            values = C.values_from_table({**base, **point}, path)
            C.TrainConfig(**values).validate()
        except C.ConfigError as e:
            raise SweepError(str(e)) from None
        except (ValueError, TypeError) as e:
            raise SweepError(f"{path}: run {point}: {e}") from None
        run_id = hashlib.sha256(json.dumps(C.to_dict(C.TrainConfig(**values)), sort_keys=True).encode()).hexdigest()[:12]
        runs.append((run_id, values, point))
    return runs


# Runs in one process one at a time where Numba's threading layer is not thread-safe
# (kernels.thread_safe(): a Dask worker runs tasks in threads, and two threads launching
# parallel kernels at once under workqueue abort the process).
_ONE_AT_A_TIME = threading.Lock()


def _worker_data(directory, how):
    """The dataset at the client's data location; DataError saying that this worker has no
    access to it when the worker cannot read the four files there."""
    from fastmlp import data as D
    missing = [n for n in D.FILES.values() if not D.find_file(directory, n)]
    if missing or not os.access(directory, os.R_OK | os.X_OK):
        raise D.DataError(f"worker {socket.gethostname()} has no access to the data directory {directory} "
                          f"(the client's {how}; missing here: {', '.join(missing) or 'read permission'}); "
                          f"make it readable at the same path on every worker, or pass --data-dir with one")
    return D.load(directory, allow_download=False)


def run_one(values, data, threads):
    """Train one configuration on data = (directory, how it was found on the client);
    returns a result dict (never raises)."""
    start = time.perf_counter()
    try:
        from fastmlp import kernels as K
        from fastmlp.train import TrainConfig, train
        config = TrainConfig(**{**values, "threads": threads})
        with contextlib.nullcontext() if K.thread_safe() else _ONE_AT_A_TIME:
            _, records = train(config, _worker_data(*data))
        last = records[-1]
        return dict(status="ok", val_acc=last["val_acc"], test_acc=last["test_acc"], full_acc=last["full_acc"],
                    seconds=time.perf_counter() - start)
    except Exception as e:  # reported in the table; the sweep goes on
        message = str(e).splitlines()[0] if str(e) else ""
        return dict(status="failed", error=f"{type(e).__name__}: {message}", seconds=time.perf_counter() - start)


def _write_json(path, obj):
    fd, tmp = tempfile.mkstemp(prefix=".run-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f)
    publish(tmp, path)


def run_sweep(path, out_dir, workers=None, data_dir=None, scheduler=None, log=print):
    """Run every combination not already finished in out_dir; returns the rows of the table."""
    runs = read(path)
    cores = os.cpu_count() or 1
    workers = max(1, min(workers or cores, len(runs)))
    threads = max(1, cores // workers)
    runs_dir = os.path.join(out_dir, "runs")
    os.makedirs(runs_dir, exist_ok=True)
    done = {}
    for run_id, _, _ in runs:
        f = os.path.join(runs_dir, f"{run_id}.json")
        if os.path.exists(f):
            with open(f) as fh:
                result = json.load(fh)
            if result.get("status") == "ok":
                done[run_id] = result
    todo = [(i, v, p) for i, v, p in runs if i not in done]
    log(f"{len(runs)} runs: {len(done)} already finished, {len(todo)} to go; {workers} workers x {threads} threads"
        + (f" on {scheduler}" if scheduler else ""))
    if todo:
        # The client's data location goes with every run: a Dask worker does not see the
        # client's FASTMLP_DATA_DIR, and its own cache may be empty and offline.
        from fastmlp import data as D
        source = D.locate(data_dir, log=log)
        data = (os.path.abspath(source.directory), source.how)
        # Compile once, here, so that the workers load the kernels from the on-disk cache.
        import numpy as np
        from fastmlp import kernels as K
        for dtype in sorted({v.get("dtype", "float32") for _, v, _ in todo}):
            K.warmup(np.dtype(dtype))
        executor, client = _executor(scheduler, workers)
        try:
            futures = {executor.submit(run_one, values, data, threads): (run_id, values, point)
                       for run_id, values, point in todo}
            for future in concurrent.futures.as_completed(futures):
                run_id, values, point = futures[future]
                result = dict(future.result(), point=point, config=C.to_dict(C.TrainConfig(**values)))
                _write_json(os.path.join(runs_dir, f"{run_id}.json"), result)
                done[run_id] = result
                log(f"  {run_id} {point}: {result['status']}")
        finally:
            executor.shutdown(wait=True)
            if client is not None:
                client.close()
    rows = [dict(id=run_id, **point, **{k: done[run_id].get(k) for k in
                                         ("status", "val_acc", "test_acc", "full_acc", "seconds", "error")})
            for run_id, _, point in runs]
    _write_csv(os.path.join(out_dir, "results.csv"), rows)
    return rows


def _executor(scheduler, workers):
    if scheduler is None:
        ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited thread pools
        return concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx), None
    try:
        from distributed import Client
    except ImportError:
        raise SweepError("--scheduler needs Dask: pip install 'fastmlp[dask]'") from None
    try:
        client = Client(scheduler, timeout=10)
    except (OSError, TimeoutError) as e:
        raise SweepError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
    return client.get_executor(pure=False), client


def _write_csv(path, rows):
    buffer = io.StringIO()
    fields = list(rows[0])
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, list) else v for k, v in row.items()})
    fd, tmp = tempfile.mkstemp(prefix=".results-", dir=os.path.dirname(path))
    with os.fdopen(fd, "w", newline="") as f:
        f.write(buffer.getvalue())
    publish(tmp, path)


def markdown(rows):
    fields = [k for k in rows[0] if k != "error"] + (["error"] if any(r.get("error") for r in rows) else [])
    lines = ["| " + " | ".join(fields) + " |", "|" + "---|" * len(fields)]
    for r in rows:
        cells = []
        for k in fields:
            v = r.get(k)
            cells.append("" if v is None else f"{v:.2f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
