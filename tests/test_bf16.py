"""bfloat16 products: bf16() rounds to nearest, ties to even, in the kernels and in the NumPy
twin alike; dense_forward_bf16 and dense_backward_bf16 (plain layer) hold to their float64
twins and equal the float32 plain kernels bit for bit on inputs that are bfloat16 already."""
import numpy as np
import pytest
from numba import njit

from fastmlp import kernels as K
from fastmlp.kernels import reference as R
from fastmlp.kernels._math import bf16
from conftest import TOL, assert_close


@njit
def _rounded(a):
    out = np.empty_like(a)
    for n in range(a.size):
        out[n] = bf16(a[n])
    return out


def _f32(bits):
    return np.array(bits, np.uint32).view(np.float32)


def _nearest(a):
    """Round to bfloat16 by choosing the nearer of the two neighbours in float64 (ties:
    the one whose last kept bit is 0): a second derivation, independent of the bit trick."""
    bits = a.view(np.uint32)
    lo = (bits & np.uint32(0xFFFF0000)).view(np.float32)
    hi = ((bits & np.uint32(0xFFFF0000)) + np.uint32(0x10000)).view(np.float32)
    # Past the largest bfloat16 the upper neighbour is +-2^128 (inf once rounded): measure
    # the distance to that.
    hi64 = np.where(np.isinf(hi), np.copysign(2.0**128, a.astype(np.float64)), hi.astype(np.float64))
    dlo = np.abs(a.astype(np.float64) - lo.astype(np.float64))
    dhi = np.abs(hi64 - a.astype(np.float64))
    even_lo = ((bits >> np.uint32(16)) & np.uint32(1)) == 0
    return np.where((dlo < dhi) | ((dlo == dhi) & even_lo), lo, hi)


CASES = [  # (float32 bits in, bfloat16 as float32 bits out)
    (0x3F800000, 0x3F800000),  # 1.0 is a bfloat16
    (0x3F808000, 0x3F800000),  # 1 + 2^-8: a tie, to the even 1.0
    (0x3F818000, 0x3F820000),  # 1 + 3 * 2^-8: a tie, to the even 1 + 2^-6
    (0x3F808001, 0x3F810000),  # just above the tie: up
    (0x3F807FFF, 0x3F800000),  # just below: down
    (0xBF818000, 0xBF820000),  # negative ties the same way
    (0x80000000, 0x80000000),  # -0.0 keeps its sign
    (0x00000001, 0x00000000),  # the smallest subnormal: to 0
    (0x00018000, 0x00020000),  # a subnormal tie, odd kept part: up
    (0x7F7F0000, 0x7F7F0000),  # the largest finite bfloat16
    (0x7F7FFFFF, 0x7F800000),  # the largest float32 rounds to inf
    (0xFF7FFFFF, 0xFF800000),  # and the most negative to -inf
    (0x007FFFFF, 0x00800000),  # the largest subnormal rounds up into the normal numbers
    (0x00008000, 0x00000000),  # a subnormal tie, even kept part: down to 0
    (0x7F800000, 0x7F800000),  # inf
    (0xFF800000, 0xFF800000),  # -inf
]


def test_bf16_rounds_to_nearest_even_at_the_edges():
    x = _f32([c[0] for c in CASES])
    want = np.array([c[1] for c in CASES], np.uint32)
    assert np.array_equal(_rounded(x).view(np.uint32), want)
    assert np.array_equal(R.bf16(x).view(np.uint32), want)


def test_bf16_keeps_nan():
    x = _f32([0x7FC00000, 0x7FFFFFFF, 0xFFC00001, 0x7F800001])  # the last: adding 0x7FFF would give inf
    assert np.isnan(_rounded(x)).all() and np.isnan(R.bf16(x)).all()


def test_bf16_kernel_twin_and_nearest_agree_on_random_bits():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**32, 200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[np.isfinite(x)]
    k, r = _rounded(x), R.bf16(x)
    assert np.array_equal(k.view(np.uint32), r.view(np.uint32))
    assert np.array_equal(r.view(np.uint32), _nearest(x).view(np.uint32))
    # 8 significant bits: within half a unit in the last place, 2^-8 of the value (normal range).
    normal = np.abs(x) >= np.finfo(np.float32).tiny
    finite = np.isfinite(r) & normal
    assert np.all(np.abs(r[finite].astype(np.float64) - x[finite]) <= 2.0**-8 * np.abs(x[finite].astype(np.float64)))
    assert np.array_equal(r.view(np.uint32) & np.uint32(0xFFFF), np.zeros(r.size, np.uint32))


SHAPES = [(1, 1, 1), (7, 129, 7), (33, 784, 10), (9, 33, 270), (64, 100, 800)]


