"""Dense (fully connected) layer: Y = X Wᵀ + b, and its gradients dW, db, dX.

Shapes: B batch, D inputs, H outputs.  X[B, D], W[H, D], b[H], Y[B, H].
W holds one row per output unit, so the forward pass and dW both read their operands
along the contiguous axis. Every output element is owned by one prange iteration and
summed in a fixed order: results do not depend on the thread count.
"""
from numba import prange

from ._jit import FAST, kernel


@kernel(parallel=True, fastmath=FAST)
def dense_forward(Y, X, W, b):
    """Y[i, j] = b[j] + sum_k X[i, k] W[j, k], in place. Y must not alias X."""
    B, D = X.shape
    H = W.shape[0]
    # Threads own blocks of 4 output units: their 4 rows of W stay in L1 while the batch
    # streams past from L2 (W of a wide layer does not fit in L2; a batch of inputs does).
    for jb in prange((H + 3) // 4):
        j = 4 * jb
        if j + 4 <= H:
            i = 0
            while i + 4 <= B:
                # 4x4 register tile: 16 accumulators, both operands read along k.
                s00 = b[j]; s01 = b[j + 1]; s02 = b[j + 2]; s03 = b[j + 3]
                s10 = b[j]; s11 = b[j + 1]; s12 = b[j + 2]; s13 = b[j + 3]
                s20 = b[j]; s21 = b[j + 1]; s22 = b[j + 2]; s23 = b[j + 3]
                s30 = b[j]; s31 = b[j + 1]; s32 = b[j + 2]; s33 = b[j + 3]
                for k in range(D):
                    x0 = X[i, k]; x1 = X[i + 1, k]; x2 = X[i + 2, k]; x3 = X[i + 3, k]
                    w0 = W[j, k]; w1 = W[j + 1, k]; w2 = W[j + 2, k]; w3 = W[j + 3, k]
                    s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3
                    s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3
                    s20 += x2 * w0; s21 += x2 * w1; s22 += x2 * w2; s23 += x2 * w3
                    s30 += x3 * w0; s31 += x3 * w1; s32 += x3 * w2; s33 += x3 * w3
                Y[i, j] = s00; Y[i, j + 1] = s01; Y[i, j + 2] = s02; Y[i, j + 3] = s03
                Y[i + 1, j] = s10; Y[i + 1, j + 1] = s11; Y[i + 1, j + 2] = s12; Y[i + 1, j + 3] = s13
                Y[i + 2, j] = s20; Y[i + 2, j + 1] = s21; Y[i + 2, j + 2] = s22; Y[i + 2, j + 3] = s23
                Y[i + 3, j] = s30; Y[i + 3, j + 1] = s31; Y[i + 3, j + 2] = s32; Y[i + 3, j + 3] = s33
                i += 4
            while i < B:
                # Leftover batch rows: a 1x4 tile.
                s0 = b[j]; s1 = b[j + 1]; s2 = b[j + 2]; s3 = b[j + 3]
                for k in range(D):
                    x = X[i, k]
                    s0 += x * W[j, k]; s1 += x * W[j + 1, k]; s2 += x * W[j + 2, k]; s3 += x * W[j + 3, k]
                Y[i, j] = s0; Y[i, j + 1] = s1; Y[i, j + 2] = s2; Y[i, j + 3] = s3
                i += 1
        else:
            # Leftover output units (fewer than 4): plain dot products.
            for u in range(j, H):
                for i in range(B):
                    s = b[u]
                    for k in range(D):
                        s += X[i, k] * W[u, k]
                    Y[i, u] = s


@kernel(parallel=True, fastmath=FAST)
def dense_backward(dX, dW, db, dY, X, W, input_grad):
    """Gradients of Y = X Wᵀ + b given dY[B, H]; overwrites dW[H, D], db[H] and,
    when input_grad is true, dX[B, D] (the first layer skips it: nothing needs it)."""
    B, D = X.shape
    H = W.shape[0]
    # dW = dYᵀ X and db = column sums of dY. Threads own blocks of 8 rows of dW; each
    # thread sums the batch in order, 8 rows at a time, so the 8 rows of X it reads
    # stay in L1 while they update the block's 8 rows of dW (one store stream each).
    for jb in prange((H + 7) // 8):
        j0 = 8 * jb
        j1 = min(j0 + 8, H)
        for j in range(j0, j1):
            s = dY[0, j]
            for r in range(1, B):
                s += dY[r, j]
            db[j] = s
            for k in range(D):
                dW[j, k] = 0.0
        i = 0
        while i + 8 <= B:
            x0 = X[i]; x1 = X[i + 1]; x2 = X[i + 2]; x3 = X[i + 3]
            x4 = X[i + 4]; x5 = X[i + 5]; x6 = X[i + 6]; x7 = X[i + 7]
            for j in range(j0, j1):
                a0 = dY[i, j]; a1 = dY[i + 1, j]; a2 = dY[i + 2, j]; a3 = dY[i + 3, j]
                a4 = dY[i + 4, j]; a5 = dY[i + 5, j]; a6 = dY[i + 6, j]; a7 = dY[i + 7, j]
                w = dW[j]
                for k in range(D):
                    w[k] += (a0 * x0[k] + a1 * x1[k] + a2 * x2[k] + a3 * x3[k]
                             + a4 * x4[k] + a5 * x5[k] + a6 * x6[k] + a7 * x7[k])
            i += 8
        while i < B:
            for j in range(j0, j1):
                a0 = dY[i, j]
                for k in range(D):
                    dW[j, k] += a0 * X[i, k]
            i += 1
    if input_grad:
        # dX = dY W. Tasks own a block of 32 batch rows by 128 input columns, so the
        # slice of W they read (H x 128) is reused from L2 by all 32 rows; within a row
        # the output units are summed 4 at a time, in order.
        nk = (D + 127) // 128
        for task in prange(((B + 31) // 32) * nk):
            r0 = (task // nk) * 32
            k0 = (task % nk) * 128
            k1 = min(k0 + 128, D)
            n = k1 - k0
            for r in range(r0, min(r0 + 32, B)):
                x = dX[r, k0:k1]
                for k in range(n):
                    x[k] = 0.0
                j = 0
                while j + 4 <= H:
                    a0 = dY[r, j]; a1 = dY[r, j + 1]; a2 = dY[r, j + 2]; a3 = dY[r, j + 3]
                    w0 = W[j, k0:k1]; w1 = W[j + 1, k0:k1]; w2 = W[j + 2, k0:k1]; w3 = W[j + 3, k0:k1]
                    for k in range(n):
                        x[k] += a0 * w0[k] + a1 * w1[k] + a2 * w2[k] + a3 * w3[k]
                    j += 4
                while j < H:
                    a0 = dY[r, j]
                    w0 = W[j, k0:k1]
                    for k in range(n):
                        x[k] += a0 * w0[k]
                    j += 1
