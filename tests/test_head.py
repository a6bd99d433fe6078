"""The fused classifier head (kernels/head.py, Network.train_step): its NumPy twin, and
the same bits as the six kernels it replaces, in a kernel call and in whole networks."""
import numpy as np
import pytest

from fastmlp import kernels as K
from fastmlp.graph import Node
from fastmlp.kernels import reference as R
from fastmlp.network import Network
from conftest import TOL, assert_close

FUSED_HEAD = K.dispatch.table("float32")["head"].run is not None
fused = pytest.mark.skipif(not FUSED_HEAD, reason="the fused head runs where the 16-lane forward tiles do (AVX-512)")
F32 = np.float32
# B not a multiple of 24 (a share) or 8, 6 (tiles); D under, at and past 16 and 64; K classes
# 10, 3 (one partial tile), 16, 17 (a second vector of the bias gradient).
SHAPES = [(256, 100, 10), (1, 7, 3), (37, 784, 10), (50, 64, 16), (24, 130, 17), (5, 16, 2)]


def _inputs(rng, B, D, K_):
    X = rng.standard_normal((B, D)).astype(F32)
    W = (rng.standard_normal((K_, D)) * 0.3).astype(F32)
    b = rng.standard_normal(K_).astype(F32)
    T = np.eye(K_, dtype=F32)[rng.integers(0, K_, B)]
    return X, W, b, T


def _call(X, W, b, T, input_grad=True, S=None, kind=-1):
    B, D = X.shape
    K_ = W.shape[0]
    out = dict(Z=np.full((B, K_), np.nan, F32), P=np.full((B, K_), np.nan, F32), L=np.full(B, np.nan, F32),
               dZ=np.full((B, K_), np.nan, F32), dX=np.full((B, D), np.nan, F32),
               dW=np.full((K_, D), np.nan, F32), db=np.full(K_, np.nan, F32))
    loss = K.head_step(out["Z"], out["P"], out["L"], out["dZ"], out["dX"], out["dW"], out["db"],
                       X, W, b, T, X if S is None else S, kind, np.zeros(D, F32), K.PARTS, input_grad)
    return loss, out


@fused
@pytest.mark.parametrize("B,D,K_", SHAPES)
def test_head_step_against_its_twin(B, D, K_, rng):
    X, W, b, T = _inputs(rng, B, D, K_)
    loss, out = _call(X, W, b, T)
    Z, P, L, mean, dZ, dX, dW, db = R.head_step(X, W, b, T)
    tol = dict(rtol=TOL[F32]["rtol"], atol=TOL[F32]["atol"] * 10 * max(1.0, np.sqrt(max(D, B))))
    for name, want in [("Z", Z), ("P", P), ("L", L), ("dZ", dZ), ("dX", dX), ("dW", dW), ("db", db)]:
        assert_close(out[name], want, F32, **tol)
    assert abs(loss - mean) <= 1e-5 * max(1.0, abs(mean))


@fused
@pytest.mark.parametrize("B,D,K_", SHAPES)
def test_head_step_gives_the_bits_of_the_six_kernels(B, D, K_, rng):
    # One call must change nothing in the arithmetic: every element summed in the order
    # the fast layer's dense_forward, softmax kernels, column sums and two products use
    # (the plain layer's products sum in another order: kernels/fast/validate.py holds
    # the head to those within tolerances).
    fast = K.dispatch.Kernels(F32)
    X, W, b, T = _inputs(rng, B, D, K_)
    loss, out = _call(X, W, b, T)
    Z, P, L, dZ = (np.full(a.shape, np.nan, F32) for a in (out["Z"], out["P"], out["L"], out["dZ"]))
    dX, dW, db = np.full((B, D), np.nan, F32), np.full((K_, D), np.nan, F32), np.full(K_, np.nan, F32)
    fast.dense_forward(Z, X, W, b)
    mean = fast.softmax_cross_entropy_forward(P, L, Z, T)
    fast.softmax_cross_entropy_backward(dZ, P, T)
    fast.dense_backward(dX, dW, db, dZ, X, W, np.zeros(D, F32), True)
    for name, want in [("Z", Z), ("P", P), ("L", L), ("dZ", dZ), ("dX", dX), ("dW", dW), ("db", db)]:
        np.testing.assert_array_equal(out[name], want, err_msg=name)
    assert loss == mean


