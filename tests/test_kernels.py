"""Every kernel against its NumPy twin in fastmlp.kernels.reference, in both dtypes."""
import warnings

import numpy as np
import pytest

from fastmlp import kernels as K
from fastmlp.kernels import reference as R
from conftest import TOL, assert_close

DTYPES = [np.float32, np.float64]
SHAPES = [(1, 1, 1), (1, 7, 3), (7, 129, 7), (129, 7, 129), (8, 16, 12), (33, 784, 10), (67, 50, 70),
          (9, 33, 270), (70, 270, 66), (5, 7, 257)]
# (9, 33, 270) and (5, 7, 257) reach dense_forward's 16-column blocks with leftover rows
# and columns (a last block of 14 columns, of 1); the others its 4-column blocks. The
# backward products go through the outer-product tiles (more shapes: test_matmul.py).


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,D,H", SHAPES)
def test_dense_forward(dtype, B, D, H, rng):
    X = rng.standard_normal((B, D)).astype(dtype)
    W = rng.standard_normal((H, D)).astype(dtype)
    b = rng.standard_normal(H).astype(dtype)
    Y = np.full((B, H), np.nan, dtype)
    K.dense_forward(Y, X, W, b)
    assert_close(Y, R.dense_forward(X, W, b), dtype, **_scaled(TOL[dtype], D))


