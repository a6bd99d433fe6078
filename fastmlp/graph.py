"""Network graphs: node specs, validation and topological order.

A network is a directed acyclic graph of named nodes fed by the implicit node "input":

    dense       units = N                 X[B, D] -> X Wᵀ + b, [B, N]
    activation  function = NAME           elementwise, width unchanged
    dropout     rate = P                  inverted dropout while training, identity at evaluation
    add         (two or more inputs)      elementwise sum; all input widths must match
    multiply    (two inputs)              elementwise product (gating); widths must match
    concat      (two or more inputs)      inputs side by side; width = sum of widths
    layernorm   (one input)               per-row normalisation, learnable gain and bias
    head        (one input) [loss = L]    the loss: cross_entropy (default) or mse; input width = classes

Exactly one head. Everything is checked before training, with messages naming the node.
The types themselves (width rules, parameters, forward and backward) are fastmlp.nodes.
"""
import dataclasses

from fastmlp import nodes as N
from fastmlp.kernels import ACTIVATIONS

INPUT = "input"
TYPES = tuple(N.TYPES)
_FIELDS = {name: set(kind.fields) for name, kind in N.TYPES.items()}


# Activations defined outside kernels/activations.py, e.g. in a notebook: name ->
# (forward(A, Z), backward(dZ, dA, Z, A)), kernels with the built-in ones' signatures
# minus `kind`. Add one with register_activation; the built-in table stays the fast path.
CUSTOM_ACTIVATIONS = {}


def register_activation(name, forward, backward):
    """Make `name` usable wherever an activation name is (TrainConfig, graphs)."""
    if name in ACTIVATIONS:
        raise ValueError(f"{name!r} is a built-in activation")
    CUSTOM_ACTIVATIONS[name] = (forward, backward)


def known_activations():
    return [*ACTIVATIONS, *CUSTOM_ACTIVATIONS]


class GraphError(ValueError):
    """A graph that cannot be built; the message names the node."""


@dataclasses.dataclass(frozen=True)
class Node:
    name: str
    type: str
    inputs: tuple
    units: int | None = None       # dense
    function: str | None = None    # activation
    rate: float | None = None      # dropout
    loss: str | None = None        # head: cross_entropy (None) or mse


def node_from_dict(d, index):
    """A Node from a TOML/JSON table: name, type, inputs and the type's own field."""
    if not isinstance(d, dict):
        raise GraphError(f"node #{index + 1}: expected a table, got {type(d).__name__}")
    name = d.get("name")
    if not isinstance(name, str) or not name:
        raise GraphError(f"node #{index + 1}: missing 'name'")
    kind = d.get("type")
    if kind not in TYPES:
        raise GraphError(f"node '{name}': unknown type {kind!r} (known: {', '.join(TYPES)})")
    allowed = {"name", "type", "inputs"} | _FIELDS[kind]
    unknown = sorted(set(d) - allowed)
    if unknown:
        raise GraphError(f"node '{name}' ({kind}): unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")
    inputs = d.get("inputs")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs) or not inputs:
        raise GraphError(f"node '{name}': 'inputs' must be a non-empty list of node names")
    return Node(name, kind, tuple(inputs), units=d.get("units"), function=d.get("function"), rate=d.get("rate"),
                loss=d.get("loss"))


def node_to_dict(node):
    d = {"name": node.name, "type": node.type, "inputs": list(node.inputs)}
    for f in sorted(_FIELDS[node.type]):
        if getattr(node, f) is not None:
            d[f] = getattr(node, f)
    return d


def serial(hidden, activations, input_dropout=0.0, dropout=0.0, classes=10, loss=None):
    """The common case: input [-> dropout] -> (dense -> activation [-> dropout]) * L -> dense -> head."""
    nodes, prev = [], INPUT
    if input_dropout > 0:
        nodes.append(Node("input_dropout", "dropout", (prev,), rate=input_dropout))
        prev = "input_dropout"
    for i, (units, act) in enumerate(zip(hidden, activations), start=1):
        nodes.append(Node(f"dense{i}", "dense", (prev,), units=units))
        nodes.append(Node(f"{act}{i}", "activation", (f"dense{i}",), function=act))
        prev = f"{act}{i}"
        if dropout > 0:
            nodes.append(Node(f"dropout{i}", "dropout", (prev,), rate=dropout))
            prev = f"dropout{i}"
    nodes.append(Node("logits", "dense", (prev,), units=classes))
    nodes.append(Node("head", "head", ("logits",), loss=loss))
    return tuple(nodes)


