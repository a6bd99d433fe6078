"""Dense (fully connected) layer: Y = X Wᵀ + b, and its gradients dW, db, dX.

Shapes: B batch, D inputs, H outputs.  X[B, D], W[H, D] (one row per output unit), b[H],
Y[B, H], dY[B, H]; dX[B, D], dW[H, D], db[H].
    forward   Y[i, j] = b[j] + sum_k X[i, k] W[j, k]
    backward  dW[j, k] = sum_i dY[i, j] X[i, k]    db[j] = sum_i dY[i, j]
              dX[i, k] = sum_j dY[i, j] W[j, k]    (only when a layer below needs it)
Plain loops: every output element is owned by one prange iteration and summed in index
order, so the results do not depend on the thread count. The fast layer's tiles
(kernels/fast/dense.py) compute the same sums in another order.

dense_forward_bf16 and dense_backward_bf16 are the same loops with every product's two
factors rounded to bfloat16 first (bf16, kernels/_math.py) and the sums kept in float32:
the arithmetic of bfloat16 product units (AMX tiles, AVX512-BF16), written out so that
kernels using them have a plain op to be held to. float32 only; the bias and db are not
products and stay float32.
"""
import numpy as np
from numba import prange

from ._math import bf16, like
from ._runtime.jit import kernel
from ._runtime.registry import plain


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 3), d), np.ones((2, 3), d), np.zeros(2, d)))
@kernel(parallel=True)
def dense_forward(Y, X, W, b):
    """Y = X Wᵀ + b, in place; Y must not alias X. ValueError for shapes that do not fit."""
    B, D = X.shape
    H = W.shape[0]
    if W.shape[1] != D or Y.shape[0] != B or Y.shape[1] != H or b.shape[0] != H:
        raise ValueError("dense_forward: the shapes of Y, X, W and b do not fit")
    for i in prange(B):
        for j in range(H):
            s = b[j]
            for k in range(D):
                s += X[i, k] * W[j, k]
            Y[i, j] = s


@plain(example=lambda d: (np.empty((2, 3), d), np.empty((2, 3), d), np.empty(2, d), np.ones((2, 2), d),
                         np.ones((2, 3), d), np.ones((2, 3), d), np.zeros(3, d), True))
@kernel(parallel=True)
def dense_backward(dX, dW, db, dY, X, W, zeros, input_grad):
    """Overwrites dW, db and, when input_grad is true, dX (the first layer skips it:
    nothing needs it). zeros: at least D zeros (the fast layer's products start from
    them; unused here, kept so that both layers take the same arguments). Each sum runs
    over i (or j) in order; the loops are nested so that the innermost one walks a row."""
    B, D = X.shape
    H = W.shape[0]
    zero = like(dY, 0.0)  # sums in the arrays' dtype, as the fast layer's
    for j in prange(H):
        s = zero
        for k in range(D):
            dW[j, k] = zero
        for i in range(B):
            g = dY[i, j]
            s += g
            for k in range(D):
                dW[j, k] += g * X[i, k]
        db[j] = s
    if input_grad:
        for i in prange(B):
            for k in range(D):
                dX[i, k] = zero
            for j in range(H):
                g = dY[i, j]
                for k in range(D):
                    dX[i, k] += g * W[j, k]


@plain(example=lambda d: (np.empty((2, 2), d), np.ones((2, 3), d), np.ones((2, 3), d), np.zeros(2, d)),
       dtypes=("float32",))
@kernel(parallel=True)
def dense_forward_bf16(Y, X, W, b):
    """Y = bf16(X) bf16(W)ᵀ + b, in place, summed in float32; Y must not alias X."""
    B, D = X.shape
    H = W.shape[0]
    if W.shape[1] != D or Y.shape[0] != B or Y.shape[1] != H or b.shape[0] != H:
        raise ValueError("dense_forward_bf16: the shapes of Y, X, W and b do not fit")
    for i in prange(B):
        for j in range(H):
            s = b[j]
            for k in range(D):
                s += bf16(X[i, k]) * bf16(W[j, k])
            Y[i, j] = s


@plain(example=lambda d: (np.empty((2, 3), d), np.empty((2, 3), d), np.empty(2, d), np.ones((2, 2), d),
                         np.ones((2, 3), d), np.ones((2, 3), d), np.zeros(3, d), True), dtypes=("float32",))
@kernel(parallel=True)
def dense_backward_bf16(dX, dW, db, dY, X, W, zeros, input_grad):
    """dense_backward with bfloat16 factors: dW = bf16(dY)ᵀ bf16(X), dX = bf16(dY) bf16(W)
    (when input_grad), db = the column sums of dY in float32."""
    B, D = X.shape
    H = W.shape[0]
    zero = like(dY, 0.0)
    for j in prange(H):
        s = zero
        for k in range(D):
            dW[j, k] = zero
        for i in range(B):
            s += dY[i, j]
            g = bf16(dY[i, j])
            for k in range(D):
                dW[j, k] += g * bf16(X[i, k])
        db[j] = s
    if input_grad:
        for i in prange(B):
            for k in range(D):
                dX[i, k] = zero
            for j in range(H):
                g = bf16(dY[i, j])
                for k in range(D):
                    dX[i, k] += g * bf16(W[j, k])
