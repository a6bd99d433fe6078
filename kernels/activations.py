"""Elementwise activations, forward and backward, from one table of scalar pairs.

Shapes: B batch, H units.  Z[B, H] pre-activation, A[B, H] = f(Z), dA / dZ alike.

To add an activation: write its scalar f(z) and df(z, a) (a = f(z), so sigmoid and
tanh can reuse their output), give it the next code in ACTIVATIONS, add one branch to
_f and one line and one choice to _df, and add its NumPy twin to reference.py. Tests and the CLI's
--activation choices read ACTIVATIONS.

Edges: NaN in gives NaN out for every f, so divergence reaches the loss check. The
shifted ReLU max(-1, z) outputs -1 for z <= -1 and has gradient 0 at exactly z = -1
(one-sided, like ReLU's 0 at z = 0).
"""
import math

import numpy as np
from numba import prange

from ._math import like, vexp
from ._runtime.jit import kernel
from ._runtime.registry import plain

ACTIVATIONS = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "shifted_relu": 4}


@kernel(inline="always")
def _sigmoid(z):
    # exp only of -|z| <= 0, so it never overflows: 1 / (1 + e) for z >= 0 and e / (1 + e)
    # below. Branch-free, with the vectorisable float32 exp, so the loop runs 8 lanes wide.
    e = vexp(-abs(z))
    s = like(z, 1.0) / (like(z, 1.0) + e)
    return s if z >= 0 else e * s


@kernel(inline="always")
def _f(kind, z):
    if kind == 1:
        return _sigmoid(z)
    if kind == 2:
        return math.tanh(z)
    if kind == 3:
        return 0.0 if z <= 0.0 else z  # written so that NaN falls through to z
    if kind == 4:
        return -1.0 if z <= -1.0 else z
    return z


@kernel(inline="always")
def _df(kind, z, a):
    # Every kind's derivative is computed, then the one for `kind` chosen: that keeps a
    # loop over elements a vector loop (with one branch a kind, LLVM keeps the loops of
    # activation_backward and head_step scalar). A new kind adds its line and one
    # "dN if kind == N else" to the choice.
    d1 = a * (1.0 - a)
    d2 = 1.0 - a * a
    d3 = 1.0 if z > 0.0 else 0.0
    d4 = 1.0 if z > -1.0 else 0.0
    return d1 if kind == 1 else d2 if kind == 2 else d3 if kind == 3 else d4 if kind == 4 else 1.0


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
