"""The README's recipes, carried out word for word in a copy of the package: each step is
read from README.md ("Append to `FILE`:", "In `FILE`, after the line `X`, insert:",
"In `FILE`, replace `X` with `Y`."), applied, and the result trained and checked."""
import json
import re


from conftest import ROOT
from conftest import final_json as _final

STEP = re.compile(r"^\d+\. (?:(Append) (?:its [\w ]+ )?to `([^`]+)`:|In `([^`]+)`, (?:after the line `(.+)`, "
                  r"(insert):|(replace) `(.+)` with `(.+)`\.))$")


def recipe(title):
    """The steps of the README section `### title`: (file, action, anchor, text)."""
    text = (ROOT / "README.md").read_text()
    start = text.index(f"### {title}\n")
    end = text.find("\n### ", start + 1)
    lines = text[start:end if end > 0 else None].splitlines()
    steps, i = [], 0
    while i < len(lines):
        m = STEP.match(lines[i].strip())
        i += 1
        if not m:
            continue
        if m.group(6):  # replace X with Y
            steps.append((m.group(3), "replace", m.group(7), m.group(8)))
            continue
        while not lines[i].startswith("```"):
            i += 1
        j = i + 1
        while not lines[j].startswith("```"):
            j += 1
        code = "\n".join(lines[i + 1:j]) + "\n"
        steps.append((m.group(2) or m.group(3), "append" if m.group(1) else "insert", m.group(4), code))
        i = j + 1
    assert steps, f"no steps found under ### {title}"
    return steps


def perform(copy, steps):
    for rel, action, anchor, text in steps:
        path = copy.path(rel)
        source = path.read_text()
        if action == "append":
            source = source.rstrip("\n") + "\n\n\n" + text
        elif action == "replace":
            assert source.count(anchor) == 1, (rel, anchor)
            source = source.replace(anchor, text)
        else:
            lines = source.splitlines(keepends=True)
            at = [k for k, line in enumerate(lines) if line.rstrip("\n") == anchor]
            assert len(at) == 1, (rel, anchor)
            lines.insert(at[0] + 1, text)
            source = "".join(lines)
        path.write_text(source)


TWIN = """
import numpy as np
from fastmlp import kernels as K
from fastmlp.kernels import reference as R
rng = np.random.default_rng(0)
for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
    p, g = rng.standard_normal(1001).astype(dtype), rng.standard_normal(1001).astype(dtype)
    s = np.abs(rng.standard_normal(1001)).astype(dtype)
    want_p, want_s = R.rmsprop_step(p, s, g, 0.01, 0.9, 1e-8)
    K.rmsprop_step(p, s, g, 0.01, 0.9, 1e-8)
    assert np.allclose(p, want_p, rtol=tol, atol=tol) and np.allclose(s, want_s, rtol=tol, atol=tol)
print("twin ok")
"""


def test_adding_an_optimizer(copy, mnist_dir, tmp_path):
    perform(copy, recipe("Adding an optimizer (RMSprop)"))
    assert copy.run(["-c", TWIN]).stdout.strip() == "twin ok"
    ckpt = tmp_path / "rms.npz"
    args = ["train", "--optimizer", "rmsprop", "--lr", "0.001", "--hidden", "64", "--activation", "relu",
            "--init", "he", "--limit", "6000", "--json", "--data-dir", mnist_dir]
    final = _final(copy.cli([*args, "--epochs", "2", "--save", str(ckpt)]))
    assert final["config"]["optimizer"] == "rmsprop" and final["full_acc"] > 88.0, final
    resumed = _final(copy.cli(["train", "--resume", str(ckpt), "--epochs", "3", "--json", "--data-dir", mnist_dir]))
    assert resumed["full_acc"] > 88.0
    # Its twin is found by name, as for every plain kernel.
    r = copy.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(copy.project),
                  str(copy.project / "tests" / "test_kernels.py") + "::test_every_kernel_has_a_reference"])
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]


