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