def check(nodes, input_width, classes):
    """Validate the graph; return (nodes in topological order, {name: width}).

    Rejects duplicate names, unknown types, bad fields, inputs that name no node,
    cycles, nodes the head does not use, width mismatches at add and head.
    """
    by_name = {}
    for n in nodes:
        if n.name == INPUT:
            raise GraphError(f"node '{n.name}': the name 'input' is reserved for the data")
        if n.name in by_name:
            raise GraphError(f"node '{n.name}': defined twice")
        if n.type not in TYPES:
            raise GraphError(f"node '{n.name}': unknown type {n.type!r} (known: {', '.join(TYPES)})")
        by_name[n.name] = n
    for n in nodes:
        for i in n.inputs:
            if i != INPUT and i not in by_name:
                raise GraphError(f"node '{n.name}': input '{i}' is not defined")
        _check_fields(n)
    heads = [n for n in nodes if n.type == "head"]
    if len(heads) != 1:
        raise GraphError(f"the graph needs exactly one head node, found {len(heads)}")

    # Kahn's algorithm, taking ready nodes in file order so the order is stable.
    order, done = [], {INPUT}
    pending = list(nodes)
    while pending:
        ready = [n for n in pending if all(i in done for i in n.inputs)]
        if not ready:
            raise GraphError(f"node '{pending[0].name}' is part of a cycle")
        for n in ready:
            order.append(n)
            done.add(n.name)
        pending = [n for n in pending if n.name not in done]

    used = {heads[0].name}
    for n in reversed(order):
        if n.name in used:
            used.update(n.inputs)
    for n in order:
        if n.name not in used:
            raise GraphError(f"node '{n.name}': its output is not used on the way to the head")

    width = {INPUT: input_width}
    for n in order:
        ins = [width[i] for i in n.inputs]
        if getattr(N.TYPES[n.type], "same_widths", False) and len(set(ins)) != 1:
            detail = ", ".join(f"{i}={w}" for i, w in zip(n.inputs, ins))
            raise GraphError(f"node '{n.name}' ({n.type}): input widths differ ({detail})")
        width[n.name] = N.width(n, ins)
        if n.type == "head" and ins[0] != classes:
            raise GraphError(f"node '{n.name}' (head): input '{n.inputs[0]}' has width {ins[0]}, "
                             f"but the data has {classes} classes")
    return tuple(order), width


def _check_fields(n):
    arity, wanted = len(n.inputs), N.TYPES[n.type].arity
    if wanted is N.MANY:
        if arity < 2:
            raise GraphError(f"node '{n.name}' ({n.type}): needs at least two inputs, got {arity}")
    elif arity != wanted:
        raise GraphError(f"node '{n.name}' ({n.type}): takes exactly {'one input' if wanted == 1 else f'{wanted} inputs'}, "
                         f"got {arity}")
    if n.type == "head" and n.loss is not None and n.loss not in N.LOSSES:
        raise GraphError(f"node '{n.name}' (head): unknown loss {n.loss!r} (known: {', '.join(N.LOSSES)})")
    if n.type == "dense" and (not isinstance(n.units, int) or isinstance(n.units, bool) or n.units < 1):
        raise GraphError(f"node '{n.name}' (dense): 'units' must be a positive integer, got {n.units!r}")
    if n.type == "activation" and n.function not in known_activations():
        raise GraphError(f"node '{n.name}' (activation): unknown function {n.function!r} "
                         f"(known: {', '.join(known_activations())})")
    if n.type == "dropout" and not (isinstance(n.rate, (int, float)) and 0 <= n.rate < 1):
        raise GraphError(f"node '{n.name}' (dropout): 'rate' must be in [0, 1), got {n.rate!r}")
