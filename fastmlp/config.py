"""Experiment files: a TOML table of TrainConfig fields plus an optional graph.

    epochs = 20
    optimizer = "adam"
    lr = 0.001

    [[node]]
    name = "h1"
    type = "dense"
    inputs = ["input"]
    units = 256
    ...

Keys are TrainConfig's field names; `preset` names a preset to start from; each [[node]]
table is a graph node (fastmlp.graph). Unknown keys and wrong types are errors naming the
key. Values combine as: preset < file < command-line options.
"""
import dataclasses
import tomllib

from fastmlp import graph as G
from fastmlp.presets import PRESETS
from fastmlp.train import TrainConfig


class ConfigError(ValueError):
    """A bad experiment file; the message names the file and the key."""


_FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
_TUPLES = {"hidden", "activation"}


def read_toml(path):
    """The parsed TOML table of `path`; ConfigError (one line, naming the file) otherwise."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None


def read(path):
    """The values an experiment file sets, as TrainConfig keyword arguments."""
    return values_from_table(read_toml(path), path)


def values_from_table(table, path):
    """TrainConfig keyword arguments from a parsed table (experiment file or sweep run)."""
    table = dict(table)
    values = {}
    preset = table.pop("preset", None)
    if preset is not None:
        if preset not in PRESETS:
            raise ConfigError(f"{path}: unknown preset {preset!r} (known: {', '.join(PRESETS)})")
        values.update(PRESETS[preset])
    nodes = table.pop("node", None)
    if nodes is not None:
        if not isinstance(nodes, list):
            raise ConfigError(f"{path}: 'node' must be an array of tables ([[node]])")
        try:
            values["graph"] = tuple(G.node_from_dict(d, i) for i, d in enumerate(nodes))
        except G.GraphError as e:
            raise ConfigError(f"{path}: {e}") from None
    for key, value in table.items():
        if key not in _FIELDS or key == "graph":
            raise ConfigError(f"{path}: unknown key {key!r}")
        if key in _TUPLES:
            value = (value,) if isinstance(value, (str, int)) else value
            if not isinstance(value, list | tuple):
                raise ConfigError(f"{path}: {key!r} must be a value or a list")
            value = tuple(value)
        values[key] = _checked(path, key, value)
    return values


def _checked(path, key, value):
    default = _FIELDS[key].default
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
    expected = type(default) if default is not None else None
    if expected in kinds and (not isinstance(value, kinds[expected])
                              or (expected is not bool and isinstance(value, bool))):
        raise ConfigError(f"{path}: {key!r} must be {expected.__name__}, got {value!r}")
    if expected is float:
        value = float(value)
    return value


def to_dict(config):
    """A TrainConfig as plain JSON-able values (the graph as a list of node tables)."""
    d = {}
    for k, v in vars(config).items():
        if k == "graph":
            d[k] = None if v is None else [G.node_to_dict(n) for n in v]
        elif isinstance(v, tuple):
            d[k] = list(v)
        else:
            d[k] = v
    return d


def from_dict(d, source="checkpoint"):
    """The inverse of to_dict; raises ConfigError naming `source` for unknown keys."""
    values = {}
    for key, value in d.items():
        if key not in _FIELDS:
            raise ConfigError(f"{source}: unknown key {key!r}")
        if key == "graph":
            values[key] = None if value is None else tuple(G.node_from_dict(n, i) for i, n in enumerate(value))
        elif key in _TUPLES:
            values[key] = tuple(value)
        else:
            values[key] = value
    return TrainConfig(**values)