@fused
@pytest.mark.parametrize("activation", sorted(K.ACTIVATIONS))
def test_head_step_through_an_activation_gives_the_bits_of_its_backward_kernel(activation, rng):
    kind = K.ACTIVATIONS[activation]
    S = rng.standard_normal((45, 70)).astype(F32) * 2
    X = np.empty_like(S)
    K.activation_forward(X, S, kind)
    _, W, b, T = _inputs(rng, 45, 70, 10)
    _, plain = _call(X, W, b, T)
    _, through = _call(X, W, b, T, S=S, kind=kind)
    want = np.empty_like(S)
    K.activation_backward(want, plain["dX"], S, X, kind)
    np.testing.assert_array_equal(through["dX"], want)
    np.testing.assert_array_equal(through["dW"], plain["dW"])
    assert_close(through["dX"], R.activation_backward(plain["dX"], S, X, activation), F32, **TOL[F32])


@fused
def test_head_step_without_input_gradient_leaves_dx_alone(rng):
    X, W, b, T = _inputs(rng, 30, 40, 10)
    _, out = _call(X, W, b, T, input_grad=False)
    assert np.isnan(out["dX"]).all() and not np.isnan(out["dW"]).any()


def _serial(dtype, last="shifted_relu", **kw):
    return Network.serial([20, 12, 9, 10], ["sigmoid", last], 33, dtype, "he", 3, **kw)


def _graphs():
    skip = (Node("d1", "dense", ("input",), units=8), Node("a1", "activation", ("d1",), function="tanh"),
            Node("d2", "dense", ("a1",), units=8), Node("sum", "add", ("d2", "a1")),
            Node("logits", "dense", ("sum",), units=10), Node("head", "head", ("logits",)))
    concat = (Node("d1", "dense", ("input",), units=8), Node("a1", "activation", ("d1",), function="tanh"),
             Node("d2", "dense", ("a1",), units=8), Node("both", "concat", ("d2", "a1")),
             Node("a2", "activation", ("both",), function="sigmoid"),
             Node("logits", "dense", ("a2",), units=10), Node("head", "head", ("logits",)))
    split = (Node("a", "dense", ("input",), units=10), Node("b", "dense", ("input",), units=10),
             Node("logits", "add", ("a", "b")), Node("head", "head", ("logits",)))
    # name: (network, head fused, its activation's backward fused too)
    return {
        "serial, shifted ReLU before the head": (lambda: _serial(F32), True, True),
        "serial, sigmoid before the head": (lambda: _serial(F32, "sigmoid"), True, True),
        "serial with dropout": (lambda: _serial(F32, input_dropout=0.2, dropout=0.3), True, False),
        "no hidden layer": (lambda: Network.serial([20, 10], [], 33, F32, "he", 3), True, False),
        "skip connection into the logits layer": (lambda: Network(skip, 20, 10, 33, F32, "glorot", 3), True, False),
        "activation of a concat before the head": (lambda: Network(concat, 20, 10, 33, F32, "glorot", 3), True, True),
        "logits from an add node": (lambda: Network(split, 20, 10, 33, F32, "glorot", 3), False, False),
        "float64": (lambda: _serial(np.float64), False, False),
    }


@pytest.mark.parametrize("name", list(_graphs()))
def test_train_step_matches_forward_then_loss_and_backward(name, rng):
    make, fusable, through = _graphs()[name]
    a, b = make(), make()
    assert (b.fused is not None) == (fusable and FUSED_HEAD)
    assert (b.fused_act is not None) == (through and FUSED_HEAD)
    x = rng.standard_normal((33, 20)).astype(a.dtype)
    t = np.eye(10, dtype=a.dtype)[rng.integers(0, 10, 33)]
    for step, B in enumerate((33, 33, 17)):  # a short last batch too
        a.forward(x[:B], training=True, step=step)
        want = a.loss_and_backward(t[:B])
        got = b.train_step(x[:B], t[:B], step)
        assert got == want
        np.testing.assert_array_equal(b.grads, a.grads)
        for net in (a, b):
            K.sgd_step(net.params, net.grads, 0.1)
        np.testing.assert_array_equal(b.params, a.params)
    # Evaluation afterwards sees the same logits.
    np.testing.assert_array_equal(b.forward(x), a.forward(x))
