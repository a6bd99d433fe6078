"""fastmlp sweep: local process pool and a Dask cluster on 127.0.0.1; resumable; failures
reported; bad sweep files rejected."""
import csv
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from fastmlp import sweep as S
from fastmlp.cli.main import main
from conftest import ROOT

GRID = """
[base]
hidden = [16]
epochs = 1
limit = 600
[grid]
crop = [0, 4]
lr = [0.5, 1.0]
"""


def _sweep(tmp_path, text, *args):
    f = tmp_path / "grid.toml"
    f.write_text(text)
    out = tmp_path / "out"
    return CliRunner().invoke(main, ["sweep", str(f), "--out", str(out), *args]), out


def test_local_sweep_table_and_resume(tmp_path, mnist_dir):
    r, out = _sweep(tmp_path, GRID, "--workers", "2", "--data-dir", mnist_dir)
    assert r.exit_code == 0, r.output
    table = [l for l in r.stdout.splitlines() if l.startswith("| ") and "crop" not in l]
    assert len(table) == 4 and all("| ok |" in l for l in table)
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4 and {r["crop"] for r in rows} == {"0", "4"}
    assert all(0 < float(r["full_acc"]) <= 100 for r in rows)
    # An interrupted sweep: forget one run, re-run, only that one trains again.
    victim = sorted(os.listdir(out / "runs"))[0]
    os.remove(out / "runs" / victim)
    r2, _ = _sweep(tmp_path, GRID, "--workers", "2", "--data-dir", mnist_dir)
    assert r2.exit_code == 0 and "3 already finished, 1 to go" in r2.stderr


def test_a_failed_run_is_reported_and_the_others_finish(tmp_path, mnist_dir, monkeypatch):
    # lr 1e38 overflows float32 within three steps (Inf loss): that run fails, the other finishes.
    text = (GRID.replace("lr = [0.5, 1.0]", "lr = [0.5, 1e38]").replace("crop = [0, 4]", "crop = [0]")
            .replace("epochs = 1", "epochs = 1\nbatch_size = 50"))
    r, out = _sweep(tmp_path, text, "--workers", "2", "--data-dir", mnist_dir)
    assert r.exit_code == 1
    lines = [l for l in r.stdout.splitlines() if l.startswith("| ") and "status" not in l]
    assert sum("| ok |" in l for l in lines) == 1 and sum("| failed |" in l for l in lines) == 1
    assert "Diverged" in r.stdout


@pytest.mark.parametrize("text,needle", [
    ("[base]\nepochs = 1\n", "no runs"),
    ("[base]\nepochs = 1\n[grid]\n", "no runs"),
    ("[grid]\nlr = []\n", "must be a non-empty list"),
    ("[grid]\nlearning_rate = [0.1]\n", "unknown key 'learning_rate'"),
    ("[grid]\ncrop = [20]\n", "crop must be between 0 and 13"),
    ("[runs]\nx = 1\n", "unknown key 'runs'"),
])
def test_bad_sweep_files(tmp_path, text, needle):
    r, out = _sweep(tmp_path, text)
    assert r.exit_code == 2 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_example_sweeps_parse():
    for name in os.listdir(ROOT / "examples"):
        if name.startswith("sweep-"):
            assert S.read(ROOT / "examples" / name), name


