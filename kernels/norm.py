"""Layer normalisation: each row of the batch normalised to mean 0 and variance 1, then
scaled and shifted by a learnable gain and bias per unit.

Shapes: B batch, H units.  X[B, H] in, Y[B, H] out, gain[H], bias[H]; saved for the
backward pass: Xhat[B, H] (the normalised rows) and R[B] (1 / sqrt(var + eps) per row).
    forward   mu_i = mean_j X[i, j]   var_i = mean_j (X[i, j] - mu_i)^2
              Xhat[i, j] = (X[i, j] - mu_i) R[i]     Y[i, j] = gain[j] Xhat[i, j] + bias[j]
    backward  dgain[j] = sum_i dY[i, j] Xhat[i, j]   dbias[j] = sum_i dY[i, j]
              g = dY[i] * gain
              dX[i, j] = R[i] (g[j] - mean_k g[k] - Xhat[i, j] mean_k g[k] Xhat[i, k])
Rows are independent in the forward pass and in dX (prange over rows); dgain and dbias
are sums over the batch, owned by a column each and added in row order.
"""
import math

import numpy as np
from numba import prange

from ._math import like
from ._runtime.jit import kernel
from ._runtime.registry import plain


@plain(example=lambda d: (np.empty((2, 3), d), np.empty((2, 3), d), np.empty(2, d), np.ones((2, 3), d),
                          np.ones(3, d), np.zeros(3, d), 1e-5))
@kernel(parallel=True)
def layernorm_forward(Y, Xhat, R, X, gain, bias, eps):
    """Y, Xhat and R from X (see the header), in place; Y may be X."""
    B, H = X.shape
    zero = like(X, 0.0)
    for i in prange(B):
        mu = zero
        for j in range(H):
            mu += X[i, j]
        mu = mu / H
        var = zero
        for j in range(H):
            var += (X[i, j] - mu) * (X[i, j] - mu)
        r = like(X, 1.0) / math.sqrt(var / H + like(X, eps))
        R[i] = r
        for j in range(H):
            Xhat[i, j] = (X[i, j] - mu) * r
            Y[i, j] = gain[j] * Xhat[i, j] + bias[j]


@plain(example=lambda d: (np.empty((2, 3), d), np.empty(3, d), np.empty(3, d), np.ones((2, 3), d),
                          np.ones((2, 3), d), np.ones(2, d), np.ones(3, d), True))
@kernel(parallel=True)
def layernorm_backward(dX, dgain, dbias, dY, Xhat, R, gain, input_grad):
    """dgain, dbias and, when input_grad is true, dX (see the header); dX may be dY."""
    B, H = dY.shape
    zero = like(dY, 0.0)
    for j in prange(H):
        sg, sb = zero, zero
        for i in range(B):
            sg += dY[i, j] * Xhat[i, j]
            sb += dY[i, j]
        dgain[j] = sg
        dbias[j] = sb
    if input_grad:
        for i in prange(B):
            m1, m2 = zero, zero
            for j in range(H):
                g = dY[i, j] * gain[j]
                m1 += g
                m2 += g * Xhat[i, j]
            m1, m2 = m1 / H, m2 / H
            for j in range(H):
                dX[i, j] = R[i] * (dY[i, j] * gain[j] - m1 - Xhat[i, j] * m2)
