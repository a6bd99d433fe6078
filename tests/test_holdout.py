"""--holdout and --keep-best: settings are chosen on held-out training images."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from fastmlp import TrainConfig, prepare, train
from fastmlp.cli.main import PRESET_NAMES, main
from fastmlp.presets import PRESETS

BASE = dict(hidden=(48,), activation=("relu",), init="he", optimizer="adam", lr=3e-3, epochs=4, batch_size=100,
            limit=2000, seed=2)


def test_prepare_holds_out_the_last_images(mnist):
    p = prepare(mnist, holdout=5000)
    assert p.train_x.shape[0] == len(mnist.train_labels) - 5000
    assert np.array_equal(p.holdout_y, mnist.train_labels[-5000:])
    assert np.array_equal(p.train_y, mnist.train_labels[:-5000])
    # Scaled with the mean and deviation of the images trained on, not of the held-out ones.
    assert np.allclose(p.holdout_x, (mnist.train_images[-5000:] - p.mean) / p.std, atol=1e-5)
    whole = prepare(mnist)
    assert p.mean != whole.mean
    limited = prepare(mnist, limit=1000, holdout=5000)
    assert limited.train_x.shape[0] == 1000 and limited.holdout_x.shape[0] == 5000


def test_holdout_is_reported_and_never_trained_on(mnist):
    network, records = train(TrainConfig(**BASE, holdout=3000), mnist)
    assert all("holdout_acc" in r for r in records)
    p = prepare(mnist, limit=2000, holdout=3000)
    predicted = network.predict(p.holdout_x)
    assert records[-1]["holdout_acc"] == pytest.approx(100 * (predicted == mnist.train_labels[-3000:]).mean())
    # Without a limit the holdout images are not trained on: a run whose training set
    # ends before them is the same run.
    a, _ = train(TrainConfig(**dict(BASE, limit=None, epochs=1), holdout=57000), mnist)
    b, _ = train(TrainConfig(**dict(BASE, limit=3000, epochs=1), holdout=57000), mnist)
    assert np.array_equal(a.params, b.params)


def test_keep_best_ends_with_the_best_holdout_epoch(mnist, tmp_path):
    seen = []
    config = TrainConfig(**dict(BASE, lr=2e-2, epochs=6), holdout=3000, keep_best=True)
    network, records = train(config, mnist, on_epoch=lambda r: seen.append((r["holdout_acc"], r["epoch"])),
                             save=tmp_path / "best.npz")
    accs = [r["holdout_acc"] for r in records]
    best = int(np.argmax(accs))  # the first epoch of the highest accuracy
    assert [r.get("kept", False) for r in records] == [i == best for i in range(len(records))]
    # The weights are that epoch's: retraining for exactly that many epochs gives them
    # (the cosine-free constant schedule does not depend on the total).
    again, _ = train(TrainConfig(**dict(BASE, lr=2e-2, epochs=best + 1), holdout=3000), mnist)
    assert np.array_equal(network.params, again.params)
    from fastmlp import checkpoint as C
    meta, arrays = C.load(tmp_path / "best.npz")
    assert np.array_equal(arrays["params"], again.params) and meta["best"]["epoch"] == best + 1


def test_cli_reports_holdout_and_the_kept_epoch(mnist_dir):
    r = CliRunner().invoke(main, ["train", "--hidden", "32", "--epochs", "3", "--limit", "2000", "--holdout", "2000",
                                  "--keep-best", "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    lines = [json.loads(l) for l in r.stdout.splitlines()]
    final = lines[-1]
    epochs = lines[:-1]  # printed as they end, before the best is known
    kept = [epochs[int(np.argmax([l["holdout_acc"] for l in epochs]))]]
    assert final["kept_epoch"] == kept[0]["epoch"]
    assert final["full_acc"] == kept[0]["full_acc"] and final["holdout_acc"] == kept[0]["holdout_acc"]
    r = CliRunner().invoke(main, ["train", "--hidden", "32", "--epochs", "1", "--limit", "2000", "--holdout", "2000",
                                  "--data-dir", mnist_dir])
    assert r.exit_code == 0 and "holdout " in r.output.splitlines()[-2], r.output


@pytest.mark.parametrize("args, code, message", [
    (["--keep-best"], 2, "keep-best needs a holdout"),
    (["--holdout", "-5"], 2, "holdout must be at least 0"),
    (["--holdout", "60000"], 1, "holdout 60000 leaves no training image (the training set has 60000)"),
    (["--elastic", "34"], 2, "expected ALPHA,SIGMA"),
    (["--rotate", "500"], 2, "rotate must be between 0 and 180 degrees"),
    (["--eval-every", "-1"], 2, "eval-every must be at least 0"),
])
def test_bad_options_are_one_line_errors(mnist_dir, args, code, message):
    r = CliRunner().invoke(main, ["train", "--epochs", "1", "--data-dir", mnist_dir] + args)
    assert r.exit_code == code, r.output
    assert message in r.output and "Traceback" not in r.output


def test_the_cli_knows_every_preset():
    assert PRESET_NAMES == list(PRESETS)


def test_augment_show_draws_the_digits_and_their_distortions(mnist_dir, tmp_path):
    from PIL import Image
    out = tmp_path / "grid.png"
    r = CliRunner().invoke(main, ["augment", "--show", "5", "-o", str(out), "--elastic", "34,4", "--rotate", "15",
                                  "--variants", "3", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    image = np.asarray(Image.open(out))
    assert image.shape == (2 * (5 * 30 + 2), 2 * (4 * 30 + 6))  # 2-pixel gaps, 4 more after the originals
    # The first column is the digits as they are: white paper, black ink.
    from fastmlp import load
    first = 255 - load(mnist_dir).train_images[0].reshape(28, 28)
    assert np.array_equal(image[4:60:2, 4:60:2], first)
    again = CliRunner().invoke(main, ["augment", "--show", "5", "-o", str(out), "--elastic", "34,4",
                                      "--data-dir", mnist_dir])
    assert again.exit_code == 2 and "exists" in again.output
    none = CliRunner().invoke(main, ["augment", "--show", "5", "-o", str(tmp_path / "x.png"), "--data-dir", mnist_dir])
    assert none.exit_code == 2 and "no augmentation to show" in none.output
    assert not (tmp_path / "x.png").exists()


def test_eval_every_evaluates_every_nth_epoch_and_the_last(mnist, tmp_path):
    config = TrainConfig(**dict(BASE, epochs=5), holdout=2000, eval_every=2, keep_best=True)
    network, records = train(config, mnist)
    assert [("full_acc" in r, "holdout_acc" in r) for r in records] == [(e % 2 == 0 or e == 5,) * 2
                                                                           for e in range(1, 6)]
    # keep-best chooses among the evaluated epochs only.
    evaluated = [r for r in records if "holdout_acc" in r]
    best = max(evaluated, key=lambda r: r["holdout_acc"])
    assert [r["epoch"] for r in records if r.get("kept")] == [best["epoch"]]
    # Evaluating changes nothing in training: the same weights as evaluating every epoch.
    sparse, _ = train(TrainConfig(**dict(BASE, epochs=5), holdout=2000, eval_every=2), mnist)
    every, _ = train(TrainConfig(**dict(BASE, epochs=5), holdout=2000), mnist)
    assert np.array_equal(sparse.params, every.params)
    _, end_only = train(TrainConfig(**dict(BASE, epochs=3), eval_every=0), mnist)
    assert ["full_acc" in r for r in end_only] == [False, False, True]
    import json
    from fastmlp.plot import plot_logs
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    plot_logs([str(log)], str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").stat().st_size > 1000
