"""Checkpoints and resume, interrupts, divergence, and the no-pickle guarantee."""
import os
import pickle

import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp import checkpoint as C
from fastmlp.train import Diverged, Interrupted

BASE = dict(hidden=(32, 16), activation=("shifted_relu",), input_dropout=0.1, dropout=0.2, init="he",
            optimizer="adam", lr=2e-3, lr_schedule="cosine", epochs=4, batch_size=64, batch_ramp=16,
            limit=1500, seed=3)


def test_resume_at_an_epoch_boundary_is_bit_identical(mnist, tmp_path):
    whole, records = train(TrainConfig(**BASE), mnist)
    path = tmp_path / "run.npz"

    class Crash(Exception):
        pass

    def crash_after_epoch_2(record):
        if record["epoch"] == 2:
            raise Crash  # the process dies after the checkpoint of epoch 2 was written

    with pytest.raises(Crash):
        train(TrainConfig(**BASE), mnist, save=path, on_epoch=crash_after_epoch_2)
    meta, arrays = C.load(path)
    assert meta["epoch"] == 3 and meta["step"] == 0
    resumed, later = train(TrainConfig(**BASE), mnist, resume=(meta, arrays))
    assert np.array_equal(whole.params, resumed.params)
    assert [r["epoch"] for r in later] == [3, 4] and later[-1]["full_acc"] == records[-1]["full_acc"]


@pytest.mark.parametrize("augment", [{}, dict(shift=2), dict(shift=1, elastic_alpha=30.0, rotate=10.0, scale=0.1, shear=5.0)])
def test_interrupt_mid_epoch_saves_and_resumes_bit_identical(mnist, tmp_path, augment):
    base = {**BASE, **augment}  # augmented images are keyed by the step counter
    whole, _ = train(TrainConfig(**base), mnist)
    calls = {"n": 0}

    def stop():  # "Ctrl-C" after step 114: epoch 1 has 94 steps of 16, so mid epoch 2
        calls["n"] += 1
        return calls["n"] == 114

    path = tmp_path / "interrupted.npz"
    with pytest.raises(Interrupted) as e:
        train(TrainConfig(**base), mnist, save=path, stop=stop)
    assert e.value.path == str(path) and "epoch 2" in str(e.value)
    meta, arrays = C.load(path)
    assert meta["epoch"] == 2 and meta["step"] > 0
    resumed, _ = train(TrainConfig(**base), mnist, resume=(meta, arrays))
    assert np.array_equal(whole.params, resumed.params)


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(mnist, tmp_path):
    path = tmp_path / "good.npz"
    config = TrainConfig(hidden=(32,), activation=("relu",), init="he", epochs=1, batch_size=50, lr=0.05,
                         limit=1000, seed=0)
    train(config, mnist, save=path)
    before = path.read_bytes()
    meta, arrays = C.load(path)
    bad = TrainConfig(**{**vars(config), "epochs": 3, "lr": 1e6})
    with pytest.raises(Diverged) as e:
        train(bad, mnist, save=path, resume=(meta, arrays))
    message = str(e.value)
    assert message.startswith("diverged at epoch 2, step ") and "first non-finite:" in message
    assert "\n" not in message
    assert path.read_bytes() == before


