"""Fast distortion: kernels/augment.py's distort_gather with the work laid out for vector
loops. The plain kernel's smoothing sums a variable band per pixel and its sampling tests
every tap against the image bounds; here both smoothing passes are fixed-width
multiply-adds over rows padded to W (a multiple of 32) lanes, the second pass writes the
fields straight into work, and the source image sits in a frame of two background pixels,
so that a clamped sample point needs no test. Indices that cannot be negative are read
with at(): Numba's test for a negative index (a select per element) keeps LLVM from
vectorising a loop. The next image's pixels are asked for from memory while the current
one is made: a random training image is rarely in any cache. float32 only (float64 runs
the plain kernel).
"""
import numpy as np
from numba import prange

from .._runtime.jit import kernel
from .._runtime.registry import fast
from ..augment import ELASTIC_NODE, draws
from ..dropout import splitmix64
from ._simd import LANES, address, at, prefetch, vfma, vload, vstore

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
    xs = np.arange(W).astype(np.float32)  # the lane's x in float32: int64 -> float32 is scalar code on AVX2
    # The sampling reads 32 lanes of a row of the fields from work[i] (planes 0 and 1, rows
    # of C): up to W - C past the last row of plane 1, still inside work[i]. With alpha = 0
    # it reads zeros instead (work stays untouched).
    zeros = np.zeros(2 * R * C + W, np.float32)
    # The frame's rows as whole vectors (FW = 2 LANES, MNIST's 28 x 28): the last lanes of a
    # row's load are the background of the frame's right edge and the next row's left edge.
    whole = FW == 2 * LANES and C > LANES
    edge = np.zeros(LANES, np.float32)
    for l in range(C - LANES, LANES):
        edge[l] = background
    # 16 chunks: each allocates its scratch once, and up to 16 threads share the work
    # (numba.get_num_threads() here would keep the kernel out of the on-disk cache).
    chunks = min(B, 16)
    per = (R * C + 16 * R - 1) // (16 * R)  # cache lines of 16 pixels to ask for a row
    for c in prange(chunks):
        nx = np.empty(R * C, np.float32)  # the noise
        ny = np.empty(R * C, np.float32)
        ex = np.empty(R * W, np.float32)  # smoothed along x
        ey = np.empty(R * W, np.float32)
        frame = np.full((R + 2 * PAD) * FW, np.float32(background))  # only its inside changes
        full = np.empty(R * C, np.float32)
        u0s = np.empty(R, np.float32)
        v0s = np.empty(R, np.float32)
        wxs = np.empty(W, np.float32)
        wys = np.empty(W, np.float32)
        ks = np.empty(W, np.int32)
        a00, a01 = np.empty(W, np.float32), np.empty(W, np.float32)  # the taps of a row's points
        a10, a11 = np.empty(W, np.float32), np.empty(W, np.float32)
        z = vload(gx, 0, 0)  # 16 zeros
        first, end = c * B // chunks, (c + 1) * B // chunks
        for i in range(first, end):
            # The next image is asked for from memory a few cache lines a row while this
            # one is sampled (all at once, they would wait for each other).
            ahead = address(images[rows[min(i + 1, end - 1)]])
            dy, dx, cs, sn, t, fx, fy = draws(seed, step, i, S, rotate, scale, shear)
            fl = zeros
            if alpha != 0:
                fl = work[i].reshape(work.shape[1] * work.shape[2])
                row = splitmix64(splitmix64(splitmix64(splitmix64(np.uint64(seed)) ^ np.uint64(step))
                                            ^ np.uint64(ELASTIC_NODE)) ^ np.uint64(i))
                for q in range(R * C):
                    hh = splitmix64(row ^ np.uint64(q))
                    nx[q] = uniform24_f32(hh >> np.uint64(40))
                    ny[q] = uniform24_f32(hh >> np.uint64(16))
                for y in range(R):  # along x: e[y] = n[y] @ gx, 32 lanes at a time
                    for b in range(0, W, 32):
                        a0, a1, b0, b1 = z, z, z, z
                        for j in range(C):
                            g0 = vload(gx, j * W + b, LANES)
                            g1 = vload(gx, j * W + b + LANES, LANES)
                            p, q = nx[y * C + j], ny[y * C + j]
                            a0, a1 = vfma(p, g0, a0), vfma(p, g1, a1)
                            b0, b1 = vfma(q, g0, b0), vfma(q, g1, b1)
                        vstore(ex, y * W + b, a0, LANES)
                        vstore(ex, y * W + b + LANES, a1, LANES)
                        vstore(ey, y * W + b, b0, LANES)
                        vstore(ey, y * W + b + LANES, b1, LANES)
                for y in range(R):  # along y, times alpha, into work[i]'s planes 0 and 1
                    for b in range(0, W, 32):
                        a0, a1, b0, b1 = z, z, z, z
                        for k in range(max(0, y - r), min(R, y + r + 1)):
                            g = ga[abs(k - y)]
                            a0 = vfma(g, vload(ex, k * W + b, LANES), a0)
                            a1 = vfma(g, vload(ex, k * W + b + LANES, LANES), a1)
                            b0 = vfma(g, vload(ey, k * W + b, LANES), b0)
                            b1 = vfma(g, vload(ey, k * W + b + LANES, LANES), b1)
                        # Lanes past the row land on later rows (written after) or, at the
                        # end of a plane, are left out.
                        o = y * C + b
                        left = R * C - o
                        if left >= 2 * LANES:
                            vstore(fl, o, a0, LANES)
                            vstore(fl, o + LANES, a1, LANES)
                            vstore(fl, R * C + o, b0, LANES)
                            vstore(fl, R * C + o + LANES, b1, LANES)
                        else:
                            vstore(fl, o, a0, min(LANES, left))
                            vstore(fl, o + LANES, a1, max(0, left - LANES))
                            vstore(fl, R * C + o, b0, min(LANES, left))
                            vstore(fl, R * C + o + LANES, b1, max(0, left - LANES))
            src = images[rows[i]]
            if whole:
                for y in range(R):
                    o = (y + PAD) * FW + PAD
                    vstore(frame, o, vload(src, y * C, LANES), LANES)
                    rest = vload(src, y * C + LANES, C - LANES)  # lanes past C read as 0
                    vstore(frame, o + LANES, vfma(np.float32(1.0), rest, vload(edge, 0, LANES)), LANES)
            else:
                for y in range(R):
                    for x in range(C):
                        frame[(y + PAD) * FW + x + PAD] = src[y * C + x]
            # Sample point of (y, x): u = u0 + du * x + field, v likewise, in float32.
            du = np.float32((cs + t * sn) / fx)
            dv = np.float32(-sn / fy)
            for y in range(R):  # rows apart, so that their divisions overlap
                ry = y - cy
                u0s[y] = np.float32((sn * ry - t * (cs * ry + sn * cx)) / fx - cs * cx / fx + cx - dx)
                v0s[y] = np.float32((cs * ry + sn * cx) / fy + cy - dy)
            hi_u = np.float32(C)
            hi_v = np.float32(R)
            lo = np.float32(-2.0)
            fw = np.int32(FW)
            one = np.float32(1.0)
            out = X[i] if identity else full
            for y in range(R):
                for m in range(per):
                    prefetch(ahead, min((y * per + m) * 16, R * C - 1))
                u0 = u0s[y]
                v0 = v0s[y]
                for x in range(W):  # the arithmetic, a vector loop (lanes past C unused)
                    u = min(max(u0 + du * xs[x] + at(fl, y * C + x), lo), hi_u)
                    v = min(max(v0 + dv * xs[x] + at(fl, R * C + y * C + x), lo), hi_v)
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
