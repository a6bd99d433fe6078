"""The `fastmlp` command: train, evaluate, predict, data, sweep, plot, bench, kernels, warmup, cache. Parsing and printing only; the work is in
fastmlp. Errors are one line on stderr: exit 2 for usage, 1 for everything else."""
import json
import os
import signal
import sys
import time

import click

from fastmlp.kernels.dispatch import PRECISIONS
from fastmlp.nodes import LOSSES
from fastmlp.optim import OPTIMIZERS

class Group(click.Group):
    """A group whose errors are one line (no usage banner, no traceback)."""

    def main(self, args=None, prog_name=None, **extra):
        extra.pop("standalone_mode", None)
        try:
            return super().main(args=args, prog_name=prog_name, standalone_mode=False, **extra)
        except click.UsageError as e:
            cmd = e.ctx.command_path if e.ctx else "fastmlp"
            click.echo(f"{cmd}: error: {e.format_message()}", err=True)
            sys.exit(2)
        except click.ClickException as e:
            click.echo(f"fastmlp: error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("fastmlp: aborted", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("fastmlp: interrupted", err=True)
            sys.exit(130)
        except Exception as e:  # a bug or an unforeseen failure: still one line
            if os.environ.get("FASTMLP_DEBUG"):
                raise
            click.echo(f"fastmlp: error: {type(e).__name__}: {e} (set FASTMLP_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)


def _positive_int(ctx, param, value):
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}")
    return value


def _positive_float(ctx, param, value):
    if value is not None and not value > 0:
        raise click.BadParameter(f"must be positive, got {value}")
    return value


def _int_list(ctx, param, value):
    if value is None:
        return None
    try:
        sizes = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {value!r}") from None
    if any(s < 1 for s in sizes):
        raise click.BadParameter(f"sizes must be positive, got {value!r}")
    return sizes


def _activation_list(ctx, param, value):
    if value is None:
        return None
    from fastmlp.kernels import ACTIVATIONS
    names = tuple(v.strip() for v in value.split(","))
    for n in names:
        if n not in ACTIVATIONS:
            raise click.BadParameter(f"unknown activation {n!r} (choose from {', '.join(ACTIVATIONS)})")
    return names


# fastmlp.presets.PRESETS's names (a test checks); listed here so that --help does not import
# the kernels.
PRESET_NAMES = ["book", "book99", "deep", "simard", "speedrun"]


@click.group(cls=Group)
@click.version_option(package_name="fastmlp")
def main():
    """fastmlp: train multilayer perceptrons on MNIST-shaped data, fast."""


def _elastic(ctx, param, value):
    if value is None:
        return None
    try:
        alpha, sigma = (float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected ALPHA,SIGMA (two numbers, e.g. 34,4), got {value!r}") from None
    return alpha, sigma


def _add_file_and_options(values, config_file, options):
    """values (TrainConfig keywords) updated from an experiment file; options (the command's
    keyword arguments) with --elastic ALPHA,SIGMA split into its two fields, in place."""
    from fastmlp import config as C
    if config_file:
        try:
            values.update(C.read(config_file))
        except C.ConfigError as e:
            raise click.UsageError(str(e)) from None
    elastic = options.pop("elastic", None)
    if elastic is not None:
        options["elastic_alpha"], options["elastic_sigma"] = elastic


def _fraction(ctx, param, value):
    if value is not None and not 0 <= value < 1:
        raise click.BadParameter(f"must be in [0, 1), got {value}")
    return value


@main.command()
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None,
              help="Start from a named configuration; a --config file and explicit options override it. "
                   "book: Perrotta's final network; book99: the book's 99% exercise; deep: two hidden layers "
                   "on distorted images; simard: one hidden layer on distorted images; speedrun: the shortest "
                   "time to 99%. README.md (Presets) lists each one's settings and figures.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML experiment file: TrainConfig keys and optional [[node]] graph tables.")
@click.option("--hidden", callback=_int_list, metavar="N[,N...]", help="Hidden layer sizes.  [default: 100]")
@click.option("--activation", callback=_activation_list, metavar="NAME[,NAME...]",
              help="Hidden activation, one for all layers or one per layer: identity, sigmoid, "
                   "tanh, relu, shifted_relu.  [default: sigmoid]")
@click.option("--input-dropout", type=float, callback=_fraction, help="Dropout rate on the input pixels.  [default: 0]")
@click.option("--dropout", type=float, callback=_fraction, help="Dropout rate after each hidden layer.  [default: 0]")
@click.option("--init", type=click.Choice(["book", "glorot", "he"]), help="Weight initialisation.  [default: book]")
@click.option("--loss", type=click.Choice(list(LOSSES)),
              help="The head's loss: cross-entropy from the logits, or the mean squared error of the softmax "
                   "output (the book's early chapters).  [default: cross_entropy]")
@click.option("--epochs", type=int, callback=_positive_int, help="Passes over the training set.  [default: 10]")
@click.option("--batch-size", type=int, callback=_positive_int, help="Mini-batch size (the largest, with a ramp).  [default: 256]")
@click.option("--batch-ramp", type=int, callback=_positive_int, metavar="START",
              help="Start at batch size START and double it every epoch until --batch-size.")
@click.option("--lr", type=float, callback=_positive_float, help="Learning rate.  [default: 1.0]")
@click.option("--lr-schedule", type=click.Choice(["constant", "step", "cosine"]),
              help="Learning rate per epoch: constant; step (times --lr-gamma every --lr-step epochs); "
                   "cosine (from --lr down towards 0).  [default: constant]")
@click.option("--lr-step", type=int, callback=_positive_int, help="Epochs between steps of the step schedule.  [default: 10]")
@click.option("--lr-gamma", type=float, callback=_positive_float, help="Factor of the step schedule.  [default: 0.5]")
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)), help="Update rule.  [default: sgd]")
@click.option("--momentum", type=float, callback=_fraction, help="Momentum coefficient.  [default: 0.9]")
@click.option("--nesterov/--no-nesterov", default=None, help="Nesterov's variant of momentum.  [default: off]")
@click.option("--weight-decay", type=float, help="L2 weight decay on weights (not biases).  [default: 0]")
@click.option("--max-norm", type=float, callback=_positive_float, help="Cap on each unit's incoming weight norm.")
@click.option("--standardize/--no-standardize", default=None,
              help="Standardize pixels with the training set's mean and deviation (the book's "
                   "way), or scale them to [0, 1].  [default: standardize]")
