"""fastmlp evaluate and fastmlp predict on real checkpoints and real images."""
import gzip
import json
import struct

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from fastmlp.cli.main import main


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, mnist_dir):
    path = tmp_path_factory.mktemp("ck") / "crop.npz"
    r = CliRunner().invoke(main, ["train", "--hidden", "64", "--epochs", "2", "--limit", "6000", "--lr", "0.5",
                                  "--crop", "2", "--save", str(path), "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    return path, json.loads(r.stdout.splitlines()[-1])


def test_evaluate_reproduces_the_training_figures(ckpt, mnist_dir):
    path, summary = ckpt
    r = CliRunner().invoke(main, ["evaluate", str(path), "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["val_acc"], out["test_acc"], out["full_acc"]) == (summary["val_acc"], summary["test_acc"],
                                                                  summary["full_acc"])
    m = np.array(out["confusion"])
    assert m.shape == (10, 10) and m.sum() == 10000
    assert np.trace(m) / 100 == pytest.approx(out["full_acc"])


def test_predict_png_matches_idx(ckpt, mnist, tmp_path):
    path, _ = ckpt
    idx = tmp_path / "three.idx"
    images = mnist.test_images[:3].reshape(3, 28, 28)
    idx.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 28, 28) + images.tobytes())
    pngs = []
    for i in range(3):
        p = tmp_path / f"digit{i}.png"
        Image.fromarray(images[i]).save(p)
        pngs.append(str(p))
    big = tmp_path / "big.png"  # a 56x56 copy: resized back to 28x28
    Image.fromarray(images[0]).resize((56, 56), Image.NEAREST).save(big)
    r = CliRunner().invoke(main, ["predict", str(path), str(idx), *pngs, str(big), "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(rows) == 7
    assert [x["prediction"] for x in rows[:3]] == [x["prediction"] for x in rows[3:6]]
    assert rows[6]["prediction"] == rows[0]["prediction"]
    assert all(abs(sum(x["probabilities"]) - 1) < 1e-5 for x in rows)
    # Mostly right on these three (labels 7, 2, 1).
    assert sum(x["prediction"] == y for x, y in zip(rows[:3], mnist.test_labels[:3])) >= 2


@pytest.mark.parametrize("make,needle", [
    (lambda p: p.write_bytes(b"this is not an image"), "not a readable image"),
    (lambda p: p.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 1, 20, 20) + bytes(400)),
     "images are 20x20, the checkpoint was trained on 28x28"),
    (lambda p: p.write_bytes(struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 28, 28) + bytes(100)), "truncated"),
])
def test_predict_bad_inputs(ckpt, tmp_path, make, needle):
    path, _ = ckpt
    bad = tmp_path / "bad.bin"
    make(bad)
    r = CliRunner().invoke(main, ["predict", str(path), str(bad)])
    assert r.exit_code == 1 and needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_evaluate_and_predict_refuse_non_checkpoints(tmp_path):
    bad = tmp_path / "no.npz"
    bad.write_bytes(gzip.compress(b"hello"))
    for args in (["evaluate", str(bad)], ["predict", str(bad), str(bad)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and "not a readable fastmlp checkpoint" in r.stderr


def test_truncated_checkpoint_through_the_cli(ckpt, tmp_path, mnist_dir):
    path, _ = ckpt
    cut = tmp_path / "cut.npz"
    data = path.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    for args in (["evaluate", str(cut), "--data-dir", mnist_dir], ["train", "--resume", str(cut)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and str(cut) in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert cut.read_bytes() == data[: len(data) // 3]
