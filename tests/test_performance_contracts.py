"""Contracts the performance work relies on (no timings here: speed lives in benchmarks/):
no array allocation inside a training step, and bit-identical results for 1 and 2
threads on a graph with dropout, a skip connection and Adam."""
import tracemalloc

import numba
import numpy as np
import pytest

from fastmlp import TrainConfig, train
from fastmlp import kernels as K
from fastmlp import optim
from fastmlp.graph import Node
from fastmlp.network import Network


@pytest.mark.parametrize("fused", [True, False])  # train_step, and forward + loss_and_backward
@pytest.mark.parametrize("dropout", [0.5, 0.0])   # 0: the head takes the last activation too
def test_training_steps_allocate_no_arrays(fused, dropout):
    net = Network.serial([784, 64, 32, 10], ["shifted_relu", "relu"], max_batch=128, input_dropout=0.2, dropout=dropout)
    opt = optim.make("adam", net.params.size, net.dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    t = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 128)]
    K.warmup(np.float32)

    def step(i):
        if fused:
            net.train_step(x, t, i)
        else:
            net.forward(x, training=True, step=i)
            net.loss_and_backward(t)
        opt.step(net.params, net.grads, 1e-3)

    step(0)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for i in range(1, 51):
        step(i)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    # Views and small Python objects come and go; an array buffer of a batch would be
    # >= 128 * 10 * 4 = 5 kB. Nothing of 1 kB or more may be left or grow per step.
    grown = [s for s in after.compare_to(before, "lineno") if s.size_diff >= 1024]
    assert not grown, grown[:3]


def test_graph_training_is_bit_identical_for_1_and_2_threads(mnist):
    nodes = (Node("drop", "dropout", ("input",), rate=0.2), Node("h1", "dense", ("drop",), units=40),
             Node("a1", "activation", ("h1",), function="shifted_relu"), Node("h2", "dense", ("a1",), units=40),
             Node("a2", "activation", ("h2",), function="relu"), Node("skip", "add", ("a1", "a2")),
             Node("d2", "dropout", ("skip",), rate=0.3), Node("logits", "dense", ("d2",), units=10),
             Node("head", "head", ("logits",)))
    base = dict(graph=nodes, optimizer="adam", lr=1e-3, epochs=2, batch_size=50, batch_ramp=25, limit=2000,
                init="he", seed=9, weight_decay=1e-4, max_norm=2.0, shift=1)
    one, r1 = train(TrainConfig(**base, threads=1), mnist)
    two, r2 = train(TrainConfig(**base, threads=numba.config.NUMBA_NUM_THREADS), mnist)
    again, _ = train(TrainConfig(**base, threads=1), mnist)
    assert np.array_equal(one.params, again.params)
    assert np.array_equal(one.params, two.params)
    assert r1[-1]["full_acc"] == r2[-1]["full_acc"]


def _dispatchers():
    """Every Numba kernel defined in fastmlp.kernels' modules."""
    import importlib
    import pkgutil
    from numba.core.registry import CPUDispatcher
    import fastmlp.kernels
    found = {}
    for info in pkgutil.walk_packages(fastmlp.kernels.__path__, "fastmlp.kernels."):
        name = info.name[len("fastmlp.kernels."):]
        module = importlib.import_module(info.name)
        for attr, value in vars(module).items():
            if isinstance(value, CPUDispatcher) and value.__module__ == module.__name__:
                found[f"{name}.{attr}"] = value
    return found


def test_every_kernel_uses_the_numpy_error_model():
    # Python's error model puts a ZeroDivisionError test before each division, which keeps
    # loops with a division scalar (a serial sigmoid loop ran 13x slower).
    kernels = _dispatchers()
    assert len(kernels) >= 19, sorted(kernels)
    wrong = [n for n, d in kernels.items() if d.targetoptions.get("error_model") != "numpy"]
    assert not wrong, wrong


def test_a_division_by_zero_gives_nan_not_an_exception():
    # The mean loss of an empty batch is 0 / 0: NaN, as in NumPy, and no ZeroDivisionError.
    for dtype in (np.float32, np.float64):
        loss = K.cross_entropy(np.empty(0, dtype), np.empty((0, 10), dtype), np.empty((0, 10), dtype))
        assert np.isnan(loss)


@pytest.mark.parametrize("given, expected", [({}, "1000"), ({"GOMP_SPINCOUNT": "50000"}, "50000"),
                                             ({"OMP_WAIT_POLICY": "active"}, "None")])
def test_libgomp_spins_briefly_unless_the_user_chose(given, expected):
    # Importing the kernels sets GOMP_SPINCOUNT (read by libgomp when Numba loads it) for
    # this process and its children, where the user set neither it nor OMP_WAIT_POLICY.
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    script = ("import os, fastmlp.kernels as K, subprocess, sys; print(os.environ.get('GOMP_SPINCOUNT')); "
              "subprocess.run([sys.executable, '-c', 'import os; print(os.environ.get(\"GOMP_SPINCOUNT\"))'])")
    out = subprocess.run([sys.executable, "-c", script], env={**env, **given}, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == [expected, expected]