@click.option("--shuffle/--no-shuffle", default=None,
              help="Shuffle the training set every epoch (the book does not).  [default: shuffle]")
@click.option("--limit", type=int, callback=_positive_int, help="Train on the first N training images only.")
@click.option("--crop", type=int, help="Remove an N-pixel border from every image (0-13).  [default: 0]")
@click.option("--center", type=int, help="Keep only the central K x K pixels (1-28).")
@click.option("--drop-pixels", type=float, help="Remove a fixed random fraction F in [0, 1) of pixel positions.  [default: 0]")
@click.option("--pixel-seed", type=int, help="Seed choosing the dropped pixel positions.  [default: 0]")
@click.option("--shift", type=int, metavar="N",
              help="Augment: move every training image by a random offset of up to N pixels in each "
                   "direction, new at every step (0-13; evaluation images are never moved).  [default: 0]")
@click.option("--elastic", callback=_elastic, metavar="ALPHA,SIGMA",
              help="Augment: Simard's elastic distortion, a random field smoothed by a Gaussian of SIGMA "
                   "pixels and scaled by ALPHA (e.g. 34,4), new at every step.")
@click.option("--rotate", type=float, metavar="DEG", help="Augment: rotate by up to DEG degrees either way.  [default: 0]")
@click.option("--scale", type=float, metavar="F", help="Augment: scale x and y by factors in 1 +- F.  [default: 0]")
@click.option("--shear", type=float, metavar="DEG", help="Augment: shear by up to DEG degrees either way.  [default: 0]")
@click.option("--holdout", type=int, metavar="N",
              help="Hold the last N training images out of training and report their accuracy every epoch "
                   "(choose settings on it, not on the test set).  [default: 0]")