def _scaled(n):
    tol = TOL[np.float32]
    return dict(rtol=tol["rtol"], atol=tol["atol"] * max(1.0, np.sqrt(n)) * 10)


@pytest.mark.parametrize("B,D,H", SHAPES)
def test_dense_forward_bf16_against_its_twin(B, D, H, rng):
    X = rng.standard_normal((B, D)).astype(np.float32)
    W = rng.standard_normal((H, D)).astype(np.float32)
    b = rng.standard_normal(H).astype(np.float32)
    Y = np.full((B, H), np.nan, np.float32)
    K.dense_forward_bf16(Y, X, W, b)
    assert_close(Y, R.dense_forward_bf16(X, W, b), np.float32, **_scaled(D))
    if D >= 100:  # and the rounding is real: the float32 product is far off at this tolerance
        assert not np.allclose(Y, R.dense_forward(X, W, b), **_scaled(D))


@pytest.mark.parametrize("B,D,H", SHAPES)
def test_dense_backward_bf16_against_its_twin(B, D, H, rng):
    X = rng.standard_normal((B, D)).astype(np.float32)
    W = rng.standard_normal((H, D)).astype(np.float32)
    dY = rng.standard_normal((B, H)).astype(np.float32)
    rdX, rdW, rdb = R.dense_backward_bf16(dY, X, W)
    for grad in (True, False):
        dX, dW, db = (np.full(s, np.nan, np.float32) for s in ((B, D), (H, D), H))
        K.dense_backward_bf16(dX, dW, db, dY, X, W, np.zeros(D, np.float32), grad)
        assert_close(dW, rdW, np.float32, **_scaled(B))
        assert_close(db, rdb, np.float32, **_scaled(B))
        if grad:
            assert_close(dX, rdX, np.float32, **_scaled(H))
        else:
            assert np.isnan(dX).all()  # not written


def test_on_bfloat16_inputs_the_bf16_kernels_are_the_float32_plain_kernels_bit_for_bit(rng):
    # bf16() leaves bfloat16 numbers as they are, and the loops are the plain ones in the
    # same order: the same bits. (The rounding itself is tested above.)
    B, D, H = 17, 97, 23
    X, W, dY = (R.bf16(rng.standard_normal(s).astype(np.float32)) for s in ((B, D), (H, D), (B, H)))
    b = rng.standard_normal(H).astype(np.float32)
    plain = {n: K.KERNELS[n].run for n in ("dense_forward", "dense_backward")}
    Y1, Y2 = np.empty((B, H), np.float32), np.empty((B, H), np.float32)
    K.dense_forward_bf16(Y1, X, W, b)
    plain["dense_forward"](Y2, X, W, b)
    assert np.array_equal(Y1, Y2)
    one = [np.empty((B, D), np.float32), np.empty((H, D), np.float32), np.empty(H, np.float32)]
    two = [np.empty_like(a) for a in one]
    K.dense_backward_bf16(*one, dY, X, W, np.zeros(D, np.float32), True)
    plain["dense_backward"](*two, dY, X, W, np.zeros(D, np.float32), True)
    assert all(np.array_equal(a, c) for a, c in zip(one, two))


def test_a_single_product_is_the_exact_product_of_the_rounded_factors(rng):
    # One term and no bias: Y is bf16(x) * bf16(w) exactly (8 + 8 significant bits fit in
    # float32), with x and w as drawn, not yet rounded.
    x, w = rng.standard_normal((50, 1)).astype(np.float32), rng.standard_normal((1, 1)).astype(np.float32)
    Y = np.empty((50, 1), np.float32)
    K.dense_forward_bf16(Y, x, w, np.zeros(1, np.float32))
    exact = R.bf16(x).astype(np.float64) * R.bf16(w).astype(np.float64)
    assert np.array_equal(Y.astype(np.float64), exact)
    assert not np.array_equal(Y.astype(np.float64), x.astype(np.float64) * w.astype(np.float64))


# --precision bf16: the dispatch table, training, the command line.

from fastmlp import TrainConfig, train  # noqa: E402
from fastmlp.kernels import dispatch  # noqa: E402


