"""FASTMLP_AVX512=1: the opt-in 512-bit build. Checked in child processes, because the
setting is read once, before Numba compiles anything."""
import json
import os
import subprocess
import sys

import pytest

CHILD = r"""
import json, re, sys
import numba  # imported first on purpose: the opt-in must still take effect
import numpy as np
from fastmlp import TrainConfig, load, train
from fastmlp import kernels as K
from fastmlp.kernels import reference as R
from fastmlp.kernels.fast.dense import dense_forward_dot
rng = np.random.default_rng(0)
X = rng.standard_normal((37, 129)).astype(np.float32)
W = rng.standard_normal((11, 129)).astype(np.float32)
b = rng.standard_normal(11).astype(np.float32)
Y = np.empty((37, 11), np.float32)
dense_forward_dot(Y, X, W, b)  # the kernel Numba vectorises by itself
asm = "".join(dense_forward_dot.inspect_asm().values())
err = float(np.max(np.abs(Y - R.dense_forward(X, W, b))))
config = dict(hidden=(24,), activation=("relu",), init="he", epochs=1, batch_size=50, limit=600, seed=4)
one, _ = train(TrainConfig(**config, threads=1), load(sys.argv[1]))
two, _ = train(TrainConfig(**config, threads=2), load(sys.argv[1]))
import llvmlite.binding, os
from fastmlp.kernels._runtime import jit as _jit
print(json.dumps(dict(zmm=len(re.findall(r"vfmadd\w+ps\s[^\n]*zmm", asm)), err=err,
                      same=bool(np.array_equal(one.params, two.params)), wide=_jit.WIDE_FEATURES,
                      features=os.environ.get("NUMBA_CPU_FEATURES"), cpu=llvmlite.binding.get_host_cpu_name())))
"""


def _host_has_avx512():
    from fastmlp.kernels._runtime.jit import host_has_avx512
    return host_has_avx512()


def _child(mnist_dir, tmp_path, wide):
    env = {**os.environ, "FASTMLP_NUMBA_CACHE": "0", "FASTMLP_AVX512": "1" if wide else "0"}
    env.pop("NUMBA_CPU_FEATURES", None)
    out = subprocess.run([sys.executable, "-c", CHILD, mnist_dir], env=env, cwd=tmp_path, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not _host_has_avx512(), reason="this CPU has no AVX-512")
def test_opt_in_compiles_512_bit_code_that_is_correct_and_thread_count_independent(mnist_dir, tmp_path):
    wide = _child(mnist_dir, tmp_path, True)
    assert wide["zmm"] > 0, wide          # 512-bit FMAs in the dot-form forward tile
    assert wide["err"] < 1e-3, wide        # float32 against the float64 reference (K = 129)
    assert wide["same"], wide              # 1 and 2 threads: the same bits
    default = _child(mnist_dir, tmp_path, False)
    # The default leaves Numba's own target alone: LLVM's tuning for the CPU decides. For
    # Intel's AVX-512 server cores that tuning prefers 256-bit vectors; for AMD's Zen 4
    # and 5 (znver4, znver5) it does not, so their default code uses zmm registers too.
    assert default["wide"] is None and default["features"] is None and default["same"], default
    if not default["cpu"].startswith("znver"):
        assert default["zmm"] == 0, default


@pytest.mark.skipif(not _host_has_avx512(), reason="this CPU has no AVX-512")
def test_opt_in_too_late_warns_and_reports_the_default(tmp_path):
    # Numba fixes its target features at its first compilation: after that the opt-in
    # cannot take effect, and fastmlp must say so rather than claim 512-bit code.
    script = ("import warnings, numba\n"
              "numba.njit(lambda x: x + 1)(1)\n"
              "with warnings.catch_warnings(record=True) as w:\n"
              "    warnings.simplefilter('always')\n"
              "    from fastmlp.kernels._runtime import jit as _jit\n"
              "print(_jit.WIDE_FEATURES is None, any('no effect' in str(x.message) for x in w))\n")
    env = {**os.environ, "FASTMLP_AVX512": "1"}
    env.pop("NUMBA_CPU_FEATURES", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, cwd=tmp_path, check=True, capture_output=True,
                         text=True)
    assert out.stdout.split() == ["True", "True"], out