@click.option("--eval-every", type=int, metavar="N",
              help="Evaluate every N epochs (0: only after the last; time to a result counts evaluation too).  [default: 1]")
@click.option("--keep-best", is_flag=True, default=None,
              help="End with the weights of the epoch with the best holdout accuracy (needs --holdout).")
@click.option("--seed", type=int, help="Seed for initialisation, shuffling and dropout.  [default: 0]")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), help="Floating-point type.  [default: float32]")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="The dense layers' products: float32, or bf16 (factors rounded to bfloat16, sums, weights "
                   "and optimizer in float32; a line on stderr says how this CPU runs it).  [default: float32]")
@click.option("--threads", type=int, callback=_positive_int, help="Numba threads.  [default: all cores]")
@click.option("--weight-stats", is_flag=True, default=None, help="Report mean |W|, RMS and max |W| of every layer each epoch.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory holding the four IDX files (else $FASTMLP_DATA_DIR, else the download cache).")
@click.option("--save", "save_path", type=click.Path(dir_okay=False), default=None,
              help="Write a checkpoint (weights, optimizer state, position, configuration; .npz, no pickle) "
                   "at the end of training, every --save-every epochs and on Ctrl-C / SIGTERM.")
@click.option("--save-every", type=int, default=1, show_default=True, callback=_positive_int,
              help="Epochs between checkpoints.")
@click.option("--resume", "resume_path", type=click.Path(dir_okay=False), default=None,
              help="Continue from a checkpoint, with its configuration (options given here override it).")
@click.option("--log", "log_path", type=click.Path(dir_okay=False), default=None,
              help="Write the per-epoch records as JSON lines to this new file (appended to when resuming).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per epoch and a final summary on stdout, nothing else.")