def _scaled(tol, n):
    # Sums of n terms of size ~1: the absolute error grows like sqrt(n).
    return dict(rtol=tol["rtol"], atol=tol["atol"] * max(1.0, np.sqrt(n)) * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,D,H", SHAPES)
def test_dense_backward(dtype, B, D, H, rng):
    X = rng.standard_normal((B, D)).astype(dtype)
    W = rng.standard_normal((H, D)).astype(dtype)
    dY = rng.standard_normal((B, H)).astype(dtype)
    dX, dW, db = np.full((B, D), np.nan, dtype), np.full((H, D), np.nan, dtype), np.full(H, np.nan, dtype)
    K.dense_backward(dX, dW, db, dY, X, W, np.zeros(D, dtype), True)
    rdX, rdW, rdb = R.dense_backward(dY, X, W)
    assert_close(dX, rdX, dtype, **_scaled(TOL[dtype], H))
    assert_close(dW, rdW, dtype, **_scaled(TOL[dtype], B))
    assert_close(db, rdb, dtype, **_scaled(TOL[dtype], B))


@pytest.mark.parametrize("B,H", [(70, 270), (9, 270), (70, 10)])
def test_dense_forward_same_bits_for_1_and_2_threads(B, H, rng):
    import numba
    X = rng.standard_normal((B, 66)).astype(np.float32)
    W = rng.standard_normal((H, 66)).astype(np.float32)
    b = rng.standard_normal(H).astype(np.float32)
    out = []
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
            Y = np.full((B, H), np.nan, np.float32)
            K.dense_forward(Y, X, W, b)
            out.append(Y)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(out[0], out[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R_,C", [(0, 5), (1, 1), (7, 17), (256, 100), (3, 1200)])
def test_column_sums_add_rows_in_order(dtype, R_, C, rng):
    # Whole and partial 16-column vectors; the reference adds the rows one by one in the
    # same dtype, so the sums must match exactly.
    from fastmlp.kernels.fast.dense import column_sums
    A = rng.standard_normal((R_, C)).astype(dtype)
    s = np.full(C, np.nan, dtype)
    column_sums(s, A)
    expected = np.zeros(C, dtype)
    for i in range(R_):
        expected = expected + A[i] if i else A[0].copy()
    assert np.array_equal(s, expected)


def test_dense_backward_skips_input_grad(rng):
    X = rng.standard_normal((5, 4))
    W = rng.standard_normal((3, 4))
    dY = rng.standard_normal((5, 3))
    dX = np.full((5, 4), 7.0)
    K.dense_backward(dX, np.empty((3, 4)), np.empty(3), dY, X, W, np.zeros(4), False)
    assert (dX == 7.0).all()


def _activation_inputs(dtype, rng):
    z = np.concatenate([rng.standard_normal(200) * 3, [-1.0, -1.0, 0.0, 1e4, -1e4, 88.0, -88.0, 700.0, -700.0]])
    return z.reshape(1, -1).repeat(3, axis=0).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(K.ACTIVATIONS))
def test_activation_forward_backward(dtype, name, rng):
    Z = _activation_inputs(dtype, rng)
    A = np.empty_like(Z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings, however large |z|
        K.activation_forward(A, Z, K.ACTIVATIONS[name])
        ref = R.activation_forward(Z, name)
    # libm in the input's precision: within 1 ulp in float64; in float32, exp/tanh of a
    # float32 argument plus the final rounding stay within 2 ulp, and an activation that
    # composes them (swish, z * sigmoid(z)) adds a rounding an operation: 4 ulp (4.8e-7).
    # Absolute 1e-35: the float32 exp gives 0 below -87.34 where libm gives subnormals,
    # which such a composition scales by |z| (up to 100 here).
    tol = dict(rtol=4.5e-16, atol=0) if dtype == np.float64 else dict(rtol=4.8e-7, atol=1e-35)
    assert_close(A, ref, dtype, **tol)
    dA = rng.standard_normal(Z.shape).astype(dtype)
    dZ = np.empty_like(Z)
    K.activation_backward(dZ, dA, Z, A, K.ACTIVATIONS[name])
    assert_close(dZ, R.activation_backward(dA, Z, A, name), dtype, **TOL[dtype])


def test_activation_names_match_reference():
    assert set(K.ACTIVATIONS) == set(R.ACTIVATIONS)


@pytest.mark.parametrize("dtype", DTYPES)
def test_shifted_relu_edges(dtype):
    kind = K.ACTIVATIONS["shifted_relu"]
    Z = np.array([[-1.0, -1.5, -0.5, np.nan, -np.inf, np.inf]], dtype)
    A = np.empty_like(Z)
    K.activation_forward(A, Z, kind)
    np.testing.assert_array_equal(A[0, :3], np.array([-1.0, -1.0, -0.5], dtype))
    assert np.isnan(A[0, 3]), "NaN must propagate, not be clamped to -1"
    assert A[0, 4] == -1.0 and A[0, 5] == np.inf
    dZ = np.empty_like(Z)
    K.activation_backward(dZ, np.ones_like(Z), Z, A, kind)
    np.testing.assert_array_equal(dZ[0, :3], np.array([0.0, 0.0, 1.0], dtype))  # 0 at exactly -1


def _logits(dtype, rng):
    """Edge-case rows: huge logits, tiny-scale rows next to large-scale ones, ties."""
    rows = [rng.standard_normal(10) * 3,
            np.array([1e4, -1e4, 0, 0, 0, 0, 0, 0, 0, 5.0]),
            np.array([-1e4] * 9 + [1e4]),
            rng.standard_normal(10) * 1e-3,       # scale 1e-3 ...
            rng.standard_normal(10) * 1.0,        # ... beside scale 1
            rng.standard_normal(10) * 1e3,        # ... and scale 1e3
            np.zeros(10)]
    return np.array(rows).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_rows(dtype, rng):
    Z = _logits(dtype, rng)
    P = np.empty_like(Z)
    K.softmax_rows(P, Z)
    assert_close(P, R.softmax_rows(Z), dtype, **TOL[dtype])
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_is_per_row_not_per_batch(dtype, rng):
    # Row 0's logits are 1e3 times row 1's. Subtracting the batch maximum would push
    # row 1 to exp(-large) = 0 everywhere (0/0). Per-row maxima keep it a distribution.
    Z = np.array([rng.standard_normal(10) * 1e3, rng.standard_normal(10)], dtype)
    Z[0, 0] = 1e3
    P = np.empty_like(Z)
    K.softmax_rows(P, Z)
    assert np.isfinite(P).all()
    np.testing.assert_allclose(P[1].sum(), 1.0, rtol=1e-6)
    assert (P[1] > 0.001).all()


def test_fused_forward_keeps_row_maxima_exact_with_float32_losses(rng):
    # float64 logits near 1.2e4 and float32 per-row losses: a row maximum passed through
    # the float32 array would be rounded by up to 5e-4 and shift every loss by as much.
    Z = 1.2e4 + rng.standard_normal((6, 10))
    T = np.eye(10)[rng.integers(0, 10, 6)]
    P, L = np.empty_like(Z), np.empty(6, np.float32)
    K.softmax_cross_entropy_forward(P, L, Z, T)
    rL, _ = R.cross_entropy(Z, T)
    np.testing.assert_allclose(L, rL, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_and_fused_forward(dtype, rng):
    Z = _logits(dtype, rng)
    T = np.eye(10, dtype=dtype)[rng.integers(0, 10, len(Z))]
    L = np.empty(len(Z), dtype)
    mean = K.cross_entropy(L, Z, T)
    rL, rmean = R.cross_entropy(Z, T)
    assert_close(L, rL, dtype, **TOL[dtype])
    np.testing.assert_allclose(mean, rmean, rtol=TOL[dtype]["rtol"])
    P, L2 = np.empty_like(Z), np.empty(len(Z), dtype)
    mean2 = K.softmax_cross_entropy_forward(P, L2, Z, T)
    rP, rL2, rmean2 = R.softmax_cross_entropy_forward(Z, T)
    assert_close(P, rP, dtype, **TOL[dtype])
    assert_close(L2, rL2, dtype, **TOL[dtype])
    np.testing.assert_allclose(mean2, rmean2, rtol=TOL[dtype]["rtol"])
    assert np.isfinite(L).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_cross_entropy_backward(dtype, rng):
    Z = _logits(dtype, rng)
    T = np.eye(10, dtype=dtype)[rng.integers(0, 10, len(Z))]
    P = np.empty_like(Z)
    K.softmax_rows(P, Z)
    dZ = np.empty_like(Z)
    K.softmax_cross_entropy_backward(dZ, P, T)
    assert_close(dZ, R.softmax_cross_entropy_backward(P, T), dtype, **TOL[dtype])


def test_loss_matches_masked_log_where_defined_and_stays_finite(rng):
    T = np.eye(10)[rng.integers(0, 10, 50)]
    Z = rng.standard_normal((50, 10)) * 4
    P = R.softmax_rows(Z)
    L = np.empty(50)
    # Where every y_hat > 0 our loss equals the book's masked-log loss.
    assert (P > 0).all()
    np.testing.assert_allclose(K.cross_entropy(L, Z, T), R.masked_log_loss(T, P), rtol=1e-12)
    # A confidently wrong row: the softmax underflows to exactly 0 for the true class, so
    # np.log gives -inf (loss inf); the masked log silently drops the term; ours is exact.
    Zbad = np.array([[1e4, 0.0, -1e4]])
    Tbad = np.array([[0.0, 0.0, 1.0]])
    Pbad = R.softmax_rows(Zbad)
    assert Pbad[0, 2] == 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        assert not np.isfinite(-np.sum(Tbad * np.log(Pbad)))
    Lbad = np.empty(1)
    loss = K.cross_entropy(Lbad, Zbad, Tbad)
    assert loss == 2e4  # log-sum-exp: log(sum) - z_true = 1e4 - (-1e4), exactly
    assert R.masked_log_loss(Tbad, Pbad) == 0.0  # what the masked log reports instead


@pytest.mark.parametrize("dtype", DTYPES)
def test_sgd_step(dtype, rng):
    p = rng.standard_normal(1001).astype(dtype)
    g = rng.standard_normal(1001).astype(dtype)
    expected = R.sgd_step(p, g, 0.3)
    K.sgd_step(p, g, 0.3)
    assert_close(p, expected, dtype, **TOL[dtype])


def test_every_kernel_has_a_reference():
    # Every kernel of the plain layer (and the data kernels) in the registry has its twin;
    # the fast layer's are held to the plain layer instead (tests/test_dispatch.py).
    names = [n for n, k in K.KERNELS.items() if k.layer != "fast"]
    assert len(names) >= 17, names
    for n in names:
        assert callable(getattr(R, n, None)), f"reference.{n} missing"


@pytest.mark.skipif(not __import__("fastmlp.kernels._runtime.jit", fromlist=["x"]).host_has_avx512(),
                    reason="dense_forward_tiles runs on AVX-512 CPUs only")
@pytest.mark.parametrize("D", [784, 100, 7, 16])
def test_dense_forward_tiles_give_each_element_the_same_bits_wherever_it_falls(D, rng):
    # An element of Y computed inside an 8x3 tile, as a leftover row or column, or in a
    # batch of one must come out identical: one vector of partial sums, one tree. This
    # fails if a tile sums in another order than the one-element path (e.g. a k split).
    from fastmlp.kernels.fast.dense import dense_forward_tiles
    from fastmlp.kernels.fast._share import make_counters
    C = make_counters(3)
    X = rng.standard_normal((70, D)).astype(np.float32)    # 8 full row groups + 6 rows
    W = rng.standard_normal((100, D)).astype(np.float32)   # 33 column tiles + 1 column
    b = rng.standard_normal(100).astype(np.float32)
    Y = np.full((70, 100), np.nan, np.float32)
    dense_forward_tiles(Y, X, W, b, 2, C)
    for i in (0, 7, 63, 64, 69):
        y = np.full((1, 100), np.nan, np.float32)
        dense_forward_tiles(y, X[i:i + 1], W, b, 1, C)       # a batch of one: leftovers only
        assert np.array_equal(y[0], Y[i]), i
    for j in (0, 2, 98, 99):
        y = np.full((70, 1), np.nan, np.float32)
        dense_forward_tiles(y, X, W[j:j + 1], b[j:j + 1], 3, C)  # one unit: leftover columns only
        assert np.array_equal(y[:, 0], Y[:, j]), j
    assert_close(Y, R.dense_forward(X, W, b), np.float32, **_scaled(TOL[np.float32], D))


def test_dense_forward_rejects_shapes_that_do_not_fit():
    X, W, b = np.ones((4, 5), np.float32), np.ones((3, 6), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match="do not fit"):
        K.dense_forward(np.empty((4, 3), np.float32), X, W, b)


@pytest.mark.parametrize("shape,dtype", [((0,), np.float32), ((1,), np.float64), ((7, 129), np.float32),
                                         ((256, 784), np.float32), ((3, 5, 2), np.float64)])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    a, z = K.aligned_empty(shape, dtype), K.aligned_zeros(shape, dtype)
    for x in (a, z):
        assert x.shape == shape and x.dtype == dtype and x.flags.c_contiguous and x.flags.writeable
        assert x.size == 0 or x.ctypes.data % 64 == 0  # an empty array has no data to place
    assert not z.any()


def test_network_buffers_and_prepared_data_are_aligned(mnist):
    # The kernels' 16-lane loads are only single-line loads on 64-byte boundaries.
    from fastmlp import Network, prepare
    from fastmlp.optim import Adam
    net = Network.serial([784, 100, 10], ["sigmoid"], 64)
    p = prepare(mnist, limit=100)
    arrays = [net.params, net.grads, net.W[0], net.dW[0], net.x, net.P, p.train_x, p.test_x,
              *net.out.values(), *net.grad.values(), Adam(net.params.size, np.float32).m]
    assert all(a.ctypes.data % 64 == 0 for a in arrays)


def test_network_forward_accepts_a_non_contiguous_batch():
    # The fast layer's kernels read C-contiguous rows through pointers (and refuse other
    # arrays); the network makes the batch so.
    from fastmlp import Network
    net = Network.serial([6, 5, 3], ["sigmoid"], 8)
    x = np.asfortranarray(np.arange(42, dtype=np.float32).reshape(7, 6) / 40)
    assert np.array_equal(net.forward(x).copy(), net.forward(np.ascontiguousarray(x)))
    with pytest.raises(ValueError, match="C-contiguous"):
        K.KERNELS["dense_forward_2x4"].run(np.empty((7, 5), np.float32), x, net.W[0], net.b[0])


@pytest.mark.parametrize("shape,parts", [((0, 5), 3), ((1, 1), 4), ((7, 129), 16), ((300, 784), 16)])
def test_byte_counts_and_lookup_bytes_match_their_references(shape, parts, rng):
    a = rng.integers(0, 256, shape, dtype=np.uint8)
    counts = np.full((parts, 256), -1, np.int64)
    K.byte_counts(counts, a)
    assert np.array_equal(counts, R.byte_counts(a, parts))
    assert counts.sum() == a.size
    for dtype in DTYPES:
        table = rng.standard_normal(256).astype(dtype)
        out = np.full(shape, np.nan, dtype)
        K.lookup_bytes(out, table, a)
        assert np.array_equal(out, R.lookup_bytes(table, a))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("R_,C,N", [(0, 5, 3), (1, 1, 1), (7, 17, 30), (256, 100, 784), (256, 10, 100), (3, 1200, 20)])
def test_matmul_tn_bias_sums_have_the_bits_of_column_sums(dtype, R_, C, N, rng):
    # dense_backward takes db from the dW product (one kernel call fewer a step): the
    # same additions as column_sums, for every chunk and task order, all-zero columns of
    # -0.0 included (their sum is -0.0).
    from fastmlp.kernels.fast.dense import column_sums
    A = rng.standard_normal((R_, C)).astype(dtype)
    A[:, 0] = -0.0
    X = rng.standard_normal((R_, N)).astype(dtype)
    want, got = np.full(C, np.nan, dtype), np.full(C, np.nan, dtype)
    column_sums(want, A)
    Y, Y2 = np.full((C, N), np.nan, dtype), np.full((C, N), np.nan, dtype)
    K.matmul_tn(Y, A, X, np.zeros(N, dtype), 16, got)
    K.matmul_tn(Y2, A, X, np.zeros(N, dtype), 16)
    assert np.array_equal(got, want) and np.signbit(got[0]) == np.signbit(want[0])
    assert np.array_equal(Y, Y2)
    with pytest.raises(ValueError, match="does not fit"):
        K.matmul_tn(Y, A, X, np.zeros(N, dtype), 16, np.empty(C + 1, dtype))
