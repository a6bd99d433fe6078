"""Softmax over each row and cross-entropy computed from logits.

Shapes: B batch, K classes.  Z[B, K] logits, T[B, K] targets (one-hot or any rows that
sum to 1), P[B, K] probabilities, L[B] per-row losses, dZ[B, K].

Each row subtracts its own maximum (never the batch's: a row whose logits are 1e3 times
smaller than another row's would underflow to all zeros). The loss uses log-sum-exp,
    loss_i = sum_k T[i, k] * (log(sum_m exp(Z[i, m] - max_i)) - (Z[i, k] - max_i)),
so it is finite wherever the logits are, even where exp underflows and log(P) is -inf.
These kernels run on one thread: with K = 10 classes a batch is a few thousand
exponentials, less work than waking a thread pool (and half the compile time).
"""
import math

from numba import prange

from ._jit import kernel
from ._math import vexp
from ._simd import address


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
def _shift_rows(P, Z, lo, hi):
    # softmax_cross_entropy_forward's first pass: P[i] = Z[i] - max Z[i], rows lo..hi.
    for i in range(lo, hi):
        m = _row_max(Z, i)
        for k in range(Z.shape[1]):
            P[i, k] = Z[i, k] - m


@kernel(inline="always")
def _normalize_rows(P, L, Z, T, lo, hi):
    # Its third pass, rows lo..hi of P holding exps: each divided by their sum (one
    # division a row), and the row's loss into L[i] from the same sum.
    for i in range(lo, hi):
        s = 0.0
        for k in range(Z.shape[1]):
            s += P[i, k]
        inv = 1.0 / s
        for k in range(Z.shape[1]):
            P[i, k] = P[i, k] * inv
        L[i] = _row_loss(Z, T, i, _row_max(Z, i), math.log(s))


@kernel(inline="always")
def _mean(L):
    total = 0.0
    for i in range(L.shape[0]):
        total += L[i]
    return total / L.shape[0]


@kernel()
def softmax_rows(P, Z):
    """P[i] = exp(Z[i] - max Z[i]) / sum, row by row."""
    for i in prange(Z.shape[0]):
        _softmax_row(P, Z, i)


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


@kernel()
def softmax_cross_entropy_forward(P, L, Z, T):
    """softmax_rows and cross_entropy together; returns the mean loss.

    Three passes over the batch (shifted logits, exps, sums and losses) rather than one
    pass a row doing all three, so that the pass that only takes exps, over P as one
    flat run, is a loop LLVM vectorises. The third
    pass finds each row's maximum again rather than keeping it in L, so L's dtype never
    rounds it. P must be C-contiguous and must not alias Z."""
    B, K = Z.shape
    _shift_rows(P, Z, 0, B)
    p = address(P)
    for n in range(B * K):  # one flat run: the vector loop leaves one remainder, not one a row
        p[n] = vexp(p[n])
    _normalize_rows(P, L, Z, T, 0, B)
    return _mean(L[:B])


@kernel()
def softmax_cross_entropy_backward(dZ, P, T):
    """Gradient of the mean loss w.r.t. the logits: dZ = (P - T) / B. All three
    C-contiguous: one flat run."""
    B, K = P.shape
    dz, p, t = address(dZ), address(P), address(T)
    for n in range(B * K):
        dz[n] = (p[n] - t[n]) / B