def test_dask_cluster_on_localhost(tmp_path, mnist_dir):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(host="127.0.0.1", protocol="tcp", n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:
        r, out = _sweep(tmp_path, GRID, "--scheduler", cluster.scheduler_address, "--workers", "2",
                        "--data-dir", mnist_dir)
    assert r.exit_code == 0, r.output
    assert len(os.listdir(out / "runs")) == 4
    results = [json.loads((out / "runs" / f).read_text()) for f in os.listdir(out / "runs")]
    assert all(x["status"] == "ok" for x in results)


def test_dask_threads_under_numbas_workqueue_layer(tmp_path):
    # Numba's workqueue threading layer aborts the process when two threads launch parallel
    # kernels at once; a Dask worker runs its tasks in threads, so run_one then trains one at
    # a time (kernels.thread_safe()). The test above, in a fresh process with that layer.
    pytest.importorskip("distributed")
    env = {**os.environ, "NUMBA_THREADING_LAYER": "workqueue"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--basetemp", str(tmp_path / "t"),
                        f"{__file__}::test_dask_cluster_on_localhost"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def _dask_cluster(tmp_path, wrap=()):
    """A `dask scheduler` and one `dask worker` process on 127.0.0.1, started as a user would,
    the worker without FASTMLP_DATA_DIR, with an empty cache and no reachable mirror."""
    bin_dir = os.path.dirname(sys.executable)
    dask = os.path.join(bin_dir, "dask")
    if not os.path.exists(dask):
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(scheduler_file)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    env = {k: v for k, v in os.environ.items() if k != "FASTMLP_DATA_DIR"}
    (tmp_path / "worker-cache").mkdir()
    env.update(XDG_CACHE_HOME=str(tmp_path / "worker-cache"), FASTMLP_MIRRORS="http://127.0.0.1:9/")
    procs.append(subprocess.Popen([*wrap, dask, "worker", "--scheduler-file", str(scheduler_file), "--nthreads", "1",
                                   "--nworkers", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs, scheduler_file


def _address(scheduler_file, procs):
    import time
    distributed = pytest.importorskip("distributed")
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    address = json.loads(scheduler_file.read_text())["address"]
    with distributed.Client(address, timeout=30) as client:
        client.wait_for_workers(1, timeout=60)
    return address


def _stop(procs):
    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()


def test_dask_workers_get_the_clients_data_location(tmp_path, mnist_dir, monkeypatch):
    # The user's shell has FASTMLP_DATA_DIR; the workers were started without it.
    pytest.importorskip("distributed")
    monkeypatch.setenv("FASTMLP_DATA_DIR", mnist_dir)
    procs, scheduler_file = _dask_cluster(tmp_path)
    try:
        r, out = _sweep(tmp_path, GRID.replace("crop = [0, 4]", "crop = [0]"), "--scheduler",
                        _address(scheduler_file, procs))
    finally:
        _stop(procs)
    assert r.exit_code == 0, r.output
    results = [json.loads((out / "runs" / f).read_text()) for f in os.listdir(out / "runs")]
    assert len(results) == 2 and all(x["status"] == "ok" for x in results), results


def test_a_worker_without_access_to_the_data_says_so(tmp_path, mnist_dir, monkeypatch):
    # The worker runs in its own mount namespace where an empty file system covers the
    # client's data directory: the path exists there, the files do not.
    pytest.importorskip("distributed")
    data = tmp_path / "client-data"
    data.mkdir()
    for name in os.listdir(mnist_dir):
        if name.endswith(".gz"):
            os.symlink(os.path.join(mnist_dir, name), data / name)
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs none {data} && ls {data}"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or probe.stdout.strip():
        pytest.skip("cannot hide a directory in a mount namespace here (needs unshare and root)")
    monkeypatch.setenv("FASTMLP_DATA_DIR", str(data))
    hide = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs none {data} && exec "$@"', "sh"]
    procs, scheduler_file = _dask_cluster(tmp_path, hide)
    try:
        r, out = _sweep(tmp_path, GRID.replace("crop = [0, 4]", "crop = [0]"), "--scheduler",
                        _address(scheduler_file, procs))
    finally:
        _stop(procs)
    assert r.exit_code == 1
    results = [json.loads((out / "runs" / f).read_text()) for f in os.listdir(out / "runs")]
    assert len(results) == 2 and all(x["status"] == "failed" for x in results), results
    assert all("has no access to the data directory" in x["error"] and str(data) in x["error"] for x in results)
    assert all("FASTMLP_DATA_DIR" in x["error"] for x in results)
