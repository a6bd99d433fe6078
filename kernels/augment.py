"""Random translation and distortion of training images, gathered straight into the batch
buffer.

Shapes: B batch, N images of R x C pixels stored flat (row-major), P kept pixels.
X[B, P] out; images[N, R*C] in; rows[B]: the image that goes to batch row i;
pixels[P]: the flat index of each kept pixel (all R*C of them when no crop, centre or
pixel subset is in use, so the subset is taken after the move).

Batch row i is image rows[i] moved down by dy and right by dx pixels, each uniform in
-S..S and drawn from hash(seed, step, SHIFT_NODE, i, 0) (the dropout hash, with a node
number no graph node has): the same every run and for any thread count, and different
at every step. Pixels moved in from outside the image get `background`, the scaled
value of a blank (0) pixel. S = 0 is a plain gather.

distort_gather adds, per image, an affine map (rotation, scaling of x and y, shear, drawn
from hash(seed, step, AFFINE_NODE, i, 0 and 1)) and Simard's elastic distortion: a
displacement field uniform in [-1, 1] at every pixel for x and for y (24 bits each of
hash(seed, step, ELASTIC_NODE, i, pixel)), smoothed by a Gaussian (taps[t] for offsets
|t| <= r, zero outside the image), scaled by alpha; each output pixel is sampled at its
moved position by bilinear interpolation. With no affine terms and alpha = 0 it is exactly
shift_gather.
"""
import numpy as np
from numba import prange

from ._runtime.jit import kernel
from ._runtime.registry import plain
from .dropout import splitmix64, unit_hash

SHIFT_NODE = 0xFFFFFFFF
ELASTIC_NODE = 0xFFFFFFFE
AFFINE_NODE = 0xFFFFFFFD


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


@kernel(inline="always")
def uniform24(bits):
    """24 random bits as a number uniform in [-1, 1), exact in float32."""
    return np.float64(bits & np.uint64(0xFFFFFF)) * (1.0 / 8388608.0) - 1.0


@kernel(inline="always")
def pixel_at(src, y, x, R, C, background):
    if 0 <= y < R and 0 <= x < C:
        return np.float64(src[y * C + x])
    return np.float64(background)


@kernel(inline="always")
def draws(seed, step, i, S, rotate, scale, shear):
    """Batch row i's (dy, dx) shift (shift_gather's), and cos, sin of its angle, tan of its
    shear angle and its x and y scale factors."""
    h = unit_hash(seed, step, SHIFT_NODE, i, 0)
    n = np.uint64(2 * S + 1)
    dy = np.int64(h % n) - S
    dx = np.int64((h >> np.uint64(32)) % n) - S
    deg = np.pi / 180.0
    h = unit_hash(seed, step, AFFINE_NODE, i, 0)
    angle = rotate * deg * uniform24(h >> np.uint64(40))
    fx = 1.0 + scale * uniform24(h >> np.uint64(16))
    h = unit_hash(seed, step, AFFINE_NODE, i, 1)
    fy = 1.0 + scale * uniform24(h >> np.uint64(40))
    t = np.tan(shear * deg * uniform24(h >> np.uint64(16)))
    return dy, dx, np.cos(angle), np.sin(angle), t, fx, fy


@plain(example=lambda d: (np.empty((2, 4), d), np.empty((2, 4, 4), d), np.ones((2, 4), d), np.arange(2), np.arange(4),
                          2, 2, 0.0, 1, 1.0, np.ones(2, d), 5.0, 0.1, 5.0, 0, 0), seconds=2.0)
@kernel(parallel=True)
def distort_gather(X, work, images, rows, pixels, R, C, background, S, alpha, taps, rotate, scale, shear, seed, step):
    """X[i, p] = image rows[i] distorted, at pixel pixels[p]; in place. work[B, 4, R*C] is
    scratch; after the call work[i, 0] and work[i, 1] hold image i's elastic displacements
    in x and y (alpha times the smoothed fields; untouched when alpha = 0).

    The source point of output pixel (y, x), relative to the image centre (cy, cx): rotate
    back by angle (uniform in +-rotate degrees), undo the shear (x -= tan(shear angle) * y,
    angle uniform in +-shear degrees), divide by the scale factors (each uniform in
    1 +- scale), add the centre, subtract the whole-pixel shift (dy, dx) and add the elastic
    displacement at (y, x)."""
    B, P = X.shape
    r = taps.size - 1
    cy = 0.5 * (R - 1)
    cx = 0.5 * (C - 1)
    for i in prange(B):
        dy, dx, c, s, t, fx, fy = draws(seed, step, i, S, rotate, scale, shear)
        ex, ey, ux, uy = work[i, 0], work[i, 1], work[i, 2], work[i, 3]
        if alpha != 0:
            row = splitmix64(splitmix64(splitmix64(splitmix64(np.uint64(seed)) ^ np.uint64(step))
                                        ^ np.uint64(ELASTIC_NODE)) ^ np.uint64(i))
            for q in range(R * C):  # the noise: unit_hash(seed, step, ELASTIC_NODE, i, q)
                h = splitmix64(row ^ np.uint64(q))
                ux[q] = uniform24(h >> np.uint64(40))
                uy[q] = uniform24(h >> np.uint64(16))
            for y in range(R):  # smooth along x into e
                for x in range(C):
                    sx, sy = 0.0, 0.0
                    for j in range(max(0, x - r), min(C, x + r + 1)):
                        sx += taps[abs(j - x)] * ux[y * C + j]
                        sy += taps[abs(j - x)] * uy[y * C + j]
                    ex[y * C + x] = sx
                    ey[y * C + x] = sy
            for y in range(R):  # then along y into u
                for x in range(C):
                    sx, sy = 0.0, 0.0
                    for k in range(max(0, y - r), min(R, y + r + 1)):
                        sx += taps[abs(k - y)] * ex[k * C + x]
                        sy += taps[abs(k - y)] * ey[k * C + x]
                    ux[y * C + x] = sx
                    uy[y * C + x] = sy
            for q in range(R * C):  # scaled, where the caller looks
                ex[q] = alpha * ux[q]
                ey[q] = alpha * uy[q]
        src = images[rows[i]]
        for p in range(P):
            q = pixels[p]
            ry = q // C - cy
            rx = q % C - cx
            u = c * rx + s * ry
            v = c * ry - s * rx
            u = (u - t * v) / fx + cx - dx
            v = v / fy + cy - dy
            if alpha != 0:
                u += ex[q]
                v += ey[q]
            x0 = np.int64(np.floor(u))
            y0 = np.int64(np.floor(v))
            wx = u - x0
            wy = v - y0
            top = (1.0 - wx) * pixel_at(src, y0, x0, R, C, background) + wx * pixel_at(src, y0, x0 + 1, R, C, background)
            bottom = (1.0 - wx) * pixel_at(src, y0 + 1, x0, R, C, background) + wx * pixel_at(src, y0 + 1, x0 + 1, R, C,
                                                                                            background)
            X[i, p] = (1.0 - wy) * top + wy * bottom
