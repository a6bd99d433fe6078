"""Shared fixtures. MNIST is found exactly as `fastmlp train` finds it: $FASTMLP_DATA_DIR
when set (CI points it at ../shared/data/mnist), else the per-user cache, downloading what
is missing from the mirrors ($FASTMLP_MIRRORS, else the public ones) with SHA-256 checks."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def copy_project(target):
    """The project's files as a clone of this checkout would have them (tracked files and
    untracked ones git does not ignore; no virtualenv, no caches)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=False)
    if listed.returncode != 0:  # not a git checkout: copy everything but the usual litter
        shutil.copytree(ROOT, target, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info"))
        return
    for rel in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / rel
        if source.is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / rel)


class PackageCopy:
    """A copy of the project whose package a child Python imports instead of the installed
    one: the recipes and edit tests change its files, never the checkout's. `path(rel)`
    is a file of the copy (kernels/losses.py, fastmlp/optim.py, ...); `run(args)` runs
    `python -c` or `-m fastmlp.cli.main` with the copy first on the path."""

    def __init__(self, tmp_path, cache=None):
        self.cache = cache
        self.project = tmp_path / "project"
        self.project.mkdir()
        copy_project(self.project)
        # The installed layout, by links: fastmlp/, fastmlp/kernels -> kernels/, fastmlp/cli -> cli/.
        self.root = tmp_path / "site"
        (self.root / "fastmlp").mkdir(parents=True)
        for entry in (self.project / "fastmlp").iterdir():
            os.symlink(entry, self.root / "fastmlp" / entry.name)
        os.symlink(self.project / "kernels", self.root / "fastmlp" / "kernels")
        os.symlink(self.project / "cli", self.root / "fastmlp" / "cli")

    def path(self, rel):
        return self.project / rel

    def edit(self, rel, old, new):
        text = self.path(rel).read_text()
        assert text.count(old) == 1, (rel, old)
        self.path(rel).write_text(text.replace(old, new))

    def run(self, args, env=None, timeout=900):
        shared = {"NUMBA_CACHE_DIR": str(self.cache), "FASTMLP_NUMBA_CACHE": "1"} if self.cache else {}
        env = {**os.environ, **shared, **(env or {}), "PYTHONPATH": str(self.root)}
        return subprocess.run([sys.executable, *args], cwd=self.root, env=env, capture_output=True, text=True,
                              timeout=timeout)

    def cli(self, args, env=None):
        return self.run(["-m", "fastmlp.cli.main", *args], env)


def compile_every_kernel(copy):
    """Compile every kernel the dispatch table chooses, float32 and float64 in two children
    at once (each compiles on one core, no helper processes), with Numba's warning that a
    prange did not become a parallel loop turned into an error. Returns each child's
    (return code, stdout, stderr)."""
    head = ("import warnings, numba, numpy as np\n"
            "warnings.simplefilter('error', numba.NumbaPerformanceWarning)\n"
            "import fastmlp.kernels as K\n")
    scripts = [head + "K.warmup(np.float32, helpers=0)\n"
               "from fastmlp.kernels.fast import dense\n"
               "x = np.ones((9, 20), np.float32)\n"
               "dense.dense_forward_tiles(np.empty((9, 5), np.float32), x, np.ones((5, 20), np.float32),"
               " np.zeros(5, np.float32), 2, dense.counters())\n"
               "print('ok')\n",
               head + "K.warmup(np.float64, helpers=0)\nprint('ok')\n"]
    env = {**os.environ, "NUMBA_CACHE_DIR": str(copy.cache), "FASTMLP_NUMBA_CACHE": "1", "PYTHONPATH": str(copy.root)}
    children = [subprocess.Popen([sys.executable, "-c", script], env=env, cwd=copy.root, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for script in scripts]
    results = []
    for child in children:
        stdout, stderr = child.communicate()
        results.append((child.returncode, stdout, stderr))
    return results


def _copy_at_the_one_path(tmp_path_factory, cache):
    """A PackageCopy at the path every copy of this test run uses, replacing the last one."""
    where = tmp_path_factory.getbasetemp() / "package-copy"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir()
    return PackageCopy(where, cache)


@pytest.fixture(scope="session")
def copy_cache(tmp_path_factory):
    """The kernel cache the package copies share, and what filling it reported.

    The copies live at one path (each test's copy replaces the last), so their unedited
    kernels load from this cache instead of compiling in every test; the sources digest in
    each entry's stamp (kernels/_runtime/jit.py) makes a test's edit recompile exactly the
    kernels that reach it. It is filled once, from empty, by compile_every_kernel."""
    cache = tmp_path_factory.mktemp("copy-kernel-cache")
    return cache, compile_every_kernel(_copy_at_the_one_path(tmp_path_factory, cache))


@pytest.fixture
def copy(tmp_path_factory, copy_cache):
    """A PackageCopy of the project for a test that edits the package, at the one path
    every copy uses, sharing the kernel cache copy_cache filled."""
    return _copy_at_the_one_path(tmp_path_factory, copy_cache[0])


def final_json(r):
    """The last JSON line a successful `fastmlp train --json` run printed."""
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def mnist_dir():
    from fastmlp import data as D
    try:
        return D.locate(log=print).directory
    except D.DataError as e:
        pytest.fail(f"MNIST is not available: {e}")


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    from fastmlp import load
    return load(mnist_dir)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def assert_close(actual, expected, dtype, rtol=0.0, atol=0.0):
    """The one comparison helper: shape, then dtype, then values within rtol/atol."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.dtype(dtype), f"dtype {actual.dtype} != {np.dtype(dtype)}"
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=rtol, atol=atol)


# Tolerances, justified: float64 kernels differ from NumPy only by summation order
# (reassociated dot products), ~1e-15 relative per term, so 1e-12 on sums; float32 sums of
# up to ~1000 terms of O(1) values lose ~sqrt(n) * 6e-8, so 1e-4 relative with a small
# absolute floor for results near zero. Elementwise kernels use the same libm functions.
TOL = {np.float64: dict(rtol=1e-12, atol=1e-12), np.float32: dict(rtol=1e-4, atol=1e-5)}


@pytest.fixture
def thread_safe_kernels():
    """For tests that run kernels from several Python threads at once: skips them where
    Numba's threading layer is not thread-safe (workqueue: it aborts the process)."""
    from fastmlp import kernels as K
    if not K.thread_safe():
        pytest.skip("Numba's workqueue threading layer is not thread-safe (install libgomp or tbb)")