def test_no_pickle_anywhere(tmp_path, mnist):
    path = tmp_path / "ok.npz"
    train(TrainConfig(hidden=(8,), epochs=1, limit=300), mnist, save=path)
    import zipfile
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            with z.open(name) as f:
                header = f.read(128)
            assert header.startswith(b"\x93NUMPY") and b"'descr': '|O'" not in header
    # An archive holding an object array (needs pickle) is refused, not unpickled.
    evil = tmp_path / "evil.npz"
    np.savez(evil, params=np.array([{"x": 1}], dtype=object), meta=np.frombuffer(b"{}", np.uint8))
    with pytest.raises(C.CheckpointError, match="not a readable fastmlp checkpoint"):
        C.load(evil)
    plain_pickle = tmp_path / "model.pkl"
    plain_pickle.write_bytes(pickle.dumps({"params": [1, 2, 3]}))
    with pytest.raises(C.CheckpointError):
        C.load(plain_pickle)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.write_bytes(b"not a zip at all"), "not a readable fastmlp checkpoint"),
    (lambda p: np.savez(p, params=np.zeros(3)), "no metadata"),
    (lambda p: np.save(p, np.zeros(3)), "not a fastmlp checkpoint"),
])
def test_bad_checkpoint_files(tmp_path, make, message):
    path = tmp_path / "bad.npz"
    make(path)
    if not path.exists():  # np.save appends .npy
        path = tmp_path / "bad.npz.npy"
    with pytest.raises(C.CheckpointError, match=message):
        C.load(path)


def test_truncated_checkpoint(tmp_path, mnist):
    path = tmp_path / "t.npz"
    train(TrainConfig(hidden=(8,), epochs=1, limit=300), mnist, save=path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(C.CheckpointError):
        C.load(path)


def test_save_is_atomic(tmp_path):
    path = tmp_path / "a.npz"
    C.save(path, {"params": np.arange(3.0)}, {"epoch": 1})

    class Boom:  # an array-like that fails halfway through writing
        def __array__(self, *a, **k):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        C.save(path, {"params": Boom()}, {"epoch": 2})
    meta, arrays = C.load(path)
    assert meta["epoch"] == 1 and np.array_equal(arrays["params"], np.arange(3.0))
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]


# --- through the command line ---------------------------------------------------------
import json
import signal
import subprocess
import sys

from click.testing import CliRunner

from fastmlp.cli.main import main

ARGS = ["--hidden", "24", "--activation", "relu", "--init", "he", "--optimizer", "momentum", "--lr", "0.05",
        "--batch-size", "50", "--limit", "1000"]


def test_cli_save_and_resume_match_an_uninterrupted_run(tmp_path, mnist_dir):
    run = lambda args: CliRunner().invoke(main, ["train", *ARGS, "--data-dir", mnist_dir, *args])
    full = tmp_path / "full.npz"
    assert run(["--epochs", "3", "--save", str(full)]).exit_code == 0
    part = tmp_path / "part.npz"
    assert run(["--epochs", "1", "--save", str(part)]).exit_code == 0
    r = CliRunner().invoke(main, ["train", "--resume", str(part), "--epochs", "3", "--save", str(part),
                                  "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    assert [json.loads(l).get("epoch") for l in r.stdout.splitlines()[:-1]] == [2, 3]
    assert np.array_equal(C.load(full)[1]["params"], C.load(part)[1]["params"])


def test_cli_divergence_is_one_line_and_exit_1(tmp_path, mnist_dir):
    r = CliRunner().invoke(main, ["train", *ARGS, "--lr", "1e8", "--epochs", "2", "--data-dir", mnist_dir])
    assert r.exit_code == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "diverged at epoch 1, step" in r.stderr


@pytest.mark.parametrize("content", [b"garbage", b""])
def test_cli_resume_from_a_non_checkpoint(tmp_path, content):
    bad = tmp_path / "x.npz"
    bad.write_bytes(content)
    r = CliRunner().invoke(main, ["train", "--resume", str(bad)])
    assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert bad.read_bytes() == content


def test_sigterm_finishes_the_step_saves_and_exits_nonzero(tmp_path, mnist_dir):
    path = tmp_path / "stopped.npz"
    proc = subprocess.Popen([sys.executable, "-m", "fastmlp.cli.main", "train", *ARGS, "--limit", "60000",
                             "--epochs", "50", "--save", str(path), "--data-dir", mnist_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdout.readline()  # the first epoch line: training is under way
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert f"checkpoint saved to {path}" in err and "Traceback" not in err
    meta, arrays = C.load(path)
    assert meta["epoch"] >= 2 and np.isfinite(arrays["params"]).all()