@pytest.mark.parametrize("B,D,H", SHAPES)
def test_the_bf16_precision_kernels_hold_to_the_twins(B, D, H, rng):
    # What a bf16 network calls for its products (the fast layer's rounded tiles unless
    # FASTMLP_KERNELS says otherwise), against the float64 twins of the plain bf16 kernels.
    k = dispatch.Kernels("float32", "bf16")
    X = rng.standard_normal((B, D)).astype(np.float32)
    W = rng.standard_normal((H, D)).astype(np.float32)
    b = rng.standard_normal(H).astype(np.float32)
    dY = rng.standard_normal((B, H)).astype(np.float32)
    Y = np.full((B, H), np.nan, np.float32)
    k.dense_forward(Y, X, W, b)
    assert_close(Y, R.dense_forward_bf16(X, W, b), np.float32, **_scaled(D))
    rdX, rdW, rdb = R.dense_backward_bf16(dY, X, W)
    dX, dW, db = (np.full(s, np.nan, np.float32) for s in ((B, D), (H, D), H))
    k.dense_backward(dX, dW, db, dY, X, W, np.zeros(D, np.float32), True)
    assert_close(dW, rdW, np.float32, **_scaled(B))
    assert_close(db, rdb, np.float32, **_scaled(B))
    assert_close(dX, rdX, np.float32, **_scaled(H))


def test_the_bf16_precision_maps_the_products_and_says_once_how_it_runs(monkeypatch, capsys):
    monkeypatch.delenv("FASTMLP_KERNELS", raising=False)
    monkeypatch.setattr(dispatch, "_NOTED", set())
    k = dispatch.Kernels("float32", "bf16")
    dispatch.Kernels("float32", "bf16")
    notes = [l for l in capsys.readouterr().err.splitlines() if "precision bf16" in l]
    assert len(notes) == 1
    units = dispatch.bf16_units()
    assert ("neither AMX nor AVX512-BF16" in notes[0]) == (not units)
    assert "dense_forward_bf16 as dense_forward_bf16_2x4" in notes[0]
    assert k.dense_forward is K.KERNELS["dense_forward_bf16_2x4"].run
    assert k.dense_backward is K.KERNELS["dense_backward_bf16_6x16"].run
    assert k.head is None and k.op("dense_forward") == "dense_forward_bf16" and k.op("softmax_rows") == "softmax_rows"
    f32 = dispatch.Kernels("float32")
    assert f32.dense_forward is f32.choices["dense_forward"].run and f32.op("dense_forward") == "dense_forward"
    assert not [l for l in capsys.readouterr().err.splitlines() if "precision" in l]
    # FASTMLP_KERNELS=plain: the plain bf16 loops, as written.
    monkeypatch.setenv("FASTMLP_KERNELS", "plain")
    assert dispatch.Kernels("float32", "bf16").dense_forward is K.dense_forward_bf16


def test_bf16_needs_float32_and_a_known_precision():
    with pytest.raises(ValueError, match="bf16 needs float32"):
        dispatch.Kernels("float64", "bf16")
    with pytest.raises(ValueError, match="precision bf16 needs dtype float32"):
        TrainConfig(precision="bf16", dtype="float64").validate()
    with pytest.raises(ValueError, match="precision must be one of float32, bf16, got 'fp8'"):
        TrainConfig(precision="fp8").validate()


BF16_RUN = dict(hidden=(128,), activation=("relu",), init="he", optimizer="adam", lr=2e-3, epochs=2, batch_size=64,
                limit=4000, seed=3)


def test_training_in_bf16_is_reproducible_and_close_to_float32(mnist):
    a, ra = train(TrainConfig(**BF16_RUN, precision="bf16"), mnist)
    b, _ = train(TrainConfig(**BF16_RUN, precision="bf16"), mnist)
    f, rf = train(TrainConfig(**BF16_RUN), mnist)
    assert a.k.op("dense_forward") == "dense_forward_bf16" and a.fused is None
    assert np.array_equal(a.params, b.params)  # same seed, same threads: the same bits
    assert not np.array_equal(a.params, f.params)  # the rounding changes the run ...
    # ... by little: 4,000 images, 2 epochs; the two runs' full accuracies (about 93%)
    # differ by a few tenths of a point (as two seeds do), far below 2 points.
    assert abs(ra[-1]["full_acc"] - rf[-1]["full_acc"]) < 2.0 and ra[-1]["full_acc"] > 88


def test_the_command_line_and_experiment_files_take_the_precision(mnist_dir, tmp_path):
    import json

    from click.testing import CliRunner

    from fastmlp import config as C
    from fastmlp.cli.main import main
    r = CliRunner().invoke(main, ["train", "--precision", "bf16", "--dtype", "float64", "--data-dir", mnist_dir])
    assert r.exit_code == 2 and "precision bf16 needs dtype float32" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["train", "--precision", "bf16", "--epochs", "1", "--limit", "600", "--json",
                                  "--save", str(tmp_path / "m.npz"), "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.splitlines()[-1])["config"]["precision"] == "bf16"
    r = CliRunner().invoke(main, ["evaluate", str(tmp_path / "m.npz"), "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    path = tmp_path / "run.toml"
    path.write_text('precision = "bf16"\n')
    assert C.read(str(path))["precision"] == "bf16"
