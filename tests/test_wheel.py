"""Wheel smoke test: build a wheel from a copy of the tree, install it (without
dependencies, which this environment already has) into a fresh prefix, and run it
from outside the source tree."""
import os
import pathlib
import shutil
import subprocess
import sys
import sysconfig
import zipfile

from conftest import ROOT


def test_wheel_builds_installs_and_runs(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info",
                                                             "__pycache__", ".pytest_cache"))
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(dist), str(src)], check=True, cwd=tmp_path)
    (wheel,) = dist.glob("fastmlp-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fastmlp/kernels/dense.py" in names and "fastmlp/cli/main.py" in names
    assert not any(n.startswith(("kernels/", "cli/", "tests/")) for n in names), "mapped packages leaked top-level"

    prefix = tmp_path / "prefix"
    # --ignore-installed: without it pip would first uninstall the editable install of
    # this very environment.
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--ignore-installed",
                    "--prefix", str(prefix), str(wheel)], check=True, cwd=tmp_path)
    purelib = sysconfig.get_path("purelib", vars={"base": str(prefix), "platbase": str(prefix)})
    env = {**os.environ, "PYTHONPATH": purelib, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run([sys.executable, "-c",
                            "import fastmlp, fastmlp.kernels as k; print(fastmlp.__file__); print(k.dense_forward)"],
                           check=True, cwd=elsewhere, env=env, capture_output=True, text=True).stdout
    assert where.startswith(purelib), f"imported {where!r}, not the installed wheel"
    script = pathlib.Path(sysconfig.get_path("scripts", vars={"base": str(prefix)})) / "fastmlp"
    help_text = subprocess.run([str(script), "--help"], check=True, cwd=elsewhere, env=env,
                               capture_output=True, text=True).stdout
    assert "train" in help_text and "data" in help_text
