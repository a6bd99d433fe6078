"""Plots of training logs (JSON lines written by `fastmlp train --log`): loss and the
three accuracies per epoch, and per-layer weight RMS when recorded; several runs overlaid.
Needs matplotlib (the optional `plot` extra)."""
import json
import os
import tempfile

from fastmlp.files import publish


class PlotError(ValueError):
    """A log that cannot be plotted, or matplotlib missing; one line."""


def read_log(path):
    """The per-epoch records of a log (the final summary line, if any, is skipped)."""
    records = []
    try:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise PlotError(f"{path}:{number}: not a JSON line") from None
                if not isinstance(record, dict):
                    raise PlotError(f"{path}:{number}: not a JSON object")
                if record.get("final"):
                    continue
                missing = {"epoch", "loss"} - set(record)
                if missing:
                    raise PlotError(f"{path}:{number}: not a fastmlp log record (missing {sorted(missing)[0]!r})")
                records.append(record)
    except OSError as e:
        raise PlotError(f"{path}: cannot read: {e.strerror or e}") from None
    if not records:
        raise PlotError(f"{path}: no epoch records")
    return records


def plot_logs(paths, output):
    """Draw the logs into `output` (PNG), written atomically."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotError("plotting needs matplotlib: pip install 'fastmlp[plot]'") from None
    runs = [(os.path.basename(p), read_log(p)) for p in paths]
    with_rms = any("weight_stats" in r for _, recs in runs for r in recs)
    fig, axes = plt.subplots(1, 3 if with_rms else 2, figsize=(15 if with_rms else 10, 4.2))
    styles = ("-", "--", ":", "-.")
    for k, (name, recs) in enumerate(runs):
        color = f"C{k % 10}"  # one colour per run in every panel
        epochs = [r["epoch"] for r in recs]
        axes[0].plot(epochs, [r["loss"] for r in recs], marker=".", color=color, label=name)
        evaluated = [r for r in recs if "full_acc" in r]  # every epoch, unless --eval-every
        for key, style in (("full_acc", "-"), ("test_acc", ":"), ("val_acc", "--"), ("holdout_acc", "-.")):
            if evaluated and key in evaluated[-1]:
                axes[1].plot([r["epoch"] for r in evaluated], [r[key] for r in evaluated], style, color=color,
                             label=f"{name} {key[:-4]}")
        if with_rms and "weight_stats" in recs[-1]:
            layers = [s["layer"] for s in recs[-1]["weight_stats"]]
            for i, layer in enumerate(layers):
                axes[2].plot(epochs, [r["weight_stats"][i]["rms"] for r in recs], styles[i % 4], color=color,
                             label=f"{name} {layer}")
    axes[0].set(title="training loss", xlabel="epoch", yscale="log")
    axes[1].set(title="accuracy (val / test / full, holdout)", xlabel="epoch", ylabel="%")
    if with_rms:
        axes[2].set(title="weight RMS per layer", xlabel="epoch")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    directory = os.path.dirname(os.path.abspath(output))
    fd, tmp = tempfile.mkstemp(prefix=".plot-", suffix=".png", dir=directory)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        publish(tmp, output)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)
    return output
