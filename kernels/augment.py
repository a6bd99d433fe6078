"""Random translation of training images, gathered straight into the batch buffer.

Shapes: B batch, N images of R x C pixels stored flat (row-major), P kept pixels.
X[B, P] out; images[N, R*C] in; rows[B]: the image that goes to batch row i;
pixels[P]: the flat index of each kept pixel (all R*C of them when no crop, centre or
pixel subset is in use, so the subset is taken after the move).

Batch row i is image rows[i] moved down by dy and right by dx pixels, each uniform in
-S..S and drawn from hash(seed, step, SHIFT_NODE, i, 0) (the dropout hash, with a node
number no graph node has): the same every run and for any thread count, and different
at every step. Pixels moved in from outside the image get `background`, the scaled
value of a blank (0) pixel. S = 0 is a plain gather.
"""
import numpy as np
from numba import prange

from ._runtime.jit import kernel
from ._runtime.registry import plain
from .dropout import unit_hash

SHIFT_NODE = 0xFFFFFFFF


@plain(example=lambda d: (np.empty((2, 3), d), np.ones((2, 4), d), np.arange(2), np.arange(3), 2, 2, 0.0, 1, 0, 0),
       seconds=1.1)
@kernel(parallel=True)
def shift_gather(X, images, rows, pixels, R, C, background, S, seed, step):
    """X[i, p] = image rows[i], moved by (dy_i, dx_i), at pixel pixels[p]; in place."""
    B, P = X.shape
    n = np.uint64(2 * S + 1)
    for i in prange(B):
        h = unit_hash(seed, step, SHIFT_NODE, i, 0)
        dy = np.int64(h % n) - S
        dx = np.int64((h >> np.uint64(32)) % n) - S
        src = images[rows[i]]
        for p in range(P):
            y = pixels[p] // C - dy
            x = pixels[p] % C - dx
            if 0 <= y < R and 0 <= x < C:
                X[i, p] = src[y * C + x]
            else:
                X[i, p] = background