def test_adding_an_activation(copy, mnist_dir):
    perform(copy, recipe("Adding an activation (swish)"))
    # The new activation switches off no fast path.
    table = copy.cli(["kernels"])
    assert table.returncode == 0 and "differs" not in table.stderr, table.stderr
    assert "activation_forward_stretches" in table.stdout and "head_step" in table.stdout
    final = _final(copy.cli(["train", "--activation", "swish", "--hidden", "64", "--init", "he", "--lr", "0.2",
                             "--epochs", "2", "--limit", "6000", "--json", "--data-dir", mnist_dir]))
    assert final["full_acc"] > 88.0, final
    # The kernel tests against the twins and the gradient check take it up by name.
    r = copy.run(["-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(copy.project), "-k", "swish",
                  str(copy.project / "tests" / "test_kernels.py"), str(copy.project / "tests" / "test_gradcheck.py")])
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert int(re.search(r"(\d+) passed", r.stdout).group(1)) >= 3, r.stdout


LOSS_TWIN = """
import numpy as np
from fastmlp import kernels as K
from fastmlp.kernels import reference as R
rng = np.random.default_rng(1)
for dtype, tol in ((np.float32, 1e-5), (np.float64, 1e-12)):
    Z = (rng.standard_normal((33, 10)) * 3).astype(dtype)
    T = np.eye(10, dtype=dtype)[rng.integers(0, 10, 33)]
    P, L = np.empty_like(Z), np.empty(33, dtype)
    mean = K.l1_softmax_forward(P, L, Z, T)
    wP, wL, wmean = R.l1_softmax_forward(Z, T)
    assert np.allclose(L, wL, rtol=tol, atol=tol) and abs(mean - wmean) <= 10 * tol
    dZ = np.empty_like(Z)
    K.l1_softmax_backward(dZ, P, T)
    assert np.allclose(dZ, R.l1_softmax_backward(P, T), rtol=tol, atol=tol)
print("twin ok")
"""


def test_adding_a_loss(copy, mnist_dir):
    perform(copy, recipe("Adding a loss (L1 on the softmax output)"))
    assert copy.run(["-c", LOSS_TWIN]).stdout.strip() == "twin ok"
    final = _final(copy.cli(["train", "--loss", "l1", "--hidden", "64", "--activation", "relu", "--init", "he",
                             "--optimizer", "adam", "--lr", "0.003", "--epochs", "2", "--limit", "6000", "--json",
                             "--data-dir", mnist_dir]))
    assert final["config"]["loss"] == "l1" and final["full_acc"] > 80.0, final


MAXOUT = """
import json, sys
import numpy as np
from fastmlp import Network, TrainConfig, load, train
from fastmlp.graph import Node
nodes = (Node("a", "dense", ("input",), units=32), Node("b", "dense", ("input",), units=32),
         Node("m", "maximum", ("a", "b")), Node("logits", "dense", ("m",), units=10), Node("head", "head", ("logits",)))
# The gradient against central differences, in float64, on a small copy of the graph.
small = (Node("a", "dense", ("input",), units=4), Node("b", "dense", ("input",), units=4),
         Node("m", "maximum", ("a", "b")), Node("logits", "dense", ("m",), units=3), Node("head", "head", ("logits",)))
net = Network(small, 5, 3, max_batch=6, dtype=np.float64, init="glorot", seed=1)
rng = np.random.default_rng(0)
x, t = rng.standard_normal((6, 5)), np.eye(3)[rng.integers(0, 3, 6)]
def loss():
    net.forward(x, training=True)
    return net.loss_and_backward(t)
loss()
analytic, numeric = net.grads.copy(), np.empty(net.params.size)
for i in range(net.params.size):
    keep = net.params[i]
    net.params[i] = keep + 1e-6; up = loss()
    net.params[i] = keep - 1e-6; down = loss()
    net.params[i] = keep
    numeric[i] = (up - down) / 2e-6
_, records = train(TrainConfig(graph=nodes, init="he", optimizer="adam", lr=0.002, epochs=2, limit=6000),
                   load(sys.argv[1]))
print(json.dumps(dict(gap=float(np.max(np.abs(analytic - numeric))), full=records[-1]["full_acc"])))
"""


def test_adding_a_node_type(copy, mnist_dir):
    perform(copy, recipe("Adding a node type (maximum)"))
    r = copy.run(["-c", MAXOUT, mnist_dir])
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["gap"] < 1e-7 and out["full"] > 88.0, out
