"""The dispatch table: fast replacements held to the plain layer, their digests current, the
settings that choose a path, and training end to end on every path this CPU can run."""
import numba
import numpy as np
import pytest
from click.testing import CliRunner

from fastmlp import TrainConfig, train
from fastmlp import kernels as K
from fastmlp.cli.main import main
from fastmlp.kernels import dispatch
from fastmlp.kernels._runtime.jit import host_has_avx512
from fastmlp.kernels.fast import validate

FAST = [n for n, k in K.KERNELS.items() if k.layer == "fast"]
avx512 = pytest.mark.skipif(not host_has_avx512(), reason="this CPU has no AVX-512")


def test_every_fast_replacement_is_validated_against_the_shipped_plain_sources():
    # On the code as shipped every replacement is active: a plain op edited without
    # `fastmlp kernels --check` afterwards fails here rather than costing users speed.
    stale = {name: dispatch.stale(name) for name in FAST}
    assert not any(stale.values()), f"run `fastmlp kernels --check`: {stale}"


@pytest.mark.parametrize("name", FAST)
def test_each_fast_replacement_holds_to_the_plain_ops_it_replaces(name):
    if not validate.runnable(name):
        pytest.skip(f"{name} needs AVX-512")
    assert validate.check(name) == []


def test_a_replacement_that_computes_something_else_fails_its_check():
    # The check can fail: a replacement swapped for another op entirely (dropout's backward).
    entry = K.KERNELS["softmax_cross_entropy_backward_flat"]
    wrong = K.KERNELS["dropout_backward"].run  # dX = dY * M: the wrong op entirely
    saved = entry.run
    try:
        entry.run = lambda dZ, P, T: wrong(dZ, P, T)
        failures = validate.check("softmax_cross_entropy_backward_flat")
    finally:
        entry.run = saved
    assert failures and "not the same bits" in failures[0]


def _implementations(dtype):
    return {op: c.implementation for op, c in dispatch.table(dtype).items()}


@avx512
def test_the_default_table_on_an_avx512_cpu(monkeypatch):
    monkeypatch.delenv("FASTMLP_KERNELS", raising=False)
    f32, f64 = _implementations("float32"), _implementations("float64")
    assert f32["dense_forward"] == "dense_forward_16lane" and f32["dense_backward"] == "dense_backward_6x64"
    assert f32["head"] == "head_step" and f32["activation_forward"] == "activation_forward_stretches"
    assert f64["dense_forward"] == "dense_forward_2x4" and f64["dense_backward"] == "dense_backward_6x16"
    assert f64["head"] == "separate kernels"


@pytest.mark.parametrize("setting,expect", [
    ("plain", dict(dense_forward="dense_forward", dense_backward="dense_backward", head="separate kernels",
                   activation_backward="activation_backward", softmax_cross_entropy_forward="softmax_cross_entropy_forward")),
    ("no-avx512", dict(dense_forward="dense_forward_2x4", dense_backward="dense_backward_6x16", head="separate kernels",
                       activation_backward="activation_backward_stretches")),
    ("no-fused", dict(head="separate kernels")),
])
def test_settings_choose_the_path(monkeypatch, setting, expect):
    monkeypatch.setenv("FASTMLP_KERNELS", setting)
    got = _implementations("float32")
    assert {op: got[op] for op in expect} == expect
    if setting == "no-fused" and host_has_avx512():
        assert got["dense_forward"] == "dense_forward_16lane"


def test_an_unknown_setting_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("FASTMLP_KERNELS", "turbo")
    r = CliRunner().invoke(main, ["kernels"])
    assert r.exit_code == 2 and "unknown setting 'turbo'" in r.stderr


def test_fastmlp_kernels_prints_the_table(monkeypatch):
    monkeypatch.delenv("FASTMLP_KERNELS", raising=False)
    r = CliRunner().invoke(main, ["kernels", "--dtype", "float32"])
    assert r.exit_code == 0, r.output
    rows = {line.split()[0]: line.split()[1] for line in r.stdout.splitlines()[2:]}
    assert rows["dense_forward"] == _implementations("float32")["dense_forward"]
    assert "head" in rows and "softmax_cross_entropy_backward" in rows


PATHS = [("plain", "float32"), ("plain", "float64"), ("no-avx512", "float32"), ("no-fused", "float32"),
         ("auto", "float32"), ("auto", "float64")]


@pytest.mark.parametrize("setting,dtype", PATHS)
def test_training_end_to_end_on_every_path(mnist, monkeypatch, setting, dtype):
    # Each path trains the same network to about the same accuracy (the products sum in
    # other orders, so not to the same bits), and each is bit-identical for 1 and 2 threads.
    monkeypatch.setenv("FASTMLP_KERNELS", setting)
    config = dict(hidden=(32,), activation=("relu",), init="he", epochs=1, batch_size=50, lr=0.1, limit=3000, seed=3,
                  dtype=dtype, dropout=0.1)
    one, records = train(TrainConfig(**config, threads=1), mnist)
    two, _ = train(TrainConfig(**config, threads=numba.config.NUMBA_NUM_THREADS), mnist)
    assert np.array_equal(one.params, two.params)
    assert records[-1]["full_acc"] > 85.0, records[-1]
    head = dispatch.table(dtype)["head"].run is not None
    assert (one.fused is not None) == head
    if setting in ("plain", "no-avx512", "no-fused"):
        assert one.fused is None


def test_plain_and_fast_paths_agree_on_the_book_network(mnist, monkeypatch):
    # Two epochs of the book network on 10k images: the plain layer and the fast path
    # end within 0.3 points of each other on every split.
    config = TrainConfig(hidden=(100,), epochs=2, batch_size=256, lr=1.0, limit=10000, shuffle=False)
    monkeypatch.setenv("FASTMLP_KERNELS", "plain")
    _, plain = train(config, mnist)
    monkeypatch.delenv("FASTMLP_KERNELS")
    _, fast = train(config, mnist)
    for key in ("val_acc", "test_acc", "full_acc"):
        assert abs(plain[-1][key] - fast[-1][key]) <= 0.3, (plain[-1], fast[-1])
