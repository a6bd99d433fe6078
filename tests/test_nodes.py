"""The node types and the kernels behind the new ones (layer normalisation, the mean
squared error on the softmax output), against their NumPy twins in both dtypes."""
import numpy as np
import pytest

from fastmlp import Network
from fastmlp import kernels as K
from fastmlp import nodes as N
from fastmlp.graph import GraphError, Node, check
from fastmlp.kernels import reference as R
from conftest import TOL, assert_close

DTYPES = [np.float32, np.float64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,H", [(1, 2), (7, 129), (64, 256)])
def test_layernorm_against_its_twin(dtype, B, H, rng):
    X = (rng.standard_normal((B, H)) * 3 + 1).astype(dtype)
    gain, bias = rng.standard_normal(H).astype(dtype), rng.standard_normal(H).astype(dtype)
    Y, Xhat, R_ = np.full((B, H), np.nan, dtype), np.full((B, H), np.nan, dtype), np.full(B, np.nan, dtype)
    K.layernorm_forward(Y, Xhat, R_, X, gain, bias, 1e-5)
    want = R.layernorm_forward(X, gain, bias, 1e-5)
    tol = dict(rtol=TOL[dtype]["rtol"], atol=TOL[dtype]["atol"] * np.sqrt(H))  # row sums of H terms
    for got, expect in zip((Y, Xhat, R_), want):
        assert_close(got, expect, dtype, **tol)
    dY = rng.standard_normal((B, H)).astype(dtype)
    for grad in (True, False):
        dX, dg, db = np.full((B, H), np.nan, dtype), np.full(H, np.nan, dtype), np.full(H, np.nan, dtype)
        K.layernorm_backward(dX, dg, db, dY, Xhat, R_, gain, grad)
        wdX, wdg, wdb = R.layernorm_backward(dY, Xhat, R_, gain)
        assert_close(dg, wdg, dtype, rtol=tol["rtol"], atol=tol["atol"] * np.sqrt(B))
        assert_close(db, wdb, dtype, rtol=tol["rtol"], atol=tol["atol"] * np.sqrt(B))
        if grad:
            assert_close(dX, wdX, dtype, **tol)
        else:
            assert np.isnan(dX).all()  # not written


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("B,K_", [(1, 2), (33, 10), (5, 17)])
def test_mse_softmax_against_its_twin(dtype, B, K_, rng):
    Z = (rng.standard_normal((B, K_)) * 4).astype(dtype)
    T = np.eye(K_, dtype=dtype)[rng.integers(0, K_, B)]
    P, L = np.full((B, K_), np.nan, dtype), np.full(B, np.nan, dtype)
    mean = K.mse_softmax_forward(P, L, Z, T)
    wP, wL, wmean = R.mse_softmax_forward(Z, T)
    assert_close(P, wP, dtype, **TOL[dtype])
    assert_close(L, wL, dtype, **TOL[dtype])
    assert abs(mean - wmean) <= 10 * TOL[dtype]["rtol"] * max(1.0, abs(wmean))
    dZ = np.full((B, K_), np.nan, dtype)
    K.mse_softmax_backward(dZ, P, T)
    assert_close(dZ, R.mse_softmax_backward(P, T), dtype, **TOL[dtype])


def test_every_node_type_has_its_class_and_fields():
    assert set(N.TYPES) == {"dense", "activation", "dropout", "add", "multiply", "concat", "layernorm", "head"}
    for name, kind in N.TYPES.items():
        assert callable(kind.forward) and callable(kind.backward), name


@pytest.mark.parametrize("nodes,message", [
    ((Node("m", "multiply", ("input",)), Node("head", "head", ("m",))), "takes exactly 2 inputs"),
    ((Node("d", "dense", ("input",), units=2), Node("m", "multiply", ("input", "d")), Node("head", "head", ("m",))),
     "input widths differ"),
    ((Node("head", "head", ("input",), loss="hinge"),), "unknown loss 'hinge'"),
    ((Node("x", "conv", ("input",)), Node("head", "head", ("x",))), "unknown type 'conv'"),
])
def test_bad_graphs_are_refused_at_construction(nodes, message):
    with pytest.raises(GraphError, match=message):
        check(nodes, 3, 3)


def test_parameters_come_from_the_node_shapes():
    nodes = (Node("d", "dense", ("input",), units=5), Node("n", "layernorm", ("d",)),
             Node("logits", "dense", ("n",), units=3), Node("head", "head", ("logits",)))
    net = Network(nodes, 4, 3, max_batch=2)
    assert net.params.size == (5 * 4 + 5) + (5 + 5) + (3 * 5 + 3)
    assert (net.p["n"]["gain"] == 1).all() and (net.p["n"]["bias"] == 0).all()
    # Views into the flat vectors, in topological order.
    assert np.shares_memory(net.p["n"]["gain"], net.params) and np.shares_memory(net.g["n"]["bias"], net.grads)
    assert net.p["d"]["W"].base is net.params or np.shares_memory(net.p["d"]["W"], net.params)


def test_the_fused_head_applies_to_cross_entropy_only():
    from fastmlp.graph import serial
    ce = Network(serial((8,), ("sigmoid",), classes=3), 4, 3, max_batch=2)
    mse = Network(serial((8,), ("sigmoid",), classes=3, loss="mse"), 4, 3, max_batch=2)
    assert mse.fused is None
    assert (ce.fused is not None) == (ce.k.head is not None)


def test_the_gated_layernorm_example_trains(mnist_dir):
    import json
    from click.testing import CliRunner
    from conftest import ROOT
    from fastmlp.cli.main import main
    r = CliRunner().invoke(main, ["train", "--config", str(ROOT / "examples" / "gated-layernorm.toml"), "--epochs", "1",
                                  "--limit", "5000", "--json", "--data-dir", mnist_dir])
    assert r.exit_code == 0, r.output
    final = json.loads(r.stdout.splitlines()[-1])
    assert final["full_acc"] > 85.0, final
    assert {n["type"] for n in final["config"]["graph"]} >= {"layernorm", "multiply"}


def test_mse_loss_trains_the_book_network(mnist):
    from fastmlp import TrainConfig, train
    _, records = train(TrainConfig(hidden=(100,), loss="mse", epochs=2, limit=10000, batch_size=64, lr=1.0), mnist)
    assert records[-1]["full_acc"] > 85.0 and records[-1]["loss"] < records[0]["loss"]
