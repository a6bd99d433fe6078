"""--log JSON lines and fastmlp plot."""
import json

from click.testing import CliRunner

from fastmlp.cli.main import main


def _train(args, mnist_dir):
    return CliRunner().invoke(main, ["train", "--hidden", "16", "--limit", "500", "--data-dir", mnist_dir, *args])


def test_log_plot_and_no_overwrite(tmp_path, mnist_dir):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert _train(["--epochs", "2", "--log", str(a), "--weight-stats"], mnist_dir).exit_code == 0
    assert _train(["--epochs", "3", "--log", str(b), "--activation", "relu"], mnist_dir).exit_code == 0
    records = [json.loads(l) for l in a.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and "weight_stats" in records[0]
    before = a.read_text()
    r = _train(["--epochs", "1", "--log", str(a)], mnist_dir)
    assert r.exit_code == 2 and "exists" in r.stderr and a.read_text() == before
    out = tmp_path / "runs.png"
    r = CliRunner().invoke(main, ["plot", str(a), str(b), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10000
    stamp = out.read_bytes()
    r = CliRunner().invoke(main, ["plot", str(a), "-o", str(out)])
    assert r.exit_code == 2 and out.read_bytes() == stamp
    assert CliRunner().invoke(main, ["plot", str(a), "-o", str(out), "--force"]).exit_code == 0


def test_plot_rejects_bad_logs(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"epoch": 1}\n')
    out = tmp_path / "x.png"
    r = CliRunner().invoke(main, ["plot", str(bad), "-o", str(out)])
    assert r.exit_code == 1 and "not a fastmlp log record" in r.stderr and not out.exists()
    bad.write_text("not json\n")
    r = CliRunner().invoke(main, ["plot", str(bad), "-o", str(out)])
    assert r.exit_code == 1 and "not a JSON line" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_plot_without_matplotlib_says_how_to_get_it(tmp_path, monkeypatch):
    import sys
    log = tmp_path / "a.jsonl"
    log.write_text('{"epoch": 1, "loss": 1.0, "val_acc": 1, "test_acc": 1, "full_acc": 1}\n')
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    r = CliRunner().invoke(main, ["plot", str(log), "-o", str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "pip install 'fastmlp[plot]'" in r.stderr
