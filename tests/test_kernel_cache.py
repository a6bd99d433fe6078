"""The on-disk kernel cache: an entry compiled from other kernel sources is never loaded
(Numba alone would miss a change to a helper that lives in another file), and a
read-only package directory still gets a cache."""
import os
import subprocess
import sys


def _hits_misses(script, env, cwd):
    """Run `script` in a fresh process; what it prints (cache hits and misses), as a list."""
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.split()


def _copy_package(site):
    """fastmlp with its kernels, as an installed package under `site` (no caches)."""
    import shutil
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    shutil.copytree(os.path.join(root, "fastmlp"), site / "fastmlp", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(os.path.join(root, "kernels"), site / "fastmlp" / "kernels", ignore=shutil.ignore_patterns("__pycache__"))
    return site / "fastmlp" / "kernels"


def test_editing_a_helper_in_another_file_recompiles_the_kernels_that_inline_it(tmp_path):
    """activation_forward inlines vexp from kernels/_math.py. Numba's own stamp covers only
    activations.py; ours also covers every kernel file activations.py imports, so an edit
    to _math.py must not load the old compiled code, while an edit to optim.py, which
    activations.py does not import, recompiles the optimizers only."""
    kernels = _copy_package(tmp_path / "site")
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "NUMBA_CACHE_DIR": str(tmp_path / "cache"),
           "FASTMLP_NUMBA_CACHE": "1"}
    script = ("import numpy as np, fastmlp.kernels as K; a = np.ones((2, 3), np.float32); "
              "K.activation_forward(a, a, 1); K.sgd_step(a.ravel(), a.ravel(), 0.1)\n"
              "for k in (K.activation_forward, K.sgd_step):\n"
              "    s = k.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values()), end=' ')")

    def hits_misses():
        return _hits_misses(script, env, tmp_path)

    assert hits_misses() == ["0", "1", "0", "1"]  # compiled and cached
    assert hits_misses() == ["1", "0", "1", "0"]  # same sources: loaded
    with open(kernels / "_math.py", "a") as f:
        f.write("\n# an edit to a helper\n")
    # activations.py and optim.py are unchanged, yet both import _math.py: compiled afresh
    assert hits_misses() == ["0", "1", "0", "1"]
    assert hits_misses() == ["1", "0", "1", "0"]  # and cached again
    with open(kernels / "optim.py", "a") as f:
        f.write("\n# an edit to an optimizer\n")
    assert hits_misses() == ["1", "0", "0", "1"]  # only the optimizer is compiled again


def test_cache_works_when_the_package_directory_is_read_only(tmp_path):
    """An installed copy of the package whose kernels/ directory cannot be written (made
    immutable with chattr, which binds root too): the compiled kernels go to the per-user
    cache instead, and a second process loads them from there."""
    import shutil
    import pytest
    site = tmp_path / "site"
    kernels = _copy_package(site)
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
                  "K.warmup(np.float32, ['sgd_step', 'dense_forward'], helpers=0); "
                  "s = K.sgd_step.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values())); "
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


def test_every_parallel_kernel_compiles_to_a_parallel_loop(copy_cache):
    # A prange that Numba cannot turn into a parallel loop (e.g. prange(a if c else b))
    # only warns and runs on one thread: the results stay right, so no other test
    # notices. copy_cache compiled every kernel into an empty cache with that warning
    # turned into an error (conftest.compile_every_kernel).
    for returncode, stdout, stderr in copy_cache[1]:
        assert returncode == 0 and stdout.strip() == "ok", stderr[-2000:]