def train(preset, config_file, as_json, data_dir, save_path, save_every, resume_path, log_path, **options):
    """Train a network and report validation / test / full accuracy every epoch."""
    from fastmlp import PRESETS, DataError, TrainConfig, load
    from fastmlp import config as C
    from fastmlp.graph import GraphError
    from fastmlp.train import Diverged, Interrupted, TooLarge
    from fastmlp.train import train as run

    from fastmlp import checkpoint as CK
    resume = None
    values = dict(PRESETS[preset]) if preset else {}
    if resume_path:
        if preset or config_file:
            raise click.UsageError("--resume takes its configuration from the checkpoint; drop --preset/--config")
        try:
            resume = CK.load(resume_path)
            values = vars(C.from_dict(resume[0]["config"], resume_path))
        except (CK.CheckpointError, C.ConfigError) as e:
            raise click.UsageError(str(e)) from None
    _add_file_and_options(values, config_file, options)
    explicit = {k: v for k, v in options.items() if v is not None}
    if values.get("graph") is not None:
        clash = sorted(set(explicit) & {"hidden", "activation", "input_dropout", "dropout"})
        if clash:
            raise click.UsageError(f"--{clash[0].replace('_', '-')} cannot be combined with a [[node]] graph")
    values.update(explicit)
    config = TrainConfig(**values)
    try:
        config.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if log_path and os.path.exists(log_path) and not resume_path:
        raise click.UsageError(f"{log_path} exists; choose a new --log file (it is appended to only with --resume)")
    log = (lambda m: click.echo(m, err=True))
    started = time.perf_counter()
    try:
        dataset = load(data_dir, log=log)
    except DataError as e:
        raise click.ClickException(str(e)) from None
    data_seconds = time.perf_counter() - started

    show_bar = sys.stdout.isatty() and not as_json
    bar = {"bar": None}

    def on_step(done, total):
        if not show_bar:
            return
        if bar["bar"] is None:
            bar["bar"] = click.progressbar(length=total, label="training", file=sys.stdout)
            bar["bar"].__enter__()
        bar["bar"].update(1)
        if done == total:
            bar["bar"].__exit__(None, None, None)
            bar["bar"] = None

    def on_epoch(r):
        if log_path:
            with open(log_path, "a") as f:
                f.write(json.dumps({k: _plain(v) for k, v in r.items()}) + "\n")
        if as_json:
            click.echo(json.dumps({k: _plain(v) for k, v in r.items()}))
            return
        line = f"epoch {r['epoch']:3d}  loss {r['loss']:.4f}  "
        if "full_acc" in r:
            line += f"val {r['val_acc']:.2f}%  test {r['test_acc']:.2f}%  full {r['full_acc']:.2f}%  "
        line += f"{r['seconds']:.2f}s  {r['samples_per_s']:,.0f} samples/s"
        if "holdout_acc" in r:
            line = line.replace("  val ", f"  holdout {r['holdout_acc']:.2f}%  val ", 1)

        if config.batch_ramp is not None:
            line += f"  batch {r['batch_size']}"
        if config.lr_schedule != "constant":
            line += f"  lr {r['lr']:.3g}"
        if "weight_stats" in r:
            line += "  rms " + " ".join(f"{s['rms']:.3g}" for s in r["weight_stats"])
        click.echo(line)

    stop = {"requested": False}

    def request_stop(signum, frame):
        if stop["requested"]:  # a second Ctrl-C: give up at once
            raise KeyboardInterrupt
        stop["requested"] = True
        click.echo("stopping after this step; saving a checkpoint (Ctrl-C again to abort)", err=True)

    previous = {s_: signal.signal(s_, request_stop) for s_ in (signal.SIGINT, signal.SIGTERM)}
    try:
        _, records = run(config, dataset, on_epoch=on_epoch, on_step=on_step, save=save_path,
                         save_every=save_every, resume=resume, stop=lambda: stop["requested"])
    except (GraphError, TooLarge) as e:  # raised while building the network, before the first step
        raise click.UsageError(str(e)) from None
    except CK.CheckpointError as e:  # a checkpoint could not be written (a full disk)
        raise click.ClickException(str(e)) from None
    except Interrupted as e:
        click.echo(f"fastmlp: {e}", err=True)
        sys.exit(130)
    except (Diverged, ValueError) as e:
        raise click.ClickException(str(e)) from None
    finally:
        for s_, handler in previous.items():
            signal.signal(s_, handler)
    last = next((r for r in records if r.get("kept")), records[-1])
    summary = dict(final=True, epochs=len(records), loss=last["loss"], val_acc=last["val_acc"],
                   test_acc=last["test_acc"], full_acc=last["full_acc"],
                   seconds=sum(r["seconds"] for r in records),
                   samples_per_s=sum(r["samples_per_s"] for r in records) / len(records),
                   wall_seconds=time.perf_counter() - started,
                   data_seconds=data_seconds, compile_seconds=records[0].get("compile_seconds", 0.0),
                   eval_seconds=sum(r.get("eval_seconds", 0.0) for r in records),
                   config=config_dict(config))
    if "holdout_acc" in last:
        summary["holdout_acc"] = last["holdout_acc"]
    if last.get("kept"):
        summary["kept_epoch"] = last["epoch"]
    if as_json:
        click.echo(json.dumps(summary))
    else:
        kept = f" (weights of epoch {last['epoch']}, best holdout {last['holdout_acc']:.2f}%)" if last.get("kept") else ""
        click.echo(f"final{kept}: val {last['val_acc']:.2f}%  test {last['test_acc']:.2f}%  "
                   f"full {last['full_acc']:.2f}%  ({summary['wall_seconds']:.1f}s wall)")


def config_dict(config):
    from fastmlp.config import to_dict
    return _plain(to_dict(config))


def _plain(v):
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    if hasattr(v, "item"):
        return v.item()
    return v


