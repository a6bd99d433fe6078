"""Central finite differences of whole networks in float64 against their backward pass."""
import numpy as np
import pytest

from fastmlp import Network
from fastmlp import kernels as K
from fastmlp.graph import Node


def _check(net, x, t, rng):
    def loss():
        net.forward(x, training=True, step=5)
        return net.loss_and_backward(t)

    loss()
    analytic = net.grads.copy()
    eps = 1e-6
    numeric = np.empty_like(analytic)
    for i in range(net.params.size):
        keep = net.params[i]
        net.params[i] = keep + eps
        up = loss()
        net.params[i] = keep - eps
        down = loss()
        net.params[i] = keep
        numeric[i] = (up - down) / (2 * eps)
    # Kinks (ReLU at 0, shifted ReLU at -1) would break the check: make sure no
    # pre-activation of a kinked function sits close to one.
    for n in net.order:
        if n.type == "activation" and n.function in ("relu", "shifted_relu"):
            z = net.values[n.inputs[0]]
            assert np.abs(z).min() > 1e-4 and np.abs(z + 1).min() > 1e-4
    # Central differences: O(eps^2) truncation + O(1e-16 / eps) rounding ~ 1e-10.
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("activations", [[name] for name in sorted(K.ACTIVATIONS)] + [["shifted_relu", "relu"]],
                         ids=lambda a: "-".join(a))
def test_serial_network_gradient(activations, rng):
    sizes = [6] + [5] * len(activations) + [4]
    net = Network.serial(sizes, activations, max_batch=7, dtype=np.float64, init="glorot", seed=3)
    net.b[0][:] = rng.standard_normal(5) * 0.1
    x = rng.standard_normal((7, 6))
    t = np.eye(4)[rng.integers(0, 4, 7)]
    _check(net, x, t, rng)


def test_graph_with_skip_connection_parallel_branch_and_dropout(rng):
    # input -> d1 -> tanh1 -+-> d2 -> sig2 --+ add -> concat(add, branch) -> logits -> head
    #                       +----------------+            ^
    # input -> dropout -> branch (dense) -> relu ----------+
    nodes = (
        Node("d1", "dense", ("input",), units=5),
        Node("tanh1", "activation", ("d1",), function="tanh"),
        Node("d2", "dense", ("tanh1",), units=5),
        Node("sig2", "activation", ("d2",), function="sigmoid"),
        Node("skip", "add", ("sig2", "tanh1")),
        Node("drop", "dropout", ("input",), rate=0.3),
        Node("branch", "dense", ("drop",), units=3),
        Node("act_b", "activation", ("branch",), function="shifted_relu"),
        Node("both", "concat", ("skip", "act_b")),
        Node("logits", "dense", ("both",), units=4),
        Node("head", "head", ("logits",)),
    )
    net = Network(nodes, 6, 4, max_batch=9, dtype=np.float64, init="glorot", seed=1)
    for b in net.b:
        b[:] = rng.standard_normal(b.shape) * 0.1
    x = rng.standard_normal((9, 6))
    t = np.eye(4)[rng.integers(0, 4, 9)]
    _check(net, x, t, rng)
    # The dropout node really dropped something in training mode, and nothing at evaluation.
    assert (net.mask["drop"][:9] == 0).any()


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_graph_with_layernorm_gating_and_either_loss(loss, rng):
    # input -> d1 -> tanh -> layernorm -+-> multiply -> logits -> head(loss)
    # input -> d2 -> sigmoid -----------+
    nodes = (
        Node("d1", "dense", ("input",), units=5),
        Node("tanh1", "activation", ("d1",), function="tanh"),
        Node("norm", "layernorm", ("tanh1",)),
        Node("d2", "dense", ("input",), units=5),
        Node("gate", "activation", ("d2",), function="sigmoid"),
        Node("gated", "multiply", ("norm", "gate")),
        Node("logits", "dense", ("gated",), units=4),
        Node("head", "head", ("logits",), loss=None if loss == "cross_entropy" else loss),
    )
    net = Network(nodes, 6, 4, max_batch=9, dtype=np.float64, init="glorot", seed=2)
    for b in net.b:
        b[:] = rng.standard_normal(b.shape) * 0.1
    net.p["norm"]["gain"][:] = 1 + rng.standard_normal(5) * 0.2  # away from the initial 1 and 0
    net.p["norm"]["bias"][:] = rng.standard_normal(5) * 0.2
    x = rng.standard_normal((9, 6))
    t = np.eye(4)[rng.integers(0, 4, 9)]
    _check(net, x, t, rng)
