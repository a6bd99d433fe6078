"""Fast against plain: every replacement run beside the plain ops it replaces, on random
inputs of awkward sizes, in each dtype it runs in; then, on request, its digests recorded
(kernels/fast/validated.json) so that kernels/dispatch.py lets it run again.

Tolerances: the same bits where the replacement computes the same arithmetic in the same
order (activations, softmax cross-entropy: EXACT); else (the products, whose tiles add the
same terms in another order) |fast - plain| <= rtol |plain| + scale * max(1, max |plain|),
rtol 1e-4 and scale 2e-5 for float32 (a sum of n terms of O(1) values is off by about
sqrt(n) * 6e-8 of its terms' size each way: 784 terms, ~2e-6), 1e-12 and 1e-13 for float64.
"""
import json
import os
import tempfile

import numpy as np

from .. import dispatch
from .._runtime.registry import KERNELS
from ..activations import ACTIVATIONS
from ._share import PARTS

SIZES = ((1, 3, 2), (7, 129, 11), (33, 20, 17), (64, 784, 10))  # (B, D, H)
TOLERANCE = {np.float32: (1e-4, 2e-5), np.float64: (1e-12, 1e-13)}
EXACT = {"activation_forward", "activation_backward", "softmax_cross_entropy_forward",
         "softmax_cross_entropy_backward"}


def _cases(op, dtype, rng):
    """(arguments, indices of the outputs) for plain op `op`, several sizes and kinds."""
    r = lambda *shape: rng.standard_normal(shape).astype(dtype)
    e = lambda *shape: np.full(shape, np.nan, dtype)  # outputs start as NaN: every element must be written
    for B, D, H in SIZES:
        if op in ("dense_forward", "dense_forward_bf16"):
            yield (e(B, H), r(B, D), r(H, D), r(H)), (0,)
        elif op in ("dense_backward", "dense_backward_bf16"):
            for grad in (True, False):
                yield (e(B, D), e(H, D), e(H), r(B, H), r(B, D), r(H, D), np.zeros(D, dtype), grad), \
                    ((0, 1, 2) if grad else (1, 2))
        elif op in ("activation_forward", "activation_backward"):
            for kind in ACTIVATIONS.values():
                Z = r(B, H)
                Z[0, 0] = -1.0  # the shifted ReLU's kink
                A = np.empty_like(Z)
                KERNELS["activation_forward"].run(A, Z, kind)
                if op == "activation_forward":
                    yield (e(B, H), Z, kind), (0,)
                else:
                    yield (e(B, H), r(B, H), Z, A, kind), (0,)
        elif op in ("softmax_cross_entropy_forward", "softmax_cross_entropy_backward"):
            Z = r(B, H) * 10
            T = np.eye(H, dtype=dtype)[rng.integers(0, H, B)]
            if op == "softmax_cross_entropy_forward":
                yield (e(B, H), e(B), Z, T), (0, 1)
            else:
                P = np.empty_like(Z)
                KERNELS["softmax_cross_entropy_forward"].run(P, np.empty(B, dtype), Z, T)
                yield (e(B, H), P, T), (0,)


def _differs(fast, plain, dtype, exact):
    fast, plain = np.asarray(fast), np.asarray(plain)
    if exact:
        same = np.array_equal(fast.view(np.uint8) if fast.ndim else fast, plain.view(np.uint8) if plain.ndim else plain)
        return None if same and fast.shape == plain.shape else "not the same bits"
    rtol, scale = TOLERANCE[np.dtype(dtype).type]
    atol = scale * max(1.0, float(np.max(np.abs(plain)))) if plain.size else 0.0
    if fast.shape != plain.shape or not np.all(np.abs(fast - plain) <= atol + rtol * np.abs(plain)):
        return f"off by up to {np.nanmax(np.abs(fast - plain)):.3g}"
    return None


def _check_op(entry, dtype, rng):
    op = entry.replaces[0]
    failures = []
    for args, outputs in _cases(op, dtype, rng):
        mine = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        theirs = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        got = entry.run(*mine)
        want = KERNELS[op].run(*theirs)
        pairs = [(mine[i], theirs[i]) for i in outputs] + ([(got, want)] if want is not None else [])
        for a, b in pairs:
            why = _differs(a, b, dtype, op in EXACT)
            if why:
                shape = "x".join(map(str, np.shape(args[outputs[0]])))
                failures.append(f"{entry.name} vs {op} ({np.dtype(dtype).name}, {shape}): {why}")
                break
    return failures