def test_warmup_hands_kernels_the_cache_lacks_to_a_helper_process(tmp_path):
    """K.warmup(helpers=1) with an empty cache: this process compiles its share (the longer
    one, dense_forward's implementation), a helper process compiles activation_forward's
    into the cache, and this process then loads that from the cache instead of compiling it."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "FASTMLP_NUMBA_CACHE": "1"}
    script = ("import numpy as np, fastmlp.kernels as K\n"
              "K.warmup(np.float32, ['dense_forward', 'activation_forward'], helpers=1)\n"
              "chosen = K.dispatch.table(np.float32)\n"
              "for k in (K.KERNELS[chosen[op].implementation].compiled[0] for op in ('dense_forward', 'activation_forward')):\n"
              "    s = k.stats; print(sum(s.cache_hits.values()), sum(s.cache_misses.values()), end=' ')")

    def hits_misses():
        return _hits_misses(script, env, tmp_path)

    assert hits_misses() == ["0", "1", "1", "0"]
    assert hits_misses() == ["1", "0", "1", "0"]  # and with everything cached, no helper is needed


def test_warmup_shares_the_data_kernels_and_starts_no_helper_once_they_are_cached(tmp_path):
    """train() warms up the byte kernels that prepare() calls with the training kernels, so
    a cold start compiles them in parallel; byte_counts has code for bytes only, and warm-up
    must look for that code (not for float32's, which never exists), or every warm start
    would start a helper for nothing."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "FASTMLP_NUMBA_CACHE": "1"}
    script = ("import numpy as np, fastmlp.kernels as K\n"
              "from fastmlp.kernels._runtime import compile as C\n"
              "started = []\n"
              "real = C.start\n"
              "C.start = lambda *a: started.append(a[3]) or real(*a)\n"
              "K.warmup(np.float32, ['dense_forward', 'byte_counts', 'lookup_bytes', 'activation_forward'], helpers=1)\n"
              "s = K.byte_counts.stats\n"
              "print(len(started), sum(s.cache_hits.values()) + sum(s.cache_misses.values()), "
              "[str(t) for t in K.byte_counts.signatures])")
    first = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True, capture_output=True,
                           text=True).stdout
    again = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True, capture_output=True,
                           text=True).stdout
    assert first.startswith("1 1 ") and "uint8" in first
    assert again.startswith("0 1 ") and "uint8" in again


def test_split_gives_this_process_the_longest_kernel_and_helpers_less_for_their_start():
    from fastmlp.kernels._runtime import compile as C
    names = ["dense_backward_6x16", "dense_forward_2x4", "activation_forward_stretches", "byte_counts",
             "lookup_bytes"]
    groups = C.split(names, 2)
    assert groups[0][0] == "dense_backward_6x16" and sorted(sum(groups, [])) == sorted(names)
    load = [sum(C._seconds(n) for n in g) for g in groups]
    assert abs(load[0] - (load[1] + C.HELPER_START)) <= max(C._seconds(n) for n in names)
    assert C.split(["lookup_bytes"], 3) == [["lookup_bytes"]]


def test_the_import_scan_finds_every_form_of_relative_import(tmp_path, monkeypatch):
    """A kernel's cache stamp covers the kernels files it imports; the scan that finds them
    reads text, so every way of writing a relative import must be found: one name, several,
    a parenthesised list over lines with a comment, a backslash continuation, `from . import`,
    two dots, an import inside a function and one after a semicolon. Absolute imports and
    names that are not files add nothing."""
    from fastmlp.kernels._runtime import jit
    files = ["one.py", "two.py", "three.py", "four.py", "five.py", "six.py", "seven.py", "pkg/__init__.py",
             "pkg/inner.py", "pkg/leaf.py", "unused.py"]
    for name in files:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    (tmp_path / "pkg" / "inner.py").write_text(
        "import numpy as np\n"
        "from numba import njit\n"
        "from ..one import x\n"
        "from ..two import (a,  # a comment, seven\n"
        "                   b as c)\n"
        "from ..three import a, \\\n    b\n"
        "from . import leaf, missing\n"
        "from .. import four as f\n"
        "def g():\n"
        "    from ..five import y\n"
        "    return y\n"
        "z = 1; from ..six import q\n")
    monkeypatch.setattr(jit, "_ROOT", str(tmp_path))
    monkeypatch.setattr(jit, "_IMPORTS", {})
    found = jit._imports_of(os.path.join("pkg", "inner.py"))
    assert found == {"one.py", "two.py", "three.py", "four.py", "five.py", "six.py", os.path.join("pkg", "leaf.py")}
