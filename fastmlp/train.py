"""Training: one frozen configuration in, per-epoch records out.

train() drives the mini-batch loop from Python (a kernel call costs about a microsecond)
over buffers the network allocated once; evaluate() reports accuracy on the validation
half, the test half and the full test set.
"""
import dataclasses
import math
import os
import time

import numba
import numpy as np

from fastmlp import graph as G
from fastmlp import kernels as K
from fastmlp import optim
from fastmlp.data import pixel_subset, prepare, split_accuracies
from fastmlp.network import INITS, Network, plan
from fastmlp import nodes as N
from fastmlp.nodes import LOSSES
from fastmlp.step import Diverged, first_bad_layer
from fastmlp.step import step as one_step

SCHEDULES = ("constant", "step", "cosine")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    # Network: a serial stack from hidden/activation/dropout, or an explicit graph.
    hidden: tuple = (100,)
    activation: tuple = ("sigmoid",)   # one name, or one per hidden layer
    input_dropout: float = 0.0
    dropout: float = 0.0
    graph: tuple | None = None         # fastmlp.graph.Node tuple; replaces the four above
    init: str = "book"
    loss: str = "cross_entropy"        # the head's: cross_entropy or mse (fastmlp.nodes.LOSSES)
    # Optimisation.
    epochs: int = 10
    batch_size: int = 256
    batch_ramp: int | None = None      # start at this batch size, double each epoch
    lr: float = 1.0
    lr_schedule: str = "constant"
    lr_step: int = 10                  # "step": multiply by lr_gamma every lr_step epochs
    lr_gamma: float = 0.5
    optimizer: str = "sgd"
    momentum: float = 0.9
    nesterov: bool = False
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0          # on weights (not biases): L2, or decoupled with adamw
    max_norm: float | None = None      # cap on each unit's incoming weight norm
    # Data.
    standardize: bool = True
    shuffle: bool = True
    limit: int | None = None           # train on the first `limit` images only
    crop: int = 0
    center: int | None = None
    drop_pixels: float = 0.0
    pixel_seed: int = 0
    shift: int = 0                     # move each training image by up to this many pixels
    elastic_alpha: float = 0.0         # elastic distortion (Simard 2003): field scale, in pixels
    elastic_sigma: float = 4.0         #   and the Gaussian's standard deviation, in pixels
    rotate: float = 0.0                # affine distortion: rotation within +-rotate degrees,
    scale: float = 0.0                 #   x and y scale factors within 1 +- scale,
    shear: float = 0.0                 #   shear angle within +-shear degrees
    holdout: int = 0                   # the last N training images: not trained on, reported
    eval_every: int = 1                # evaluate every N epochs (0: never), and after the last
    keep_best: bool = False            # end with the weights of the best holdout epoch
    # Running.
    seed: int = 0
    dtype: str = "float32"
    precision: str = "float32"         # the dense layers' products: float32, or bf16 (bfloat16 factors)
    threads: int | None = None         # None: Numba's default (all cores)
    weight_stats: bool = False

    def activations(self):
        acts = tuple(self.activation)
        if len(acts) == 1:
            return acts * len(self.hidden)
        if len(acts) != len(self.hidden):
            raise ValueError(f"{len(acts)} activations given for {len(self.hidden)} hidden layers")
        return acts

    def nodes(self, classes):
        """The graph's nodes; loss other than cross_entropy sets the head's."""
        loss = None if self.loss == "cross_entropy" else self.loss
        if self.graph is not None:
            return tuple(dataclasses.replace(n, loss=loss) if n.type == "head" and loss else n for n in self.graph)
        return G.serial(self.hidden, self.activations(), self.input_dropout, self.dropout, classes, loss)

    def validate(self):
        """Raise ValueError with a one-line message for a configuration that cannot run."""
        def need(ok, message):
            if not ok:
                raise ValueError(message)
        need(self.epochs >= 1, f"epochs must be at least 1, got {self.epochs}")
        need(self.batch_size >= 1, f"batch size must be at least 1, got {self.batch_size}")
        need(self.batch_ramp is None or 1 <= self.batch_ramp <= self.batch_size,
             f"batch ramp must be between 1 and the batch size {self.batch_size}, got {self.batch_ramp}")
        need(self.lr > 0, f"learning rate must be positive, got {self.lr}")
        need(self.lr_schedule in SCHEDULES, f"lr schedule must be one of {', '.join(SCHEDULES)}, got {self.lr_schedule!r}")
        need(self.lr_step >= 1, f"lr step must be at least 1, got {self.lr_step}")
        need(0 < self.lr_gamma <= 1, f"lr gamma must be in (0, 1], got {self.lr_gamma}")
        need(self.optimizer in optim.OPTIMIZERS, f"unknown optimizer {self.optimizer!r} (known: {', '.join(optim.OPTIMIZERS)})")
        need(0 <= self.momentum < 1, f"momentum must be in [0, 1), got {self.momentum}")
        need(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1 and beta2 must be in [0, 1)")
        need(self.eps > 0, f"eps must be positive, got {self.eps}")
        need(self.weight_decay >= 0, f"weight decay must be non-negative, got {self.weight_decay}")
        need(self.max_norm is None or self.max_norm > 0, f"max norm must be positive, got {self.max_norm}")
        need(0 <= self.input_dropout < 1, f"input dropout must be in [0, 1), got {self.input_dropout}")
        need(0 <= self.dropout < 1, f"dropout must be in [0, 1), got {self.dropout}")
        need(all(h >= 1 for h in self.hidden), f"hidden sizes must be positive, got {list(self.hidden)}")
        need(self.dtype in ("float32", "float64"), f"dtype must be float32 or float64, got {self.dtype}")
        need(self.precision in K.dispatch.PRECISIONS,
             f"precision must be one of {', '.join(K.dispatch.PRECISIONS)}, got {self.precision!r}")
        need(self.precision == "float32" or self.dtype == "float32",
             f"precision {self.precision} needs dtype float32 (the weights, sums and optimizer stay float32)")
        need(self.init in INITS, f"unknown initialisation {self.init!r} (known: {', '.join(INITS)})")
        need(self.loss in LOSSES, f"unknown loss {self.loss!r} (known: {', '.join(LOSSES)})")
        need(self.threads is None or 1 <= self.threads <= numba.config.NUMBA_NUM_THREADS,
             f"threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {self.threads}")
        need(self.limit is None or self.limit >= 1, f"limit must be at least 1, got {self.limit}")
        if self.graph is None:
            for a in self.activations():
                need(a in G.known_activations(), f"unknown activation {a!r} (known: {', '.join(G.known_activations())})")
        pixel_subset(28, 28, self.crop, self.center, self.drop_pixels, self.pixel_seed)
        need(0 <= self.shift <= 13, f"shift must be between 0 and 13 pixels, got {self.shift}")
        need(0 <= self.elastic_alpha <= 100, f"elastic alpha must be between 0 and 100 pixels, got {self.elastic_alpha}")
        need(0 < self.elastic_sigma <= 14, f"elastic sigma must be in (0, 14] pixels, got {self.elastic_sigma}")
        need(0 <= self.rotate <= 180, f"rotate must be between 0 and 180 degrees, got {self.rotate}")
        need(0 <= self.scale < 1, f"scale must be in [0, 1), got {self.scale}")
        need(0 <= self.shear <= 60, f"shear must be between 0 and 60 degrees, got {self.shear}")
        need(self.holdout >= 0, f"holdout must be at least 0, got {self.holdout}")
        need(self.eval_every >= 0, f"eval-every must be at least 0, got {self.eval_every}")
        need(not self.keep_best or self.holdout > 0, "keep-best needs a holdout (--holdout N) to choose the epoch by")

    def distorts(self):
        """Whether training images go through distort_gather (elastic or affine terms)."""
        return self.elastic_alpha > 0 or self.rotate > 0 or self.scale > 0 or self.shear > 0

    def augments(self):
        """Whether training images are moved or distorted at every step."""
        return self.shift > 0 or self.distorts()

    def batch_for_epoch(self, epoch):
        if self.batch_ramp is None:
            return self.batch_size
        return min(self.batch_size, self.batch_ramp * 2 ** (epoch - 1))

    def lr_for_epoch(self, epoch):
        if self.lr_schedule == "step":
            return self.lr * self.lr_gamma ** ((epoch - 1) // self.lr_step)
        if self.lr_schedule == "cosine":
            return self.lr * 0.5 * (1 + math.cos(math.pi * (epoch - 1) / self.epochs))
        return self.lr


class TooLarge(ValueError):
    """The network would not fit in this machine's memory; raised before allocating it."""


def machine_memory():
    """(total, available) bytes of memory: /proc/meminfo where there is one, else the
    physical pages for both."""
    try:
        with open("/proc/meminfo") as f:
            info = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[1:]}
        return info["MemTotal"], info.get("MemAvailable", info["MemTotal"])
    except (OSError, KeyError, ValueError, IndexError):
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return total, total


def _gib(n):
    return f"{n / 2 ** 30:,.1f} GiB" if n >= 2 ** 30 else f"{n / 2 ** 20:,.1f} MiB"


def check_memory(config, inputs, classes, available=None):
    """Raise TooLarge naming what the network's parameters, gradients, optimizer state and
    buffers need when that exceeds the memory available (a MemoryError half-way through
    allocating would say neither)."""
    params, buffers = plan(config.nodes(classes), inputs, classes, config.batch_size)
    itemsize = np.dtype(config.dtype).itemsize
    slots = optim.OPTIMIZERS[config.optimizer].slots
    parts = dict(parameters=params, gradients=params, **{"optimizer state": slots * params},
                 **{f"buffers for batch {config.batch_size}": buffers})
    need = itemsize * sum(parts.values())
    total, free = machine_memory()
    free = free if available is None else available
    if need > free:
        detail = ", ".join(f"{k} {_gib(itemsize * v)}" for k, v in parts.items() if v)
        raise TooLarge(f"this network needs {_gib(need)} of memory ({detail}, {config.dtype}); "
                       f"this machine has {_gib(total)}, {_gib(free)} of it available")
    return need


def build_network(config, inputs, classes):
    return Network(config.nodes(classes), inputs, classes, max_batch=config.batch_size,
                   dtype=config.dtype, init=config.init, seed=config.seed, precision=config.precision)


def kernels_for(config, network, optimizer):
    """The ops a training run will call (each through the dispatch table; "head": the
    fused head): compiled before the first step."""
    names = [network.k.op("dense_forward"), network.k.op("dense_backward"), optimizer.kernel]
    names += ["head"] if network.fused is not None else list(LOSSES[N.TYPES["head"].loss(network.head)])
    types = {n.type for n in network.order}
    if "layernorm" in types:
        names += ["layernorm_forward", "layernorm_backward"]
    acts = [n for n in network.order if n.type == "activation" and n.function in K.ACTIVATIONS]
    if acts:
        names.append("activation_forward")
    if any(n is not network.fused_act for n in acts):  # else the head kernel does it
        names.append("activation_backward")
    if any(n.type == "dropout" and n.rate > 0 for n in network.order):
        names += ["dropout_forward", "dropout_backward"]
    if config.weight_decay > 0:
        names.append("weight_decay")
    if config.max_norm is not None:
        names.append("max_norm")
    if config.distorts():
        names.append("distort_gather")
    elif config.shift > 0:
        names.append("shift_gather")
    return names


def data_kernels(config, dataset):
    """The kernels prepare() calls on this dataset's images (bytes: the table lookup, and
    the histogram when standardizing)."""
    if dataset.train_images.dtype != np.uint8:
        return []
    return ["byte_counts", "lookup_bytes"] if config.standardize else ["lookup_bytes"]


def evaluate(network, prepared):
    """(validation, test, full) accuracy in percent."""
    return split_accuracies(network.predict(prepared.test_x), prepared.test_y)


def holdout_accuracy(network, prepared):
    """Accuracy in percent on the held-out training images."""
    return float(100.0 * (network.predict(prepared.holdout_x) == prepared.holdout_y).mean())


def pixels_for(config, dataset):
    """The kept pixels' indices (None: all of them) for the crop, centre and dropped pixels."""
    return pixel_subset(dataset.rows, dataset.cols, config.crop, config.center, config.drop_pixels, config.pixel_seed)


def prepare_for(config, dataset, pixels=None):
    pixels = pixels_for(config, dataset) if pixels is None else pixels
    return prepare(dataset, config.standardize, config.dtype, config.limit, pixels, keep_full=config.augments(),
                   holdout=config.holdout)


class Interrupted(RuntimeError):
    """Training stopped on request after a step; `path` is the checkpoint written."""

    def __init__(self, path, epoch, step):
        super().__init__(f"interrupted at epoch {epoch}, step {step}; checkpoint saved to {path}")
        self.path = path


def _checkpoint_state(network, optimizer, config, rng, epoch, step, step_count, total_loss, order, classes,
                      prepared, dataset, best=None):
    from fastmlp import config as C
    arrays = {"params": network.params, "order": order}
    if best is not None and best["params"] is not None:
        arrays["best_params"] = best["params"]
    opt_meta = {"name": config.optimizer, "t": optimizer.t}
    for k, v in optimizer.state().items():
        if isinstance(v, np.ndarray):
            arrays[f"optimizer_{k}"] = v
    meta = dict(epoch=epoch, step=step, step_count=step_count, total_loss=total_loss,
                rng=rng.bit_generator.state, optimizer=opt_meta, config=C.to_dict(config),
                input_width=network.width["input"], classes=classes, dtype=str(network.dtype),
                mean=prepared.mean, std=prepared.std, rows=dataset.rows, cols=dataset.cols)
    if best is not None and best["params"] is not None:
        meta["best"] = dict(epoch=best["epoch"], holdout_acc=best["acc"])
    return arrays, meta


def network_from_checkpoint(meta, arrays, max_batch=None):
    """(network, config) with the checkpoint's weights, ready for predict/evaluate."""
    from fastmlp import config as C
    config = C.from_dict(meta["config"])
    network = Network(config.nodes(meta["classes"]), meta["input_width"], meta["classes"],
                      max_batch=max_batch or config.batch_size, dtype=meta["dtype"], init=config.init, seed=config.seed,
                      precision=config.precision)
    if arrays["params"].shape != network.params.shape:
        raise ValueError(f"checkpoint holds {arrays['params'].size} parameters; its configuration needs {network.params.size}")
    network.params[...] = arrays["params"]
    return network, config


def train(config, dataset, on_epoch=None, on_step=None, save=None, save_every=1, resume=None, stop=None):
    """Train on `dataset` (fastmlp.data.Dataset) as `config` says.

    on_step(done, total) is called after every mini-batch; on_epoch(record) after every
    epoch with a dict: epoch, loss (mean training loss over the epoch's mini-batches),
    val_acc, test_acc, full_acc (percent), seconds (training time of the epoch, without
    evaluation), samples_per_s, batch_size, lr, weight_stats (when asked for), holdout_acc
    (with a holdout), eval_seconds (the evaluation's time), and in the first record
    compile_seconds (compiling or loading the kernels, before the first step). With
    eval_every N the accuracies (and eval_seconds) are in every N-th epoch's record and
    the last one only. With keep_best the run ends with the weights of the first evaluated
    epoch of the highest holdout accuracy, and that epoch's record gets kept=True.

    save: checkpoint path, written every `save_every` epochs and at the end. resume: a
    checkpoint (meta, arrays) from fastmlp.checkpoint.load to continue from; the run then
    ends bit-identical to an uninterrupted one. stop(): polled after every step; when it
    returns true the step is finished, a checkpoint written (to `save`, else
    fastmlp-checkpoint.npz) and Interrupted raised. A NaN or Inf loss, or non-finite
    weights at the end of an epoch, raise Diverged without writing a checkpoint.
    Returns (network, list of records).
    """
    from fastmlp import checkpoint
    config.validate()
    if config.threads is not None:
        numba.set_num_threads(config.threads)
    pixels = pixels_for(config, dataset)
    if config.holdout >= len(dataset.train_labels):
        raise ValueError(f"holdout {config.holdout} leaves no training image (the training set has "
                         f"{len(dataset.train_labels)})")
    d = dataset.rows * dataset.cols if pixels is None else len(pixels)
    check_memory(config, d, dataset.classes)
    network = build_network(config, d, dataset.classes)
    optimizer = optim.make(config.optimizer, network.params.size, network.dtype, momentum=config.momentum,
                           nesterov=config.nesterov, beta1=config.beta1, beta2=config.beta2, eps=config.eps,
                           weight_decay=config.weight_decay, weights=network.weight_slices)
    # Every kernel of the run, preparing the data included, compiles (or loads) now: on a
    # cold start the helper processes share all of it.
    compile_start = time.perf_counter()
    K.warmup(network.dtype, kernels_for(config, network, optimizer) + data_kernels(config, dataset))
    compile_seconds = time.perf_counter() - compile_start
    prepared = prepare_for(config, dataset, pixels)
    n = prepared.train_x.shape[0]
    rng = np.random.default_rng(config.seed)
    first_epoch, first_step, step_count, resumed_loss, order = 1, 0, 0, 0.0, None
    best = dict(params=None, epoch=None, acc=-1.0)
    if resume is not None:
        meta, arrays = resume
        if meta["input_width"] != d or meta["classes"] != dataset.classes or meta["dtype"] != str(network.dtype):
            raise ValueError(f"checkpoint is for {meta['input_width']} inputs, {meta['classes']} classes, "
                             f"{meta['dtype']}; this run has {d}, {dataset.classes}, {network.dtype}")
        if arrays["params"].shape != network.params.shape or meta["optimizer"]["name"] != config.optimizer:
            raise ValueError("checkpoint does not match this network or optimizer")
        network.params[...] = arrays["params"]
        for k, v in optimizer.state().items():
            if isinstance(v, np.ndarray):
                v[...] = arrays[f"optimizer_{k}"]
        optimizer.t = meta["optimizer"]["t"]
        rng.bit_generator.state = meta["rng"]
        first_epoch, first_step, step_count = meta["epoch"], meta["step"], meta["step_count"]
        resumed_loss = meta["total_loss"]
        order = arrays["order"] if first_step > 0 else None
        if "best_params" in arrays:
            best = dict(params=arrays["best_params"].copy(), epoch=meta["best"]["epoch"], acc=meta["best"]["holdout_acc"])
    # With --shift, blank pixels moved into the image take the scaled value of a 0 pixel.
    background = float(network.dtype.type(-prepared.mean / prepared.std))
    if config.distorts():
        from fastmlp.augment import gaussian_taps
        taps = gaussian_taps(config.elastic_sigma, network.dtype)
        work = np.empty((config.batch_size, 4, dataset.rows * dataset.cols), network.dtype)
    records = []

    def write(path, epoch, step, total_loss, order_now):
        arrays, meta = _checkpoint_state(network, optimizer, config, rng, epoch, step, step_count, total_loss,
                                         order_now, dataset.classes, prepared, dataset, best)
        return checkpoint.save(path, arrays, meta)

    for epoch in range(first_epoch, config.epochs + 1):
        bs = config.batch_for_epoch(epoch)
        lr = config.lr_for_epoch(epoch)
        steps = (n + bs - 1) // bs
        start_step = first_step if epoch == first_epoch else 0
        if start_step == 0 or order is None:
            order = rng.permutation(n) if config.shuffle else np.arange(n)
        start = time.perf_counter()
        total_loss = resumed_loss if epoch == first_epoch else 0.0
        for step in range(start_step, steps):
            lo, hi = step * bs, min(n, step * bs + bs)
            if config.distorts():  # each image distorted (and moved) at random, then gathered
                x = network.x[:hi - lo]
                network.k.distort_gather(x, work, prepared.train_images, order[lo:hi], prepared.pixels, dataset.rows,
                                         dataset.cols, background, config.shift, config.elastic_alpha, taps,
                                         config.rotate, config.scale, config.shear, config.seed, step_count)
                t = network.t[:hi - lo]
                np.take(prepared.train_t, order[lo:hi], axis=0, out=t)
            elif config.shift > 0:  # augmented: each image moved at random, then gathered
                x = network.x[:hi - lo]
                network.k.shift_gather(x, prepared.train_images, order[lo:hi], prepared.pixels, dataset.rows, dataset.cols,
                               background, config.shift, config.seed, step_count)
                t = network.t[:hi - lo]
                np.take(prepared.train_t, order[lo:hi], axis=0, out=t)
            elif config.shuffle:
                x, t = network.x[:hi - lo], network.t[:hi - lo]
                np.take(prepared.train_x, order[lo:hi], axis=0, out=x)
                np.take(prepared.train_t, order[lo:hi], axis=0, out=t)
            else:  # the book's order: contiguous slices, no copy
                x, t = prepared.train_x[lo:hi], prepared.train_t[lo:hi]
            loss = one_step(network, optimizer, x, t, step_count, lr, config.max_norm,
                            where=f"epoch {epoch}, step {step + 1}")
            total_loss += loss * (hi - lo)
            step_count += 1
            if on_step:
                on_step(step + 1, steps)
            if stop is not None and stop():
                path = write(save or "fastmlp-checkpoint.npz", epoch, step + 1, total_loss, order)
                raise Interrupted(path, epoch, step + 1)
        seconds = time.perf_counter() - start
        if not np.isfinite(network.params).all():
            raise Diverged(f"diverged at epoch {epoch}, step {steps}: non-finite weights; "
                           f"first non-finite: {first_bad_layer(network)}")
        record = dict(epoch=epoch, loss=total_loss / n, seconds=seconds,
                      samples_per_s=(n - min(n, start_step * bs)) / seconds, batch_size=bs, lr=lr)
        if epoch == config.epochs or (config.eval_every and epoch % config.eval_every == 0):
            eval_start = time.perf_counter()
            record["val_acc"], record["test_acc"], record["full_acc"] = evaluate(network, prepared)
            if config.holdout:
                record["holdout_acc"] = holdout_accuracy(network, prepared)
            record["eval_seconds"] = time.perf_counter() - eval_start
        if "holdout_acc" in record:
            if config.keep_best and record["holdout_acc"] > best["acc"]:
                if best["params"] is None:
                    best["params"] = np.empty_like(network.params)
                best["params"][...] = network.params
                best["epoch"], best["acc"] = epoch, record["holdout_acc"]
        if config.weight_stats:
            record["weight_stats"] = network.weight_stats()
        if epoch == first_epoch:
            record["compile_seconds"] = compile_seconds
        records.append(record)
        if save and (epoch % save_every == 0 or epoch == config.epochs):
            write(save, epoch + 1, 0, 0.0, order)
        if on_epoch:
            on_epoch(record)
    if config.keep_best and best["params"] is not None:
        network.params[...] = best["params"]
        for r in records:
            if r["epoch"] == best["epoch"]:
                r["kept"] = True
        if save:
            write(save, config.epochs + 1, 0, 0.0, order)
    return network, records
