"""Fast softmax cross-entropy: the plain layer's row arithmetic (kernels/losses.py) in
passes over the whole batch, so that the pass that only takes exponentials runs over P as
one flat run, a loop LLVM vectorises. Shapes as in the plain layer.
"""
import math

from .._runtime.jit import kernel
from .._runtime.registry import fast
from .._math import vexp
from ..losses import _mean, _row_loss, _row_max
from ._simd import address


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


@fast(replaces=("softmax_cross_entropy_forward",), seconds=0.9)
@kernel()
def softmax_cross_entropy_passes(P, L, Z, T):
    """Replaces softmax_cross_entropy_forward: the same numbers, bit for bit.

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


@fast(replaces=("softmax_cross_entropy_backward",))
@kernel()
def softmax_cross_entropy_backward_flat(dZ, P, T):
    """Replaces softmax_cross_entropy_backward: dZ = (P - T) / B over the batch as one
    flat run (all three C-contiguous). The same bits."""
    B, K = P.shape
    dz, p, t = address(dZ), address(P), address(T)
    for n in range(B * K):
        dz[n] = (p[n] - t[n]) / B
