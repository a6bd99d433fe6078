"""Fast distortion: kernels/augment.py's distort_gather with the work laid out for vector
loops. The plain kernel's smoothing sums a variable band per pixel and its sampling tests
every tap against the image bounds; here each image's noise rows are padded to W (a
multiple of 16) lanes, both smoothing passes are fixed-width multiply-adds, and the source
image sits in a frame of two background pixels, so that a clamped sample point needs no
test. float32 only (float64 runs the plain kernel).
"""
import numpy as np
from numba import prange

from .._runtime.jit import kernel
from .._runtime.registry import fast
from ..augment import ELASTIC_NODE, draws, uniform24
from ..dropout import splitmix64
from ._simd import LANES, at, vfma, vload, vstore

PAD = 2  # background pixels around the source image


@kernel(inline="always")
def uniform24_f32(bits):
    """uniform24(bits) in float32, bit for bit: the 24-bit integer and the power-of-two
    scale are exact in float32, and int32 -> float32 is one vector instruction where
    uint64 -> float64 is a scalar loop on CPUs without AVX-512."""
    return np.float32(np.int32(bits & np.uint64(0xFFFFFF)) - np.int32(8388608)) * np.float32(1.0 / 8388608.0)


@fast(replaces=("distort_gather",), needs=("float32",), seconds=2.5)
@kernel(parallel=True)
def distort_gather_lanes(X, work, images, rows, pixels, R, C, background, S, alpha, taps, rotate, scale, shear,
                         seed, step):
    """Replaces distort_gather: the same draws, the same sample points up to float32
    rounding (the fields are summed in float32, in another order), and so the same
    images to within a few float32 roundings of the field times the image's gradient."""
    B, P = X.shape
    r = taps.size - 1
    W = (C + 31) // 32 * 32
    cy = 0.5 * (R - 1)
    cx = 0.5 * (C - 1)
    # The smoothing along x as a C x W matrix: gx[j * W + x] = taps[|j - x|] in the band;
    # along y the taps times alpha.
    gx = np.zeros(C * W, np.float32)
    for j in range(C):
        for x in range(max(0, j - r), min(C, j + r + 1)):
            gx[j * W + x] = taps[abs(j - x)]
    ga = np.empty(r + 1, np.float32)
    for k in range(r + 1):
        ga[k] = np.float32(alpha) * taps[k]
    identity = P == R * C  # pixels is 0, 1, ..., R*C - 1: write X's rows directly
    for p in range(P):
        if pixels[p] != p:
            identity = False
    FW = C + 2 * PAD
    # 16 chunks: each allocates its scratch once, and up to 16 threads share the work
    # (numba.get_num_threads() here would keep the kernel out of the on-disk cache).
    chunks = min(B, 16)
    for c in prange(chunks):
        ux = np.zeros(R * W, np.float32)  # the fields; they stay 0 when alpha = 0
        uy = np.zeros(R * W, np.float32)
        ex = np.empty(R * W, np.float32)
        ey = np.empty(R * W, np.float32)
        frame = np.full((R + 2 * PAD) * FW, np.float32(background))  # only its inside changes
        full = np.empty(R * C, np.float32)
        wxs = np.empty(W, np.float32)
        wys = np.empty(W, np.float32)
        ks = np.empty(W, np.int32)
        a00, a01 = np.empty(W, np.float32), np.empty(W, np.float32)  # the taps of a row's points
        a10, a11 = np.empty(W, np.float32), np.empty(W, np.float32)
        z = vload(gx, 0, 0)  # 16 zeros
        for i in range(c * B // chunks, (c + 1) * B // chunks):
            dy, dx, cs, sn, t, fx, fy = draws(seed, step, i, S, rotate, scale, shear)
            if alpha != 0:
                row = splitmix64(splitmix64(splitmix64(splitmix64(np.uint64(seed)) ^ np.uint64(step))
                                            ^ np.uint64(ELASTIC_NODE)) ^ np.uint64(i))
                for y in range(R):
                    for x in range(C):
                        hh = splitmix64(row ^ np.uint64(y * C + x))
                        ux[y * W + x] = uniform24_f32(hh >> np.uint64(40))
                        uy[y * W + x] = uniform24_f32(hh >> np.uint64(16))
                for y in range(R):  # along x: e[y] = u[y] @ gx, 32 lanes at a time
                    for b in range(0, W, 32):
                        a0, a1, b0, b1 = z, z, z, z
                        for j in range(C):
                            g0 = vload(gx, j * W + b, LANES)
                            g1 = vload(gx, j * W + b + LANES, LANES)
                            p, q = ux[y * W + j], uy[y * W + j]
                            a0, a1 = vfma(p, g0, a0), vfma(p, g1, a1)
                            b0, b1 = vfma(q, g0, b0), vfma(q, g1, b1)
                        vstore(ex, y * W + b, a0, LANES)
                        vstore(ex, y * W + b + LANES, a1, LANES)
                        vstore(ey, y * W + b, b0, LANES)
                        vstore(ey, y * W + b + LANES, b1, LANES)
                for y in range(R):  # along y, times alpha, back into u
                    for b in range(0, W, 32):
                        a0, a1, b0, b1 = z, z, z, z
                        for k in range(max(0, y - r), min(R, y + r + 1)):
                            g = ga[abs(k - y)]
                            a0 = vfma(g, vload(ex, k * W + b, LANES), a0)
                            a1 = vfma(g, vload(ex, k * W + b + LANES, LANES), a1)
                            b0 = vfma(g, vload(ey, k * W + b, LANES), b0)
                            b1 = vfma(g, vload(ey, k * W + b + LANES, LANES), b1)
                        vstore(ux, y * W + b, a0, LANES)
                        vstore(ux, y * W + b + LANES, a1, LANES)
                        vstore(uy, y * W + b, b0, LANES)
                        vstore(uy, y * W + b + LANES, b1, LANES)
                for y in range(R):
                    for x in range(C):
                        work[i, 0, y * C + x] = ux[y * W + x]
                        work[i, 1, y * C + x] = uy[y * W + x]
            src = images[rows[i]]
            for y in range(R):
                for x in range(C):
                    frame[(y + PAD) * FW + x + PAD] = src[y * C + x]
            # Sample point of (y, x): u = u0 + du * x + ux[y, x], v likewise, in float32.
            du = np.float32((cs + t * sn) / fx)
            dv = np.float32(-sn / fy)
            hi_u = np.float32(C)
            hi_v = np.float32(R)
            lo = np.float32(-2.0)
            fw = np.int32(FW)
            one = np.float32(1.0)
            out = X[i] if identity else full
            for y in range(R):
                ry = y - cy
                u0 = np.float32((sn * ry - t * (cs * ry + sn * cx)) / fx - cs * cx / fx + cx - dx)
                v0 = np.float32((cs * ry + sn * cx) / fy + cy - dy)
                for x in range(W):  # the arithmetic, a vector loop (lanes past C unused)
                    u = min(max(u0 + du * np.float32(x) + ux[y * W + x], lo), hi_u)
                    v = min(max(v0 + dv * np.float32(x) + uy[y * W + x], lo), hi_v)
                    xf = np.floor(u)
                    yf = np.floor(v)
                    wxs[x] = u - xf
                    wys[x] = v - yf
                    ks[x] = (np.int32(yf) + PAD) * fw + np.int32(xf) + PAD
                for x in range(C):  # the four taps: scalar loads (AVX2's gathers are slower)
                    k = ks[x]
                    a00[x] = at(frame, k)
                    a01[x] = at(frame, k + 1)
                    a10[x] = at(frame, k + fw)
                    a11[x] = at(frame, k + fw + 1)
                for x in range(C):  # and their mix, a vector loop
                    top = (one - wxs[x]) * a00[x] + wxs[x] * a01[x]
                    bottom = (one - wxs[x]) * a10[x] + wxs[x] * a11[x]
                    out[y * C + x] = (one - wys[x]) * top + wys[x] * bottom
            if not identity:
                for p in range(P):
                    X[i, p] = full[pixels[p]]
