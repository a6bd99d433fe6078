"""The one place that decides which implementation runs for each op, on this CPU and dtype.

Every plain kernel (kernels/*.py) is an op. A fast replacement (kernels/fast/) runs in its
place only when
  - FASTMLP_KERNELS does not say otherwise: a comma-separated list of `plain` (every op on
    the plain layer), `no-avx512` (the fast layer as on a CPU without AVX-512) and
    `no-fused` (no fused head); empty or `auto` is the default;
  - the CPU and the dtype are what it needs;
  - and the plain source of every op it replaces is the one it was validated against.
The last rule is the edit guarantee: each replacement records, in kernels/fast/validated.json,
a digest of each plain op's source as it was when the fast-vs-plain checks passed
(kernels/fast/validate.py). The digest covers the plain kernel and the plain helpers it
calls, except those the replacement calls too (an edit there runs in both). When a user
edits a plain op, its digest differs: the op, and every replacement covering it (the fused
head included), run on the plain layer, and one line on stderr says so and how to
re-validate (`fastmlp kernels --check`).

A precision maps ops onto others: with "bf16" a network's dense_forward and dense_backward
are dense_forward_bf16 and dense_backward_bf16 (each chosen as above) and the fused head,
which multiplies in float32, is off. precision_note() says, in one line, how bf16 runs here.
"""
import dataclasses
import hashlib
import inspect
import json
import os
import sys

import numpy as np

from ._runtime.jit import host_features, host_has_avx512
from ._runtime.registry import KERNELS

VALIDATED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fast", "validated.json")
HEAD = "head"  # the pattern op of the fused head: the logits layer, softmax cross-entropy, their gradients
SETTINGS = ("plain", "no-avx512", "no-fused")
PRECISIONS = ("float32", "bf16")
BF16_OPS = {"dense_forward": "dense_forward_bf16", "dense_backward": "dense_backward_bf16"}


def settings():
    """The words of FASTMLP_KERNELS; ValueError for an unknown one."""
    raw = os.environ.get("FASTMLP_KERNELS", "").strip().lower()
    words = {w.strip() for w in raw.split(",") if w.strip() and w.strip() != "auto"}
    unknown = sorted(words - set(SETTINGS))
    if unknown:
        raise ValueError(f"FASTMLP_KERNELS: unknown setting {unknown[0]!r} (known: auto, {', '.join(SETTINGS)})")
    return words


def _reached(function, within, seen=None):
    """The functions `function` reaches through the names its code uses (itself included),
    following only those whose module `within` accepts, as {qualified name: function}."""
    seen = {} if seen is None else seen
    py = getattr(function, "py_func", function)
    if not inspect.isfunction(py) or not within(py.__module__) or _key(py) in seen:
        return seen
    seen[_key(py)] = py
    module = sys.modules.get(py.__module__)
    for name in _names(py.__code__):
        _reached(getattr(module, name, None), within, seen)
    return seen


def _in_package(module):
    return module.startswith(_PACKAGE + ".")


_PACKAGE = __name__.rsplit(".", 1)[0]  # fastmlp.kernels


def _is_plain_module(module):
    rest = module[len(_PACKAGE) + 1:] if module.startswith(_PACKAGE + ".") else None
    return rest is not None and "." not in rest and rest not in ("dispatch", "reference")


def _names(code):
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _names(const)
    return names


def digest(op, replacement):
    """SHA-256 of the plain op's source and of the plain helpers it reaches that the
    replacement does not reach itself."""
    entry = KERNELS[replacement]
    shared = {}
    for f in (entry.run, *entry.compiled):
        _reached(f, _in_package, shared)
    own = _key(KERNELS[op].run)
    h = hashlib.sha256()
    for key, function in sorted(_reached(KERNELS[op].run, _is_plain_module).items()):
        if key != own and key in shared:
            continue
        # Keys relative to the kernels package, so that a copy under another name matches.
        h.update(key[len(_PACKAGE) + 1:].encode() + b"\0" + inspect.getsource(function).encode())
    return h.hexdigest()


def _key(function):
    py = getattr(function, "py_func", function)
    return f"{py.__module__}.{py.__name__}"


def source_file(op):
    """kernels/<file>.py, where plain op `op` is defined."""
    return "kernels/" + _key(KERNELS[op].run)[len(_PACKAGE) + 1:].rsplit(".", 1)[0].replace(".", "/") + ".py"


def recorded():
    """{replacement: {op: digest}} as last validated."""
    try:
        with open(VALIDATED) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


_CURRENT = {}


def current(replacement):
    """{op: digest} of the plain sources `replacement` stands for, as loaded in this process."""
    if replacement not in _CURRENT:
        _CURRENT[replacement] = {op: digest(op, replacement) for op in dict.fromkeys(KERNELS[replacement].replaces)}
    return _CURRENT[replacement]


def stale(replacement, record=None):
    """The ops of `replacement` whose plain source is not the one it was validated against."""
    record = recorded() if record is None else record
    then = record.get(replacement, {})
    return [op for op, d in current(replacement).items() if then.get(op) != d]


@dataclasses.dataclass(frozen=True)
class Choice:
    op: str
    implementation: str
    run: object
    why: str


def missing_avx512(entry, words):
    """Why replacement `entry`'s code cannot run here at all, or None: it needs AVX-512 and
    the CPU lacks it, or FASTMLP_KERNELS=no-avx512 acts as if it did."""
    if "avx512" not in entry.needs:
        return None
    if "no-avx512" in words:
        return "needs AVX-512 (FASTMLP_KERNELS=no-avx512)"
    return None if host_has_avx512() else "needs AVX-512, which this CPU lacks"


