"""Softmax over each row and cross-entropy computed from logits.

Shapes: B batch, K classes.  Z[B, K] logits, T[B, K] targets (one-hot or any rows that
sum to 1), P[B, K] probabilities, L[B] per-row losses, dZ[B, K].

Each row subtracts its own maximum (never the batch's: a row whose largest logit lies some
90 below another row's would underflow to all zeros in float32; notebooks/02 shows it). The loss uses log-sum-exp,
    loss_i = sum_k T[i, k] * (log(sum_m exp(Z[i, m] - max_i)) - (Z[i, k] - max_i)),
so it is finite wherever the logits are, even where exp underflows and log(P) is -inf.
These kernels run on one thread: with K = 10 classes a batch is a few thousand
exponentials, less work than waking a thread pool (and half the compile time). The fast
layer (kernels/fast/losses.py) runs the same arithmetic over flat runs of the batch.
"""
import math

import numpy as np
from numba import prange

from ._math import vexp
from ._runtime.jit import kernel
from ._runtime.registry import plain


@kernel(inline="always")
def _row_max(Z, i):
    m = Z[i, 0]
    for k in range(1, Z.shape[1]):
        if Z[i, k] > m:
            m = Z[i, k]
    return m


@kernel(inline="always")
def _row_loss(Z, T, i, m, log_s):
    # sum_k T[i, k] * -log softmax(Z[i])_k; zero targets skipped, so 0 * inf never arises.
    loss = 0.0
    for k in range(Z.shape[1]):
        if T[i, k] != 0.0:
            loss += T[i, k] * (log_s - (Z[i, k] - m))
    return loss


@kernel(inline="always")
def _softmax_row(P, Z, i):
    # Writes softmax(Z[i]) into P[i]; returns the row maximum and the sum of exponentials.
    m = _row_max(Z, i)
    s = 0.0
    for k in range(Z.shape[1]):
        e = vexp(Z[i, k] - m)
        P[i, k] = e
        s += e
    inv = 1.0 / s  # one division a row; dividing every element cost 4x the whole pass
    for k in range(Z.shape[1]):
        P[i, k] = P[i, k] * inv
    return m, s


@kernel(inline="always")
def _mean(L):
    total = 0.0
    for i in range(L.shape[0]):
        total += L[i]
    return total / L.shape[0]


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d)))
@kernel()
def softmax_rows(P, Z):
    """P[i] = exp(Z[i] - max Z[i]) / sum, row by row."""
    for i in prange(Z.shape[0]):
        _softmax_row(P, Z, i)


@plain(example=lambda d: (np.empty(2, d), np.ones((2, 2), d), np.eye(2, dtype=d)))
@kernel()
def cross_entropy(L, Z, T):
    """Per-row losses into L[B]; returns their mean (summed in row order)."""
    B, K = Z.shape
    for i in prange(B):
        m = _row_max(Z, i)
        s = 0.0
        for k in range(K):
            s += vexp(Z[i, k] - m)
        L[i] = _row_loss(Z, T, i, m, math.log(s))
    return _mean(L[:B])


@plain(example=lambda d: (np.empty((2, 2), d), np.empty(2, d), np.ones((2, 2), d), np.eye(2, dtype=d)))
@kernel()
def softmax_cross_entropy_forward(P, L, Z, T):
    """softmax_rows and cross_entropy together, row by row; returns the mean loss. P must
    not alias Z."""
    B, K = Z.shape
    for i in prange(B):
        m, s = _softmax_row(P, Z, i)
        L[i] = _row_loss(Z, T, i, m, math.log(s))
    return _mean(L[:B])


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d), np.eye(2, dtype=d)))
@kernel()
def softmax_cross_entropy_backward(dZ, P, T):
    """Gradient of the mean loss w.r.t. the logits: dZ = (P - T) / B."""
    B, K = P.shape
    for i in prange(B):
        for k in range(K):
            dZ[i, k] = (P[i, k] - T[i, k]) / B


@plain(example=lambda d: (np.empty((2, 2), d), np.empty(2, d), np.ones((2, 2), d), np.eye(2, dtype=d)))
@kernel()
def mse_softmax_forward(P, L, Z, T):
    """P = softmax(Z) row by row and L[i] = sum_k (P[i, k] - T[i, k])^2 (the mean squared
    error on the probabilities, as in the book's early chapters); returns the mean of L."""
    B, K = Z.shape
    for i in prange(B):
        _softmax_row(P, Z, i)
        loss = 0.0
        for k in range(K):
            loss += (P[i, k] - T[i, k]) * (P[i, k] - T[i, k])
        L[i] = loss
    return _mean(L[:B])


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 2), d), np.eye(2, dtype=d)))
@kernel()
def mse_softmax_backward(dZ, P, T):
    """Gradient of the mean of mse_softmax_forward's L w.r.t. the logits: with
    g = 2 (P - T) / B, dZ[i, k] = P[i, k] (g[i, k] - sum_m P[i, m] g[i, m]) (the softmax's
    Jacobian applied to g). dZ must not alias P."""
    B, K = P.shape
    for i in prange(B):
        s = 0.0
        for m in range(K):
            s += P[i, m] * 2.0 * (P[i, m] - T[i, m]) / B
        for k in range(K):
            dZ[i, k] = P[i, k] * (2.0 * (P[i, k] - T[i, k]) / B - s)