@main.command()
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory to check (else $FASTMLP_DATA_DIR, else the download cache).")
@click.option("--download", is_flag=True, help="Download missing files into the cache (or --data-dir).")
def data(data_dir, download):
    """Show where the data comes from and verify it (SHA-256 and IDX structure)."""
    from fastmlp import data as D

    try:
        if download:
            target = data_dir or os.environ.get("FASTMLP_DATA_DIR") or D.cache_dir()
            D.download(target, log=lambda m: click.echo(m, err=True))
            data_dir = target
        source = D.locate(data_dir, allow_download=False)
        click.echo(f"directory: {source.directory} (from {source.how})")
        official = True
        for name in D.FILES.values():
            path = D.find_file(source.directory, name)
            digest = D.sha256_of(path) if path.endswith(".gz") else None
            match = digest == D.SHA256[name]
            official &= match
            array = D.read_idx(path)
            note = "official MNIST SHA-256" if match else "not the official MNIST file (SHA-256 differs)"
            click.echo(f"  {os.path.basename(path)}: {'x'.join(map(str, array.shape))} {array.dtype}, {note}")
        dataset = D.load(source.directory, allow_download=False)
        click.echo(f"ok: {len(dataset.train_labels)} training and {len(dataset.test_labels)} test images "
                   f"of {dataset.rows}x{dataset.cols}, {dataset.classes} classes"
                   + ("" if official else " (not official MNIST: structure verified only)"))
    except D.DataError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--clear", is_flag=True, help="Delete fastmlp's compiled kernels and decompressed data copies.")
