"""Training: one frozen configuration in, per-epoch records out.

train() drives the mini-batch loop from Python (a kernel call costs about a microsecond)
over buffers the network allocated once; evaluate() reports accuracy on the validation
half, the test half and the full test set.
"""
import dataclasses
import time

import numba
import numpy as np

from fastmlp.data import prepare, split_accuracies
from fastmlp.network import Network
from fastmlp import kernels as K


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    hidden: tuple = (100,)
    activation: tuple = ("sigmoid",)   # one name, or one per hidden layer
    epochs: int = 10
    batch_size: int = 256
    lr: float = 1.0
    seed: int = 0
    standardize: bool = True
    shuffle: bool = True
    dtype: str = "float32"
    threads: int | None = None        # None: Numba's default (all cores)
    init: str = "book"
    limit: int | None = None          # train on the first `limit` images only

    def activations(self):
        acts = tuple(self.activation)
        if len(acts) == 1:
            return acts * len(self.hidden)
        if len(acts) != len(self.hidden):
            raise ValueError(f"{len(acts)} activations given for {len(self.hidden)} hidden layers")
        return acts

    def validate(self):
        """Raise ValueError with a one-line message for a configuration that cannot run."""
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise ValueError(f"learning rate must be positive, got {self.lr}")
        if any(h < 1 for h in self.hidden):
            raise ValueError(f"hidden sizes must be positive, got {list(self.hidden)}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if self.threads is not None and not 1 <= self.threads <= numba.config.NUMBA_NUM_THREADS:
            raise ValueError(f"threads must be between 1 and {numba.config.NUMBA_NUM_THREADS}, got {self.threads}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be at least 1, got {self.limit}")
        for a in self.activations():
            if a not in K.ACTIVATIONS:
                raise ValueError(f"unknown activation {a!r} (known: {', '.join(K.ACTIVATIONS)})")


def build_network(config, inputs, classes):
    return Network([inputs, *config.hidden, classes], config.activations(),
                   max_batch=config.batch_size, dtype=config.dtype, init=config.init, seed=config.seed)


def evaluate(network, prepared):
    """(validation, test, full) accuracy in percent."""
    return split_accuracies(network.predict(prepared.test_x), prepared.test_y)


def train(config, dataset, on_epoch=None, on_step=None):
    """Train on `dataset` (fastmlp.data.Dataset) as `config` says.

    on_step(done, total) is called after every mini-batch; on_epoch(record) after every
    epoch with a dict: epoch, loss (mean training loss over the epoch's mini-batches),
    val_acc, test_acc, full_acc (percent), seconds (training time of the epoch, without
    evaluation), samples_per_s, and in the first record compile_seconds (compiling or
    loading the kernels, before the first step). Returns (network, list of records).
    """
    config.validate()
    if config.threads is not None:
        numba.set_num_threads(config.threads)
    prepared = prepare(dataset, config.standardize, config.dtype, config.limit)
    n, d = prepared.train_x.shape
    network = build_network(config, d, dataset.classes)
    compile_start = time.perf_counter()
    K.warmup(network.dtype)
    compile_seconds = time.perf_counter() - compile_start
    rng = np.random.default_rng(config.seed)
    bs = config.batch_size
    steps = (n + bs - 1) // bs
    order = np.arange(n)
    records = []
    for epoch in range(1, config.epochs + 1):
        if config.shuffle:
            order = rng.permutation(n)
        start = time.perf_counter()
        total_loss = 0.0
        for step in range(steps):
            lo, hi = step * bs, min(n, step * bs + bs)
            if config.shuffle:
                x, t = network.x[:hi - lo], network.t[:hi - lo]
                np.take(prepared.train_x, order[lo:hi], axis=0, out=x)
                np.take(prepared.train_t, order[lo:hi], axis=0, out=t)
            else:  # the book's order: contiguous slices, no copy
                x, t = prepared.train_x[lo:hi], prepared.train_t[lo:hi]
            network.forward(x)
            total_loss += network.loss_and_backward(x, t) * (hi - lo)
            K.sgd_step(network.params, network.grads, config.lr)
            if on_step:
                on_step(step + 1, steps)
        seconds = time.perf_counter() - start
        val, test, full = evaluate(network, prepared)
        record = dict(epoch=epoch, loss=total_loss / n, val_acc=val, test_acc=test, full_acc=full,
                      seconds=seconds, samples_per_s=n / seconds)
        if epoch == 1:
            record["compile_seconds"] = compile_seconds
        records.append(record)
        if on_epoch:
            on_epoch(record)
    return network, records
