"""What you edit is what runs: a plain kernel changed in a copy of the package takes effect
on every path (float32 and float64, the fused head's CPU included), with one line on
stderr naming the op; `fastmlp kernels --check` re-validates an edit that keeps the numbers
and refuses one that does not."""
import json
import subprocess
import sys


from conftest import final_json as _final

BOOK = ["train", "--preset", "book", "--epochs", "2", "--limit", "6000", "--json"]


def test_a_zero_gradient_in_the_plain_softmax_backward_stops_learning_in_both_dtypes(copy, mnist_dir):
    copy.edit("kernels/losses.py", "            dZ[i, k] = (P[i, k] - T[i, k]) / B",
              "            dZ[i, k] = 0.0 * (P[i, k] - T[i, k]) / B")
    for dtype in ("float32", "float64"):
        r = copy.cli([*BOOK, "--dtype", dtype, "--data-dir", mnist_dir])
        final = _final(r)
        assert final["full_acc"] < 20.0, (dtype, final)  # the book's initial weights: about 10%
        assert "softmax_cross_entropy_backward (kernels/losses.py) differs" in r.stderr, r.stderr
        assert "fastmlp kernels --check" in r.stderr
    # Unedited (the installed package), the same run learns.
    r = subprocess.run([sys.executable, "-m", "fastmlp.cli.main", *BOOK, "--data-dir", mnist_dir],
                       capture_output=True, text=True)
    assert _final(r)["full_acc"] > 85.0 and "differs" not in r.stderr
    # The edit changes the numbers: re-validation refuses it, and the fast path stays off.
    check = copy.cli(["kernels", "--check"])
    assert check.returncode == 1 and "FAILED" in check.stdout, check.stdout + check.stderr
    table = copy.cli(["kernels", "--dtype", "float32"])
    assert "softmax_cross_entropy_backward   softmax_cross_entropy_backward " in table.stdout, table.stdout


CHILD = """
import json, sys
import numpy as np
from fastmlp import TrainConfig, load, train
from fastmlp.train import build_network
out = {}
for dtype in ("float32", "float64"):
    config = TrainConfig(hidden=(24,), epochs=1, batch_size=100, lr=0.5, limit=2000, dtype=dtype)
    start = build_network(config, 784, 10).W[0].copy()
    net, records = train(config, load(sys.argv[1]))
    out[dtype] = dict(moved=bool(not np.array_equal(net.W[0], start)), second=bool(not np.array_equal(
        net.W[1], build_network(config, 784, 10).W[1])), fused=net.fused is not None)
print(json.dumps(out))
"""


def test_a_changed_activation_derivative_runs_in_both_dtypes(copy, mnist_dir):
    # The sigmoid's derivative set to zero: no gradient reaches the first layer, in float32
    # (where the fused head computes that derivative) and in float64 alike.
    before = json.loads(copy.run(["-c", CHILD, mnist_dir]).stdout.strip().splitlines()[-1])
    assert before["float32"]["moved"] and before["float64"]["moved"]
    copy.edit("kernels/activations.py", "    return a * (1.0 - a)", "    return 0.0 * a")
    r = copy.run(["-c", CHILD, mnist_dir])
    assert r.returncode == 0, r.stderr[-3000:]
    after = json.loads(r.stdout.strip().splitlines()[-1])
    for dtype in ("float32", "float64"):
        assert not after[dtype]["moved"] and after[dtype]["second"], (dtype, after)
    # _df is shared by the plain and the fast kernels: the edit runs in both, nothing to switch off.
    assert after["float32"]["fused"] == before["float32"]["fused"] and "differs" not in r.stderr


def test_an_edit_that_keeps_the_numbers_is_revalidated(copy):
    copy.edit("kernels/dense.py", "                s += X[i, k] * W[j, k]\n",
              "                s += X[i, k] * W[j, k]  # one product a step\n")
    table = copy.cli(["kernels", "--dtype", "float32"])
    assert "dense_forward (kernels/dense.py) differs" in table.stderr
    assert "dense_forward                    dense_forward " in table.stdout, table.stdout
    check = copy.cli(["kernels", "--check"])
    assert check.returncode == 0 and "validated, digest recorded" in check.stdout, check.stdout + check.stderr
    table = copy.cli(["kernels", "--dtype", "float32"])
    assert "differs" not in table.stderr and "dense_forward                    dense_forward " not in table.stdout


def test_a_replacement_that_cannot_run_here_is_skipped_not_failed(copy):
    # FASTMLP_KERNELS=no-avx512 makes any CPU one without AVX-512: the AVX-512 replacements
    # of the edited op are skipped (not compared, not recorded), the others validated, exit 0.
    copy.edit("kernels/dense.py", "                s += X[i, k] * W[j, k]\n",
              "                s += X[i, k] * W[j, k]  # one product a step\n")
    env = {"FASTMLP_KERNELS": "no-avx512"}
    before = json.loads(copy.path("kernels/fast/validated.json").read_text())
    check = copy.cli(["kernels", "--check"], env)
    out = check.stdout + check.stderr
    assert check.returncode == 0, out
    assert "dense_forward_2x4: validated, digest recorded" in check.stdout, out
    for name in ("dense_forward_16lane", "head_step"):
        assert f"{name}: skipped: it needs AVX-512 (FASTMLP_KERNELS=no-avx512)" in check.stdout, out
    assert "1 validated, 0 failed, 2 skipped" in check.stdout, out
    after = json.loads(copy.path("kernels/fast/validated.json").read_text())
    assert after["dense_forward_2x4"] != before["dense_forward_2x4"]  # recorded
    assert after["dense_forward_16lane"] == before["dense_forward_16lane"]  # skipped: left as it was
    assert after["head_step"] == before["head_step"]
    table = copy.cli(["kernels", "--dtype", "float32"], env)
    assert "differs" not in table.stderr and "dense_forward_2x4" in table.stdout, table.stdout + table.stderr
