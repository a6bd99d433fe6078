"""The command line through Click's CliRunner: exit codes and one-line messages."""
import json

import pytest
from click.testing import CliRunner

from fastmlp.cli.main import main


def run(args, **kw):
    return CliRunner().invoke(main, args, **kw)


def test_short_good_run_prints_all_three_figures(mnist_dir):
    r = run(["train", "--preset", "book", "--epochs", "2", "--limit", "3000", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    lines = [l for l in r.output.splitlines() if l.startswith("epoch")]
    assert len(lines) == 2
    for word in ("loss", "val", "test", "full", "samples/s"):
        assert word in lines[0]
    assert "final:" in r.output


def test_json_mode_is_json_only(mnist_dir):
    r = run(["train", "--hidden", "32", "--epochs", "2", "--limit", "2000", "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    objs = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(objs) == 3 and objs[-1]["final"] is True
    for o in objs:
        for key in ("loss", "val_acc", "test_acc", "full_acc", "seconds", "samples_per_s"):
            assert key in o
    assert [o["epoch"] for o in objs[:2]] == [1, 2]
    assert 0 <= objs[-1]["full_acc"] <= 100


def test_preset_values_yield_to_explicit_options(mnist_dir):
    r = run(["train", "--preset", "book", "--epochs", "1", "--batch-size", "100", "--limit", "500",
             "--json", "--data-dir", mnist_dir])
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["config"]["epochs"] == 1 and summary["config"]["batch_size"] == 100
    assert summary["config"]["lr"] == 1.0 and summary["config"]["shuffle"] is False


@pytest.mark.parametrize("args,needle", [
    (["--batch-size", "0"], "--batch-size"),
    (["--batch-size", "-5"], "--batch-size"),
    (["--lr", "0"], "--lr"),
    (["--lr", "-0.1"], "--lr"),
    (["--activation", "swish"], "unknown activation 'swish'"),
    (["--hidden", "10,x"], "--hidden"),
    (["--epochs", "0"], "--epochs"),
    (["--dtype", "float16"], "--dtype"),
    (["--data-dir", "/no/such/dir"], "does not exist"),
    (["--activation", "relu,tanh", "--hidden", "10"], "2 activations given for 1 hidden layers"),
])
def test_bad_options_exit_2_with_one_line(args, needle):
    r = run(["train", *args])
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr


def test_runtime_data_error_exits_1_with_one_line(tmp_path):
    r = run(["train", "--data-dir", str(tmp_path)])
    assert r.exit_code == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "missing" in r.stderr


def test_data_command_verifies_official_files(mnist_dir):
    r = run(["data", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    assert r.output.count("official MNIST SHA-256") == 4 and "ok: 60000 training" in r.output


def test_cache_command_lists_the_kernel_cache_and_the_data_copies(tmp_path, monkeypatch):
    import gzip
    from fastmlp.data import read_idx
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "labels.gz").write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3])))
    read_idx(tmp_path / "labels.gz")
    r = run(["cache"])
    assert r.exit_code == 0 and ("cached files" in r.output or "disabled" in r.output)
    assert f"{tmp_path / 'fastmlp' / 'idx'}: 1 decompressed data files (0.0 MB)" in r.output


@pytest.mark.parametrize("args,needle", [
    (["--crop", "14"], "crop must be between 0 and 13, got 14"),
    (["--shift", "14"], "shift must be between 0 and 13 pixels, got 14"),
    (["--center", "29"], "center must be between 1 and 28, got 29"),
    (["--drop-pixels", "1.0"], "drop-pixels must be in [0, 1)"),
    (["--drop-pixels", "-0.5"], "drop-pixels must be in [0, 1)"),
    (["--crop", "2", "--center", "8"], "cannot be combined"),
    (["--dropout", "1"], "--dropout"),
    (["--batch-ramp", "512", "--batch-size", "256"], "batch ramp must be between 1 and the batch size"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--config", "/no/such/file.toml"], "cannot read"),
])
def test_toolkit_usage_errors(args, needle):
    r = run(["train", *args])
    assert r.exit_code == 2, r.output
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr


GRAPH_TOML = """
epochs = 5
[[node]]
name = "h"
type = "dense"
inputs = ["input"]
units = 16
[[node]]
name = "act"
type = "activation"
inputs = ["h"]
function = "relu"
[[node]]
name = "logits"
type = "dense"
inputs = ["act"]
units = 10
[[node]]
name = "head"
type = "head"
inputs = ["logits"]
"""


def test_config_file_with_command_line_override(tmp_path, mnist_dir):
    f = tmp_path / "exp.toml"
    f.write_text(GRAPH_TOML)
    r = run(["train", "--config", str(f), "--epochs", "1", "--limit", "500", "--weight-stats", "--json",
             "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    assert len(lines) == 2 and lines[-1]["config"]["epochs"] == 1
    assert [s["layer"] for s in lines[0]["weight_stats"]] == ["h", "logits"]
    assert [n["name"] for n in lines[-1]["config"]["graph"]] == ["h", "act", "logits", "head"]


def test_config_file_errors_exit_2(tmp_path):
    f = tmp_path / "exp.toml"
    f.write_text("epochs = 2\nbatchsize = 3\n")
    r = run(["train", "--config", str(f)])
    assert r.exit_code == 2 and "unknown key 'batchsize'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    g = tmp_path / "graph.toml"
    g.write_text(GRAPH_TOML.replace('inputs = ["act"]', 'inputs = ["nothing"]'))
    r = run(["train", "--config", str(g)])
    assert r.exit_code == 2 and "node 'logits': input 'nothing' is not defined" in r.stderr
    g.write_text(GRAPH_TOML)
    r = run(["train", "--config", str(g), "--hidden", "10"])
    assert r.exit_code == 2 and "--hidden cannot be combined with a [[node]] graph" in r.stderr


def test_deep_features_from_the_command_line(mnist_dir):
    r = run(["train", "--hidden", "32,32", "--activation", "relu,shifted_relu", "--input-dropout", "0.2",
             "--dropout", "0.3", "--optimizer", "adam", "--lr", "0.002", "--batch-ramp", "16", "--batch-size", "64",
             "--lr-schedule", "cosine", "--epochs", "3", "--limit", "2000", "--crop", "3", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    lines = [l for l in r.output.splitlines() if l.startswith("epoch")]
    assert [l.split("batch ")[1].split()[0] for l in lines] == ["16", "32", "64"]
    assert "lr " in lines[0]


def test_readme_graph_example_trains(mnist_dir):
    from conftest import ROOT
    r = run(["train", "--config", str(ROOT / "examples" / "skip.toml"), "--epochs", "1", "--limit", "1000",
             "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.splitlines()[-1])
    assert any(n["type"] == "add" for n in summary["config"]["graph"])
    assert summary["full_acc"] > 50.0


@pytest.mark.parametrize("preset,hidden", [("book99", [1200]), ("deep", [1200, 1200]), ("simard", [800]), ("speedrun", [500])])
def test_other_presets_resolve_and_run(preset, hidden, mnist_dir):
    r = run(["train", "--preset", preset, "--epochs", "1", "--limit", "600", "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    config = json.loads(r.stdout.splitlines()[-1])["config"]
    assert config["hidden"] == hidden and config["epochs"] == 1


def test_bench_harness_prints_a_table(mnist_dir, monkeypatch):
    # Timings are not asserted (speed lives in BENCHMARKS.md); the harness must run and
    # report every column for both sides (PyTorch when installed, else NumPy).
    monkeypatch.setenv("FASTMLP_DATA_DIR", mnist_dir)
    r = run(["bench", "--config", "book-b256", "--samples", "2560", "--repeats", "1", "--rounds", "2"])
    assert r.exit_code == 0, r.output
    rows = [l for l in r.output.splitlines() if l.startswith("| book-b256")]
    assert len(rows) == 2 and rows[0].split("|")[2].strip() == "fastmlp"
    cells = [c.strip() for c in rows[0].split("|")[1:-1]]
    ratio, (low, high) = float(cells[7].rstrip("x")), cells[8].rstrip("x").split("-")
    assert float(low) <= ratio <= float(high)
    assert "GFLOP/s" in r.output and "peak" in r.output and "2 round(s)" in r.output


def test_bench_json_counts_only_the_products_computed(mnist_dir, monkeypatch):
    monkeypatch.setenv("FASTMLP_DATA_DIR", mnist_dir)
    r = run(["bench", "--json", "--config", "book-b32", "--samples", "640", "--repeats", "1", "--rounds", "2"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(l) for l in r.stdout.splitlines()]
    assert [row["side"] for row in rows][0] == "fastmlp" and len(rows) == 2
    for row in rows:
        for key in ("config", "side", "epoch_s", "samples_per_s", "flops_per_epoch", "gflops", "peak_fraction", "rss_mb"):
            assert key in row, (key, row)
        # forward and dW of both layers, dX of the second only: 4*784*100 + 6*100*10 a sample
        assert row["flops_per_epoch"] == 319_600 * 60_000
        assert abs(row["gflops"] - 319_600 * row["samples_per_s"] / 1e9) <= 1e-9 * row["gflops"]
    fast = rows[0]
    assert fast["rounds"] == 2 and fast["ratio_range"][0] <= fast["ratio"] <= fast["ratio_range"][1]
    assert "ratio" not in rows[1]


def test_bench_in_bf16_says_what_each_side_ran(mnist_dir, monkeypatch):
    monkeypatch.setenv("FASTMLP_DATA_DIR", mnist_dir)
    r = run(["bench", "--json", "--precision", "bf16", "--config", "book-b32", "--samples", "640", "--repeats", "1"])
    assert r.exit_code == 0, r.output
    fast, other = [json.loads(l) for l in r.stdout.splitlines()]
    assert fast["precision"] == other["precision"] == "bf16"
    assert "precision bf16: dense_forward_bf16 " in fast["ran"] and "dense_backward_bf16 " in fast["ran"]
    assert other["ran"] == {"torch": "bf16 autocast", "numpy": "float32 (NumPy has no bfloat16)"}[other["side"]]


def test_flops_per_sample_of_the_deep_network():
    from fastmlp.bench import flops_per_sample
    assert flops_per_sample((1200, 1200)) == 4 * 784 * 1200 + 6 * 1200 * 1200 + 6 * 1200 * 10


def test_warmup_command():
    r = run(["warmup", "--dtype", "float32"])
    assert r.exit_code == 0 and r.output.startswith("float32:")