def _blocked(entry, dtype, words):
    """Why replacement `entry` cannot run here, or None."""
    if "plain" in words:
        return "FASTMLP_KERNELS=plain"
    if dtype.name not in entry.dtypes:
        return f"{entry.name} is float32 only"
    why = missing_avx512(entry, words)
    if why:
        return f"{entry.name} {why}"
    if len(entry.replaces) > 1 and "no-fused" in words:
        return "FASTMLP_KERNELS=no-fused"
    return None


_WARNED = set()


def _warn(op, replacements):
    """One line on stderr, once a process, for a plain op edited since its replacements
    were validated."""
    if op in _WARNED:
        return
    _WARNED.add(op)
    print(f"fastmlp: {op} ({source_file(op)}) differs from the source its fast replacements "
          f"({', '.join(replacements)}) were validated against: running it as written on the plain "
          f"layer; `fastmlp kernels --check` re-validates them", file=sys.stderr)


def edited(record=None):
    """{plain op: [replacements validated against another source of it]}."""
    record = recorded() if record is None else record
    ops = {}
    for entry in KERNELS.values():
        if entry.layer == "fast":
            for op in stale(entry.name, record):
                ops.setdefault(op, []).append(entry.name)
    return ops


def _choose(candidates, dtype, words, changed):
    """(the first replacement that may run, None) or (None, why the first one may not)."""
    first = None
    for fast in candidates:
        why = _blocked(fast, dtype, words)
        if why is None:
            bad = [op for op in fast.replaces if fast.name in changed.get(op, ())]
            if bad:
                why = f"{', '.join(bad)} edited since {fast.name} was validated"
        if why is None:
            return fast, None
        first = first or why
    return None, first


def table(dtype):
    """{op: Choice} for every plain op and the fused head (HEAD, run None where it does
    not apply) on this machine and dtype."""
    dtype = np.dtype(dtype)
    words = settings()
    changed = edited()
    if "plain" not in words:
        for op, replacements in changed.items():
            # Only the replacements that could run here: one this CPU cannot run (or that
            # FASTMLP_KERNELS turns off) changes nothing by being stale.
            here = [r for r in replacements if _blocked(KERNELS[r], np.dtype(KERNELS[r].dtypes[0]), words) is None]
            if here:
                _warn(op, here)
    fast = [e for e in KERNELS.values() if e.layer == "fast"]
    choices = {}
    for name, entry in KERNELS.items():
        if entry.layer not in ("plain", "data"):
            continue
        chosen, why = _choose([f for f in fast if f.replaces == (name,)], dtype, words, changed)
        # A plain op runs as the package's public name holds it (a replaced one included).
        public = getattr(sys.modules.get(_PACKAGE), name, entry.run)
        choices[name] = (Choice(name, chosen.name, chosen.run, "fast replacement, validated against this source")
                         if chosen else Choice(name, name, public, why or "no fast replacement"))
    chosen, why = _choose([f for f in fast if len(f.replaces) > 1], dtype, words, changed)
    choices[HEAD] = (Choice(HEAD, chosen.name, chosen.run, "fused: " + " -> ".join(chosen.replaces))
                     if chosen else Choice(HEAD, "separate kernels", None, why or "no fused head"))
    return choices


def bf16_units():
    """The bfloat16 product units this CPU has, of "amx" (AMX-BF16 tiles) and "avx512-bf16"."""
    features = set((host_features() or "").split(","))
    return tuple(unit for unit, flag in (("amx", "+amx-bf16"), ("avx512-bf16", "+avx512bf16")) if flag in features)


def precision_op(name, precision):
    """The plain op that runs as `name` at `precision` (dense_forward_bf16 for dense_forward
    at bf16)."""
    return BF16_OPS.get(name, name) if precision == "bf16" else name


def precision_note(precision, chosen):
    """One line on how `precision` runs on this CPU with the table `chosen` (table()), or
    None for float32."""
    if precision == "float32":
        return None
    runs = ", ".join(f"{op} as {chosen[op].implementation}" for op in BF16_OPS.values())
    units = bf16_units()
    have = (f"this CPU has {' and '.join(u.upper() for u in units)}, which fastmlp's kernels do not use yet"
            if units else "this CPU has neither AMX nor AVX512-BF16")
    return (f"precision bf16: {have}; the products round their factors to bfloat16 and multiply in float32 "
            f"units ({runs}): bfloat16's numbers, no faster than float32")


_NOTED = set()


class Kernels:
    """The chosen implementations as attributes (kernels.dense_forward(...)), for one dtype
    and precision; `head` is the fused head's kernel or None. A precision other than
    float32 prints precision_note() on stderr, once a process."""

    def __init__(self, dtype, precision="float32"):
        if precision not in PRECISIONS:
            raise ValueError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
        if precision == "bf16" and np.dtype(dtype) != np.float32:
            raise ValueError("precision bf16 needs float32")
        self.choices = table(dtype)
        self.precision = precision
        for op, choice in self.choices.items():
            setattr(self, op, choice.run)
        if precision == "bf16":
            for op in BF16_OPS:
                setattr(self, op, self.choices[self.op(op)].run)
            self.head = None
            if precision not in _NOTED:
                _NOTED.add(precision)
                print(f"fastmlp: {precision_note(precision, self.choices)}", file=sys.stderr)

    def op(self, name):
        """precision_op(name) at this table's precision."""
        return precision_op(name, self.precision)
