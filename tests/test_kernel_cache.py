"""The on-disk kernel cache is emptied when any kernel source changes (Numba alone would
miss a change to a helper that lives in another file)."""
import os
import subprocess
import sys

SCRIPT = ("import numpy as np; from fastmlp import kernels as K; K.warmup(np.float32, ['sgd_step']); "
          "print(K.cache_dirs()[0])")


def _run(env):
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def test_cache_is_dropped_when_the_sources_change(tmp_path):
    from fastmlp.kernels import SOURCES_STAMP, sources_digest
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "FASTMLP_NUMBA_CACHE": "1"}
    d = _run(env)
    assert d.startswith(str(tmp_path))
    stamp = os.path.join(d, SOURCES_STAMP)
    cached = lambda: sorted(f for f in os.listdir(d) if f.endswith((".nbi", ".nbc")))
    first = cached()
    assert any(f.startswith("optim.") for f in first)
    assert open(stamp).read().strip() == sources_digest()
    # Same sources: the cache is kept (the files are not rewritten).
    mtimes = {f: os.stat(os.path.join(d, f)).st_mtime_ns for f in first}
    _run(env)
    assert {f: os.stat(os.path.join(d, f)).st_mtime_ns for f in first} == mtimes
    # A stamp from other sources (as after editing kernels/_math.py): the old files go.
    with open(stamp, "w") as f:
        f.write("0" * 64 + "\n")
    with open(os.path.join(d, "activations.stale-1.nbc"), "wb") as f:
        f.write(b"old code")
    _run(env)
    assert "activations.stale-1.nbc" not in os.listdir(d)
    assert open(stamp).read().strip() == sources_digest()
    assert any(f.startswith("optim.") for f in cached())  # compiled afresh


def test_cache_works_when_the_package_directory_is_read_only(tmp_path):
    """An installed copy of the package whose kernels/ directory cannot be written (made
    immutable with chattr, which binds root too): the compiled kernels go to the per-user
    cache instead, and a second process loads them from there."""
    import shutil
    import pytest
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    site = tmp_path / "site"
    shutil.copytree(os.path.join(root, "fastmlp"), site / "fastmlp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(root, "kernels"), site / "fastmlp" / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    kernels = site / "fastmlp" / "kernels"
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(kernels)], capture_output=True).returncode:
        pytest.skip("chattr +i is not available here (not root, or the filesystem lacks it)")
    try:
        probe = kernels / "probe"
        try:
            probe.write_text("x")
            pytest.skip("the immutable directory is still writable")
        except OSError:
            pass
        env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
        env.update(PYTHONPATH=str(site), XDG_CACHE_HOME=str(tmp_path / "cache"), HOME=str(tmp_path / "home"),
                   FASTMLP_NUMBA_CACHE="1")
        script = ("import numpy as np, fastmlp.kernels as K; print(K.__file__); "
                  "K.warmup(np.float32, ['sgd_step', 'dense_forward']); "
                  "s = K.dense_forward.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values())); "
                  "print(K.cache_dirs()[0])")
        out = [subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True, capture_output=True,
                              text=True).stdout.split("\n") for _ in range(2)]
        assert out[0][0].startswith(str(site))  # the copy was imported, not the checkout
        assert out[0][2].startswith(str(tmp_path / "cache"))  # the per-user fallback
        assert not (kernels / "__pycache__").exists()
        assert out[0][1].split() == ["0", "1"], out[0]  # first process: compiled (a cache miss)
        assert out[1][1].split() == ["1", "0"], out[1]  # second process: loaded from the cache
        assert not any(f.endswith(".nbc") for f in os.listdir(kernels))
    finally:
        subprocess.run(["chattr", "-i", str(kernels)], check=True)
