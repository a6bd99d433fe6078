"""Graph validation: every rejection names the node; serial graphs; experiment files."""
import numpy as np
import pytest

from fastmlp import graph as G
from fastmlp import config as C
from fastmlp.graph import Node
from fastmlp.network import Network
from fastmlp.train import TrainConfig


def _head(inp="logits"):
    return Node("head", "head", (inp,))


@pytest.mark.parametrize("nodes,message", [
    ((Node("a", "dense", ("b",), units=4), Node("b", "dense", ("a",), units=4),
      Node("logits", "dense", ("b",), units=3), _head()), "node 'a' is part of a cycle"),
    ((Node("logits", "dense", ("nowhere",), units=3), _head()), "node 'logits': input 'nowhere' is not defined"),
    ((Node("a", "dense", ("input",), units=4), Node("b", "dense", ("input",), units=5),
      Node("sum", "add", ("a", "b")), Node("logits", "dense", ("sum",), units=3), _head()),
     "node 'sum' (add): input widths differ (a=4, b=5)"),
    ((Node("a", "pool", ("input",)), Node("logits", "dense", ("a",), units=3), _head()), "node 'a': unknown type 'pool'"),
    ((Node("logits", "dense", ("input",), units=4), _head()), "node 'head' (head): input 'logits' has width 4"),
    ((Node("logits", "dense", ("input",), units=3), Node("x", "dense", ("input",), units=3), _head()),
     "node 'x': its output is not used"),
    ((Node("logits", "dense", ("input",), units=3), Node("logits", "dense", ("input",), units=3), _head()),
     "node 'logits': defined twice"),
    ((Node("a", "activation", ("input",), function="swish"), Node("logits", "dense", ("a",), units=3), _head()),
     "node 'a' (activation): unknown function 'swish'"),
    ((Node("a", "dropout", ("input",), rate=1.0), Node("logits", "dense", ("a",), units=3), _head()),
     "node 'a' (dropout): 'rate' must be in [0, 1)"),
    ((Node("a", "add", ("input",)), Node("logits", "dense", ("a",), units=3), _head()),
     "node 'a' (add): needs at least two inputs"),
    ((Node("logits", "dense", ("input",), units=3),), "exactly one head"),
])
def test_bad_graphs_are_rejected_naming_the_node(nodes, message):
    with pytest.raises(G.GraphError) as e:
        G.check(nodes, 6, 3)
    assert message in str(e.value)


def test_serial_graph_shape_and_order():
    nodes = G.serial((8, 4), ("relu", "shifted_relu"), input_dropout=0.2, dropout=0.5, classes=3)
    order, width = G.check(nodes, 6, 3)
    assert [n.type for n in order] == ["dropout", "dense", "activation", "dropout", "dense", "activation",
                                       "dropout", "dense", "head"]
    assert width["dense1"] == 8 and width["dense2"] == 4 and width["logits"] == 3


def test_concat_width_and_buffers_allocated_once():
    nodes = (Node("a", "dense", ("input",), units=4), Node("b", "dense", ("input",), units=5),
             Node("both", "concat", ("a", "b")), Node("logits", "dense", ("both",), units=3), _head())
    net = Network(nodes, 6, 3, max_batch=10, dtype=np.float64)
    assert net.width["both"] == 9 and net.W[2].shape == (3, 9)
    buffers = {k: id(v) for k, v in net.out.items()}
    x = np.ones((7, 6))
    net.forward(x, training=True)
    net.loss_and_backward(np.eye(3)[[0, 1, 2, 0, 1, 2, 0]])
    assert {k: id(v) for k, v in net.out.items()} == buffers
    # Concat really places a's output then b's output.
    np.testing.assert_array_equal(net.values["both"][:, :4], net.values["a"])
    np.testing.assert_array_equal(net.values["both"][:, 4:], net.values["b"])


def test_experiment_file(tmp_path):
    f = tmp_path / "exp.toml"
    f.write_text('''
preset = "book"
epochs = 3
optimizer = "adam"
lr = 0.001

[[node]]
name = "h"
type = "dense"
inputs = ["input"]
units = 32

[[node]]
name = "act"
type = "activation"
inputs = ["h"]
function = "shifted_relu"

[[node]]
name = "logits"
type = "dense"
inputs = ["act"]
units = 10

[[node]]
name = "head"
type = "head"
inputs = ["logits"]
''')
    values = C.read(f)
    assert values["epochs"] == 3 and values["batch_size"] == 256 and values["optimizer"] == "adam"
    config = TrainConfig(**values)
    config.validate()
    assert [n.name for n in config.nodes(10)] == ["h", "act", "logits", "head"]


@pytest.mark.parametrize("text,message", [
    ("epochs = 3\nlearning_rate = 0.1\n", "unknown key 'learning_rate'"),
    ("epochs = 'three'\n", "'epochs' must be int"),
    ("epochs = [\n", "not valid TOML"),
    ("preset = 'nope'\n", "unknown preset 'nope'"),
    ("[[node]]\nname = 'h'\ntype = 'dense'\ninputs = ['input']\nunits = 3\nsize = 4\n", "node 'h' (dense): unknown key 'size'"),
    ("[[node]]\nname = 'h'\ntype = 'conv'\ninputs = ['input']\n", "node 'h': unknown type 'conv'"),
])
def test_bad_experiment_files(tmp_path, text, message):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(C.ConfigError) as e:
        C.read(f)
    assert message in str(e.value) and str(f) in str(e.value)


def test_registered_activation_used_in_training_and_gradient():
    from numba import njit

    @njit
    def square_forward(A, Z):
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                A[i, j] = Z[i, j] * Z[i, j]

    @njit
    def square_backward(dZ, dA, Z, A):
        for i in range(Z.shape[0]):
            for j in range(Z.shape[1]):
                dZ[i, j] = dA[i, j] * 2.0 * Z[i, j]

    if "square" not in G.CUSTOM_ACTIVATIONS:
        G.register_activation("square", square_forward, square_backward)
    with pytest.raises(ValueError, match="built-in"):
        G.register_activation("relu", square_forward, square_backward)
    net = Network.serial([5, 4, 3], ["square"], max_batch=6, dtype=np.float64, init="glorot", seed=2)
    rng = np.random.default_rng(1)
    x, t = rng.standard_normal((6, 5)), np.eye(3)[[0, 1, 2, 0, 1, 2]]
    net.forward(x, training=True)
    net.loss_and_backward(t)
    np.testing.assert_allclose(net.values["square1"], net.values["dense1"] ** 2)
    g = net.grads.copy()
    i, eps = 3, 1e-6
    net.params[i] += eps
    net.forward(x, training=True); up = net.loss_and_backward(t)
    net.params[i] -= 2 * eps
    net.forward(x, training=True); down = net.loss_and_backward(t)
    assert abs((up - down) / (2 * eps) - g[i]) < 1e-7
