"""Fast activations: the plain layer's scalar pair (kernels/activations.py: _f, _df)
over flat stretches of rows instead of row by row, so that each stretch is one vector
loop with one remainder. Arrays C-contiguous, shapes as in the plain layer.
"""
from numba import prange

from .._runtime.jit import kernel
from .._runtime.registry import fast
from ..activations import _df, _f
from ._simd import address

ROWS = 8  # rows of Z an iteration of the kernels below owns


@fast(replaces=("activation_forward",), seconds=1.3)
@kernel(parallel=True)
def activation_forward_stretches(A, Z, kind):
    """Replaces activation_forward: the same f(Z) (the plain layer's _f, called here), an
    iteration owning ROWS rows as one flat stretch, so the vector loop leaves one remainder
    per stretch, not one per row. All arrays C-contiguous. The same bits."""
    B, H = Z.shape
    a, z = address(A), address(Z)
    for c in prange((B + ROWS - 1) // ROWS):
        for n in range(c * ROWS * H, min(B, c * ROWS + ROWS) * H):
            a[n] = _f(kind, z[n])


@fast(replaces=("activation_backward",), seconds=0.7)
@kernel(parallel=True)
def activation_backward_stretches(dZ, dA, Z, A, kind):
    """Replaces activation_backward: dA * _df(Z, A) over stretches of ROWS rows, as
    activation_forward_stretches. The same bits."""
    B, H = Z.shape
    dz, da, z, a = address(dZ), address(dA), address(Z), address(A)
    for c in prange((B + ROWS - 1) // ROWS):
        for n in range(c * ROWS * H, min(B, c * ROWS + ROWS) * H):
            dz[n] = da[n] * _df(kind, z[n], a[n])