def cache(clear):
    """Show (or clear) where Numba caches fastmlp's compiled kernels, and where the
    decompressed copies of gzip data files are kept."""
    from fastmlp.data import clear_idx_copies, idx_copies, idx_cache_dir
    from fastmlp.kernels import cache_dirs, cached_files, clear_cache, CACHE_ENABLED

    if not CACHE_ENABLED:
        click.echo("kernel cache disabled (FASTMLP_NUMBA_CACHE=0)")
    for d in cache_dirs():
        click.echo(f"{d}: {len(cached_files(d))} cached files")
    copies = idx_copies()
    click.echo(f"{idx_cache_dir()}: {len(copies)} decompressed data files "
               f"({sum(os.path.getsize(f) for f in copies) / 1e6:.1f} MB)")
    if clear:
        clear_cache()
        clear_idx_copies()
        click.echo("cleared")


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory holding the four IDX files (else $FASTMLP_DATA_DIR, else the download cache).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of text.")
def evaluate(checkpoint_path, data_dir, as_json):
    """Accuracy of a checkpoint on the validation half, the test half and the full test
    set, and the confusion matrix on the full test set (rows: true class)."""
    from fastmlp import DataError, load
    from fastmlp import checkpoint as CK
    from fastmlp.predict import InputError, evaluate_checkpoint

    try:
        meta, arrays = CK.load(checkpoint_path)
    except CK.CheckpointError as e:
        raise click.UsageError(str(e)) from None
    try:
        (val, test, full), m = evaluate_checkpoint(meta, arrays, load(data_dir, log=lambda x: click.echo(x, err=True)))
    except (DataError, InputError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    if as_json:
        click.echo(json.dumps(dict(val_acc=val, test_acc=test, full_acc=full, confusion=m.tolist())))
        return
    click.echo(f"val {val:.2f}%  test {test:.2f}%  full {full:.2f}%")
    click.echo("confusion matrix (full test set; rows true, columns predicted):")
    click.echo("      " + "".join(f"{j:>6d}" for j in range(m.shape[1])))
    for i, row in enumerate(m):
        click.echo(f"{i:>6d}" + "".join(f"{v:>6d}" for v in row))


@main.command()
@click.argument("checkpoint_path", metavar="CHECKPOINT", type=click.Path(dir_okay=False))
@click.argument("inputs", metavar="INPUT...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--invert", is_flag=True, help="Invert PNG/JPEG images (dark digits on a light background).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
def predict(checkpoint_path, inputs, invert, as_json):
    """Class and probabilities for every image in IDX files or PNG/JPEG files, preprocessed
    as the checkpoint's training data was (resized to its geometry, same pixels and scaling)."""
    from fastmlp import checkpoint as CK
    from fastmlp.predict import InputError, predict_inputs

    try:
        meta, arrays = CK.load(checkpoint_path)
    except CK.CheckpointError as e:
        raise click.UsageError(str(e)) from None
    try:
        results = predict_inputs(meta, arrays, inputs, invert)
    except (InputError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    for label, cls, probs in results:
        if as_json:
            click.echo(json.dumps(dict(input=label, prediction=cls, probabilities=probs)))
        else:
            top = " ".join(f"{k}:{p:.3f}" for k, p in sorted(enumerate(probs), key=lambda kp: -kp[1])[:3])
            click.echo(f"{label}: {cls}  ({top})")


@main.command()
@click.argument("logs", metavar="LOG...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
def plot(logs, output, force):
    """Plot loss, the three accuracies and (when recorded) per-layer weight RMS per epoch
    from `fastmlp train --log` files, several runs overlaid. Needs matplotlib."""
    from fastmlp.plot import PlotError, plot_logs

    if os.path.exists(output) and not force:
        raise click.UsageError(f"{output} exists; pass --force to replace it")
    try:
        click.echo(f"wrote {plot_logs(logs, output)}")
    except PlotError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--show", "count", type=int, required=True, callback=_positive_int, metavar="N",
              help="Draw the first N training digits, one a row.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="PNG file to write.")
@click.option("--variants", type=int, default=6, show_default=True, callback=_positive_int,
              help="Distortions drawn of each digit (steps 0, 1, ... of the run).")
@click.option("--preset", type=click.Choice(PRESET_NAMES), default=None, help="Take the distortion of a preset.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="Take the distortion of a TOML experiment file.")
@click.option("--shift", type=int, metavar="N", help="Moves of up to N pixels.")
@click.option("--elastic", callback=_elastic, metavar="ALPHA,SIGMA", help="Elastic distortion (e.g. 34,4).")
@click.option("--rotate", type=float, metavar="DEG", help="Rotation of up to DEG degrees.")
@click.option("--scale", type=float, metavar="F", help="Scale factors in 1 +- F.")
@click.option("--shear", type=float, metavar="DEG", help="Shear of up to DEG degrees.")
@click.option("--seed", type=int, help="The run's seed.  [default: 0]")
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory holding the four IDX files (else $FASTMLP_DATA_DIR, else the download cache).")
def augment(count, output, variants, preset, config_file, force, data_dir, **options):
    """Picture what a run's augmentation does: training digits next to distortions of each."""
    from fastmlp import PRESETS, DataError, TrainConfig, load
    from fastmlp.augment import show

    values = dict(PRESETS[preset]) if preset else {}
    _add_file_and_options(values, config_file, options)
    values.update({k: v for k, v in options.items() if v is not None})
    config = TrainConfig(**values)
    try:
        config.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if not config.augments():
        raise click.UsageError("no augmentation to show: give --elastic, --rotate, --scale, --shear or --shift "
                               "(or a preset or file that sets them)")
    if os.path.exists(output) and not force:
        raise click.UsageError(f"{output} exists; pass --force to replace it")
    try:
        dataset = load(data_dir, log=lambda m: click.echo(m, err=True))
    except DataError as e:
        raise click.ClickException(str(e)) from None
    count = min(count, len(dataset.train_labels))
    try:
        show(config, dataset, count, output, variants)
    except (OSError, ValueError) as e:
        raise click.ClickException(f"{output}: cannot write: {getattr(e, 'strerror', None) or e}") from None
    click.echo(f"wrote {output}: {count} digits, the original then {variants} distortions of each")


@main.command()
@click.argument("grid", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Directory for per-run results and results.csv.  [default: GRID's name + '-results']")
@click.option("--workers", type=int, callback=_positive_int, help="Runs at a time.  [default: cores]")
@click.option("--scheduler", metavar="ADDRESS", default=None,
              help="Run on a Dask distributed cluster (e.g. tcp://127.0.0.1:8786) instead of local processes.")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Directory holding the four IDX files (else $FASTMLP_DATA_DIR, else the download cache).")
def sweep(grid, out_dir, workers, scheduler, data_dir):
    """Train every combination of a sweep file's [grid] values over its [base] configuration,
    several at a time; write OUT/results.csv and print a Markdown table. Re-running skips
    finished runs; a failed run is reported and the others go on."""
    from fastmlp import sweep as S

    out_dir = out_dir or os.path.splitext(os.path.basename(grid))[0] + "-results"
    try:
        rows = S.run_sweep(grid, out_dir, workers, data_dir, scheduler, log=lambda m: click.echo(m, err=True))
    except S.SweepError as e:
        raise click.UsageError(str(e)) from None
    click.echo(S.markdown(rows))
    failed = sum(r["status"] != "ok" for r in rows)
    click.echo(f"results: {os.path.join(out_dir, 'results.csv')}" + (f"; {failed} failed" if failed else ""), err=True)
    if failed:
        sys.exit(1)


@main.command()
@click.option("--dtype", "dtypes", type=click.Choice(["float32", "float64"]), multiple=True,
              help="Compile for this type only (repeatable).  [default: both]")
def warmup(dtypes):
    """Compile every kernel ahead of time into the on-disk cache."""
    import numpy as np
    from fastmlp import kernels as K

    for name in dtypes or ("float32", "float64"):
        start = time.perf_counter()
        K.warmup(np.dtype(name))
        click.echo(f"{name}: {time.perf_counter() - start:.1f}s")
    click.echo("cache: " + ", ".join(K.cache_dirs()) if K.CACHE_ENABLED else "cache disabled (FASTMLP_NUMBA_CACHE=0)")


@main.command()
@click.option("--dtype", "dtypes", type=click.Choice(["float32", "float64"]), multiple=True,
              help="Show this type only (repeatable).  [default: both]")
@click.option("--check", is_flag=True,
              help="Re-validate the fast replacements of edited plain ops against them and record "
                   "their new digests where they pass.")
def kernels(dtypes, check):
    """The dispatch table: which implementation runs for each op on this machine, and why
    (FASTMLP_KERNELS=plain runs every op on the plain layer)."""
    from fastmlp.kernels import dispatch

    try:
        words = dispatch.settings()
    except ValueError as e:
        raise click.UsageError(str(e)) from None
    if check:
        from fastmlp.kernels.fast import validate
        results = validate.revalidate(log=click.echo)
        if not results:
            click.echo("every fast replacement is validated against the current plain sources")
        if any(results.values()):  # a failure list; None (skipped) and [] (validated) are not
            raise click.ClickException("some fast replacements differ from the plain ops they replace; "
                                       "they stay off until they are fixed and checked again")
        return
    click.echo(f"FASTMLP_KERNELS={','.join(sorted(words)) or 'auto'}")
    for dtype in dtypes or ("float32", "float64"):
        click.echo(f"{dtype}:")
        for op, choice in dispatch.table(dtype).items():
            if op != dispatch.HEAD and dtype not in dispatch.KERNELS[op].dtypes:
                continue
            click.echo(f"  {op:32s} {choice.implementation:36s} {choice.why}")


@main.command()
@click.option("--config", "configs", type=click.Choice(["book-b32", "book-b128", "book-b256", "deep-b128"]),
              multiple=True, help="Configuration to run (repeatable).  [default: all]")
@click.option("--threads", type=int, default=2, show_default=True, callback=_positive_int,
              help="Threads for both sides.")
@click.option("--samples", type=int, callback=_positive_int,
              help="Training samples per timed pass.  [default: 60000 for book, 12800 for deep]")
@click.option("--repeats", type=int, default=2, show_default=True, callback=_positive_int,
              help="Timed passes per side (after one untimed); the fastest counts.")
@click.option("--rounds", type=int, default=1, show_default=True, callback=_positive_int,
              help="Alternate the two sides this many times per configuration; the table shows the "
                   "median epoch time per side and the median and range of the paired ratios.")
@click.option("--precision", type=click.Choice(PRECISIONS), default="float32", show_default=True,
              help="Products in float32, or bf16: fastmlp's bf16 products against PyTorch under bf16 autocast.")
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object per configuration and side instead of the table.")
def bench(configs, threads, samples, repeats, rounds, precision, as_json):
    """Time training epochs of fastmlp against PyTorch on the CPU (or plain NumPy when
    PyTorch is not installed), each side in its own process, and print a table. FLOPs count
    the products computed (no dX for the first layer)."""
    from fastmlp import bench as B

    try:
        B.run(list(configs) or None, threads, samples, repeats, rounds, log=click.echo, as_json=as_json,
              precision=precision)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None


if __name__ == "__main__":
    main()