def _check_head(entry, dtype, rng):
    """The fused head against the plain ops one after another (the module header of
    kernels/fast/head.py), with and without the activation, with and without dX."""
    failures = []
    K = {op: KERNELS[op].run for op in entry.replaces}
    for B, D, H in SIZES:
        for kind in (-1, *ACTIVATIONS.values()):
            for grad in (True, False):
                S = rng.standard_normal((B, D)).astype(dtype)
                X = S.copy()
                if kind >= 0:
                    KERNELS["activation_forward"].run(X, S, kind)
                W = rng.standard_normal((H, D)).astype(dtype)
                b = rng.standard_normal(H).astype(dtype)
                T = np.eye(H, dtype=dtype)[rng.integers(0, H, B)]
                zeros = np.zeros(D, dtype)
                out = [np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty(B, dtype), np.empty((B, H), dtype),
                       np.zeros((B, D), dtype), np.empty((H, D), dtype), np.empty(H, dtype)]
                loss = entry.run(*out, X, W, b, T, S, kind, zeros, PARTS, grad)
                Z, P, L, dZ = (np.empty((B, H), dtype), np.empty((B, H), dtype), np.empty(B, dtype),
                               np.empty((B, H), dtype))
                dX, dW, db = np.zeros((B, D), dtype), np.empty((H, D), dtype), np.empty(H, dtype)
                K["dense_forward"](Z, X, W, b)
                want = K["softmax_cross_entropy_forward"](P, L, Z, T)
                K["softmax_cross_entropy_backward"](dZ, P, T)
                K["dense_backward"](dX, dW, db, dZ, X, W, zeros, grad)
                if kind >= 0 and grad:
                    K["activation_backward"](dX, dX, S, X, kind)
                pairs = [(loss, want), (out[0], Z), (out[1], P), (out[2], L), (out[3], dZ), (out[5], dW), (out[6], db)]
                if grad:
                    pairs.append((out[4], dX))
                for a, w in pairs:
                    why = _differs(a, w, dtype, False)
                    if why:
                        failures.append(f"{entry.name} ({np.dtype(dtype).name}, B={B} D={D} K={H}, "
                                        f"kind {kind}, dX {grad}): {why}")
                        break
    return failures


def check(name, seed=0):
    """Failures (one line each) of replacement `name` against the plain layer, in every
    dtype it runs in; [] when it holds."""
    entry = KERNELS[name]
    rng = np.random.default_rng(seed)
    failures = []
    for dtype in entry.dtypes:
        failures += (_check_head if len(entry.replaces) > 1 else _check_op)(entry, np.dtype(dtype), rng)
    return failures


def unrunnable(name):
    """Why replacement `name` cannot run here, or None (dispatch.missing_avx512)."""
    why = dispatch.missing_avx512(KERNELS[name], dispatch.settings())
    return why and f"it {why}"


def runnable(name):
    """Whether replacement `name` can run here (unrunnable() gives why not)."""
    return unrunnable(name) is None


def record(names):
    """Write the current digests of replacements `names` into validated.json (atomically),
    keeping the others' entries."""
    data = dispatch.recorded()
    for name in names:
        data[name] = dispatch.current(name)
    directory = os.path.dirname(dispatch.VALIDATED)
    fd, tmp = tempfile.mkstemp(prefix=".validated-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(dict(sorted(data.items())), f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dispatch.VALIDATED)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def revalidate(names=None, log=print):
    """Check the replacements whose digests are stale (or `names`), record those that pass;
    returns {name: failures}, None for one that cannot run here (unrunnable()): it is not
    compared, so its digest is not recorded and it stays off until it is checked where it
    can run."""
    if names is None:
        names = [n for n, k in KERNELS.items() if k.layer == "fast" and dispatch.stale(n)]
    why = {name: unrunnable(name) for name in names}
    results = {name: None if why[name] else check(name) for name in names}
    passed = [n for n, f in results.items() if f == []]
    if passed:
        record(passed)
    for name, failures in results.items():
        if failures is None:
            log(f"{name}: skipped: {why[name]} (check it again where it can run)")
        else:
            log(f"{name}: {'validated, digest recorded' if not failures else 'FAILED: ' + failures[0]}")
    skipped = sum(f is None for f in results.values())
    if skipped:
        log(f"{len(passed)} validated, {sum(bool(f) for f in results.values())} failed, {skipped} skipped")
    return results
