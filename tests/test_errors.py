"""Bad input a user can run into, through the CLI: one line naming the problem, exit 2 for
usage and 1 for runtime errors, no traceback, no internal exception's text, no file left
half-written."""
import gzip
import os
import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from fastmlp import data as D
from fastmlp import graph as G
from fastmlp.cli.main import main
from fastmlp.network import Network, plan
from fastmlp.train import TrainConfig, check_memory


def run(args):
    return CliRunner().invoke(main, args)


def one_line(r):
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr and "FASTMLP_DEBUG" not in r.stderr, r.stderr
    return lines[0]


def _copy_mnist(mnist_dir, target):
    target.mkdir()
    for name in D.FILES.values():
        shutil.copy(os.path.join(mnist_dir, name), target / name)
    return target


def _rewrite(path, edit):
    raw = bytearray(gzip.decompress(path.read_bytes()))
    edit(raw)
    path.write_bytes(gzip.compress(bytes(raw)))


def test_zero_training_images(tmp_path, mnist_dir):
    d = _copy_mnist(mnist_dir, tmp_path / "d")
    header = b"\x00\x00\x08\x03" + (0).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    (d / D.FILES["train_images"]).write_bytes(gzip.compress(header))
    (d / D.FILES["train_labels"]).write_bytes(gzip.compress(b"\x00\x00\x08\x01" + (0).to_bytes(4, "big")))
    r = run(["train", "--data-dir", str(d), "--epochs", "1"])
    assert r.exit_code == 1
    line = one_line(r)
    assert str(d / D.FILES["train_images"]) in line and "no images" in line, line


def test_training_label_outside_the_classes(tmp_path, mnist_dir):
    d = _copy_mnist(mnist_dir, tmp_path / "d")
    path = d / D.FILES["train_labels"]

    def edit(raw):
        raw[8 + 1234] = 200  # the labels start after an 8-byte header
    _rewrite(path, edit)
    r = run(["train", "--data-dir", str(d), "--epochs", "1"])
    assert r.exit_code == 1
    line = one_line(r)
    assert str(path) in line and "label 200 at index 1234" in line and "10..199" in line, line


def test_test_label_not_among_the_training_classes(tmp_path, mnist_dir):
    d = _copy_mnist(mnist_dir, tmp_path / "d")
    path = d / D.FILES["test_labels"]

    def edit(raw):
        raw[8 + 77] = 10
    _rewrite(path, edit)
    r = run(["train", "--data-dir", str(d), "--epochs", "1"])
    assert r.exit_code == 1
    line = one_line(r)
    assert str(path) in line and "label 10 at index 77" in line and "(0..9)" in line, line


def test_check_classes_names_a_single_missing_class():
    with pytest.raises(D.DataError, match=r"f: label 3 at index 2 makes 4 classes \(0..3\), but class 1 has no"):
        D.check_classes(np.array([0, 2, 3, 0]), "f", np.array([0]), "g")


def test_a_network_too_large_for_memory_is_refused_before_allocating(mnist_dir):
    r = run(["train", "--hidden", "100000000", "--data-dir", mnist_dir])
    assert r.exit_code == 2
    line = one_line(r)
    for word in ("needs", "parameters", "gradients", "buffers", "this machine has", "available"):
        assert word in line, line


def test_a_graph_node_too_large_for_memory(tmp_path, mnist_dir):
    f = tmp_path / "big.toml"
    f.write_text('optimizer = "adam"\n[[node]]\nname = "h"\ntype = "dense"\ninputs = ["input"]\nunits = 1000000000\n'
                 '[[node]]\nname = "a"\ntype = "activation"\ninputs = ["h"]\nfunction = "relu"\n'
                 '[[node]]\nname = "logits"\ntype = "dense"\ninputs = ["a"]\nunits = 10\n'
                 '[[node]]\nname = "head"\ntype = "head"\ninputs = ["logits"]\n')
    r = run(["train", "--config", str(f), "--data-dir", mnist_dir])
    assert r.exit_code == 2
    line = one_line(r)
    assert "needs" in line and "optimizer state" in line and "this machine has" in line, line


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_memory_plan_counts_what_the_network_allocates(optimizer):
    nodes = (G.Node("d1", "dense", ("input",), units=24), G.Node("a1", "activation", ("d1",), function="relu"),
             G.Node("p", "dropout", ("a1",), rate=0.2), G.Node("d2", "dense", ("p",), units=24),
             G.Node("s", "add", ("d2", "a1")), G.Node("logits", "dense", ("s",), units=10),
             G.Node("head", "head", ("logits",)))
    net = Network(nodes, 30, 10, max_batch=17)
    params, buffers = plan(nodes, 30, 10, 17)
    assert params == net.params.size == net.grads.size
    allocated = (net.x.size + net.t.size + net.P.size + net.L.size + net.zeros.size
                 + sum(a.size for d in (net.out, net.mask, net.grad, net.acc) for a in d.values()))
    assert buffers == allocated
    config = TrainConfig(graph=nodes, batch_size=17, optimizer=optimizer)
    need = check_memory(config, 30, 10)
    assert need == 4 * (params * (2 + {"sgd": 0, "adam": 2}[optimizer]) + buffers)
    with pytest.raises(ValueError, match="needs"):
        check_memory(config, 30, 10, available=need - 1)


@pytest.fixture
def small_disk(tmp_path):
    """A file system of `size` bytes (tmpfs), mounted for the test; skips where it cannot be."""
    mounts = []

    def make(size):
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True)
        if r.returncode != 0:
            pytest.skip("cannot mount a small file system here (needs root)")
        mounts.append(where)
        return where
    yield make
    for m in mounts:
        subprocess.run(["umount", str(m)], check=False)


def test_full_disk_while_saving_keeps_the_old_checkpoint(tmp_path, mnist_dir, small_disk):
    args = ["train", "--hidden", "16", "--limit", "600", "--batch-size", "100", "--data-dir", mnist_dir]
    probe = tmp_path / "probe.npz"
    assert run([*args, "--epochs", "1", "--save", str(probe)]).exit_code == 0
    size = probe.stat().st_size
    disk = small_disk((size * 3 // 2 + 4095) // 4096 * 4096)  # room for one checkpoint, not two
    target = disk / "run.npz"
    r = run([*args, "--epochs", "2", "--save", str(target)])
    assert r.exit_code == 1, r.output
    line = one_line(r)
    assert str(target) in line and "cannot write the checkpoint" in line and "No space left" in line, line
    assert os.listdir(disk) == ["run.npz"]  # no temporary file left behind
    from fastmlp import checkpoint as CK
    meta, _ = CK.load(target)
    assert meta["epoch"] == 2 and meta["step"] == 0  # the checkpoint written after epoch 1
