"""Elementwise activations, forward and backward, from one table of scalar pairs.

Shapes: B batch, H units.  Z[B, H] pre-activation, A[B, H] = f(Z), dA / dZ alike.

An activation is (name, f(z), df(z, a)) in TABLE, a = f(z) (so sigmoid and tanh reuse
their output); its code, the `kind` the kernels take, is its position there, and
ACTIVATIONS maps names to codes. To add one: its scalar pair where the comment below says,
its entry at the end of TABLE, and its NumPy twin in reference.py; tests and the CLI's
--activation choices read ACTIVATIONS.

Edges: NaN in gives NaN out for every f, so divergence reaches the loss check. The
shifted ReLU max(-1, z) outputs -1 for z <= -1 and has gradient 0 at exactly z = -1
(one-sided, like ReLU's 0 at z = 0).
"""
import math

import numpy as np
from numba import njit, prange

from ._math import like, vexp
from ._runtime.jit import kernel
from ._runtime.registry import plain


@kernel(inline="always")
def _identity(z):
    return z


@kernel(inline="always")
def _d_identity(z, a):
    return 1.0


@kernel(inline="always")
def _sigmoid(z):
    # exp only of -|z| <= 0, so it never overflows: 1 / (1 + e) for z >= 0 and e / (1 + e)
    # below. Branch-free, with the vectorisable float32 exp, so the loop runs 8 lanes wide.
    e = vexp(-abs(z))
    s = like(z, 1.0) / (like(z, 1.0) + e)
    return s if z >= 0 else e * s


@kernel(inline="always")
def _d_sigmoid(z, a):
    return a * (1.0 - a)


@kernel(inline="always")
def _tanh(z):
    return math.tanh(z)


@kernel(inline="always")
def _d_tanh(z, a):
    return 1.0 - a * a


@kernel(inline="always")
def _relu(z):
    return 0.0 if z <= 0.0 else z  # written so that NaN falls through to z


@kernel(inline="always")
def _d_relu(z, a):
    return 1.0 if z > 0.0 else 0.0


@kernel(inline="always")
def _shifted_relu(z):
    return -1.0 if z <= -1.0 else z


@kernel(inline="always")
def _d_shifted_relu(z, a):
    return 1.0 if z > -1.0 else 0.0


# Scalar pairs of further activations go here.


TABLE = (
    ("identity", _identity, _d_identity),
    ("sigmoid", _sigmoid, _d_sigmoid),
    ("tanh", _tanh, _d_tanh),
    ("relu", _relu, _d_relu),
    ("shifted_relu", _shifted_relu, _d_shifted_relu),
)
ACTIVATIONS = {name: code for code, (name, _, _) in enumerate(TABLE)}


def _inline(function):
    # The links of the chains below: inlined where they are called, with the kernels'
    # error model (kernels/_runtime/jit.py); not cached themselves (they are closures).
    return njit(inline="always", error_model="numpy")(function)


def _forward_chain(functions, code=1):
    """_f(kind, z) = functions[kind](z): tests of kind = 1, 2, ... as a chain of inlined
    functions, and functions[0] (the identity) for anything else: the branches one would
    write by hand, in that order, so LLVM sees the same code."""
    if code == len(functions):
        default = functions[0]
        return _inline(lambda kind, z: default(z))
    this, rest = functions[code], _forward_chain(functions, code + 1)

    def pick(kind, z):
        if kind == code:
            return this(z)
        return rest(kind, z)
    return _inline(pick)


def _backward_chain(derivatives, code=1):
    """_df(kind, z, a): every kind's derivative computed, then the one for `kind` chosen
    (kinds 1, 2, ... in turn, derivatives[0] for anything else). That keeps a loop over
    elements a vector loop (with one branch a kind, LLVM keeps the loops of
    activation_backward and head_step scalar); a costly derivative therefore slows every
    activation's backward pass a little."""
    if code == len(derivatives):
        default = derivatives[0]
        return _inline(lambda kind, z, a: default(z, a))
    this, rest = derivatives[code], _backward_chain(derivatives, code + 1)

    def pick(kind, z, a):
        d = this(z, a)
        r = rest(kind, z, a)
        return d if kind == code else r
    return _inline(pick)


_f = _forward_chain([f for _, f, _ in TABLE])
_df = _backward_chain([df for _, _, df in TABLE])


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d), 1))
@kernel(parallel=True)
def activation_forward(A, Z, kind):
    """A = f(Z) elementwise for activation `kind` (an ACTIVATIONS code), in place; A may
    be Z."""
    B, H = Z.shape
    for i in prange(B):
        for j in range(H):
            A[i, j] = _f(kind, Z[i, j])


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d), np.ones((2, 2), d), np.ones((2, 2), d), 1))
@kernel(parallel=True)
def activation_backward(dZ, dA, Z, A, kind):
    """dZ = dA * f'(Z) elementwise (f' may use A = f(Z)), in place; dZ may be dA."""
    B, H = Z.shape
    for i in prange(B):
        for j in range(H):
            dZ[i, j] = dA[i, j] * _df(kind, Z[i, j], A[i, j])
