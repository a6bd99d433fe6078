"""Plain NumPy twins of every kernel: same names, float64, written as plainly as possible.

Each takes the kernel's inputs and returns its outputs (the kernels write into arrays
they are given instead). Shapes as in the kernel modules: B batch, D in, H out, K classes.
Tests hold every kernel to these; they are also the place to read what a kernel means.
"""
import numpy as np


def _f64(*arrays):
    return [np.asarray(a, dtype=np.float64) for a in arrays]


# --- dense ---------------------------------------------------------------------------
def dense_forward(X, W, b):
    X, W, b = _f64(X, W, b)
    return X @ W.T + b


def dense_backward(dY, X, W):
    """Returns (dX, dW, db)."""
    dY, X, W = _f64(dY, X, W)
    return dY @ W, dY.T @ X, dY.sum(axis=0)


def bf16(a):
    """float32 values rounded to the nearest bfloat16 (ties to even), as float32; NaN kept."""
    a = np.asarray(a, np.float32)
    bits = a.view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(a), a, rounded)


def dense_forward_bf16(X, W, b):
    """dense_forward on the factors rounded to bfloat16, in float64."""
    X, W = (bf16(a).astype(np.float64) for a in (X, W))
    (b,) = _f64(b)
    return X @ W.T + b


def dense_backward_bf16(dY, X, W):
    """Returns (dX, dW, db): dense_backward's products on bfloat16 factors, db from dY as given."""
    g, x, w = (bf16(a).astype(np.float64) for a in (dY, X, W))
    return g @ w, g.T @ x, _f64(dY)[0].sum(axis=0)


def matmul_nn(A, B, bias):
    A, B, bias = _f64(A, B, bias)
    return bias + A @ B


def matmul_tn(A, B, bias):
    A, B, bias = _f64(A, B, bias)
    return bias + A.T @ B


# --- activations: name -> (f(z), df(z, a)) --------------------------------------------
def _sigmoid(z):
    e = np.exp(-np.abs(z))  # never overflows
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


ACTIVATIONS = {
    "identity": (lambda z: z, lambda z, a: np.ones_like(z)),
    "sigmoid": (_sigmoid, lambda z, a: a * (1 - a)),
    "tanh": (np.tanh, lambda z, a: 1 - a * a),
    "relu": (lambda z: np.where(z > 0, z, 0.0) + 0 * z,  # + 0 * z keeps NaN as NaN
             lambda z, a: (z > 0).astype(np.float64)),
    "shifted_relu": (lambda z: np.where(z > -1, z, -1.0) + 0 * z,
                     lambda z, a: (z > -1).astype(np.float64)),
}


def activation_forward(Z, name):
    (Z,) = _f64(Z)
    with np.errstate(invalid="ignore"):
        return ACTIVATIONS[name][0](Z)


def activation_backward(dA, Z, A, name):
    dA, Z, A = _f64(dA, Z, A)
    return dA * ACTIVATIONS[name][1](Z, A)


# --- softmax and cross-entropy --------------------------------------------------------
def softmax_rows(Z):
    (Z,) = _f64(Z)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def cross_entropy(Z, T):
    """Returns (per-row losses, their mean), from logits by log-sum-exp."""
    Z, T = _f64(Z, T)
    shifted = Z - Z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    L = -np.sum(np.where(T != 0, T * log_p, 0.0), axis=1)
    return L, L.mean()


def softmax_cross_entropy_forward(Z, T):
    """Returns (P, per-row losses, mean loss)."""
    L, mean = cross_entropy(Z, T)
    return softmax_rows(Z), L, mean


def softmax_cross_entropy_backward(P, T):
    P, T = _f64(P, T)
    return (P - T) / P.shape[0]


def head_step(X, W, b, T):
    """The classifier head's step (kernels/head.py): returns (Z, P, L, mean loss, dZ, dX,
    dW, db), the dense layer, softmax and loss twins one after another."""
    Z = dense_forward(X, W, b)
    P, L, mean = softmax_cross_entropy_forward(Z, T)
    dZ = softmax_cross_entropy_backward(P, T)
    dX, dW, db = dense_backward(dZ, X, W)
    return Z, P, L, mean, dZ, dX, dW, db


def masked_log_loss(Y, y_hat):
    """The book's loss with a masked log: -sum(Y * log(y_hat)) / N, skipping y_hat == 0."""
    return -np.sum(Y * np.ma.log(y_hat)) / Y.shape[0]


# --- optimizers -----------------------------------------------------------------------
def sgd_step(p, g, lr):
    p, g = _f64(p, g)
    return p - lr * g


def momentum_step(p, v, g, lr, mu, nesterov):
    """Returns (p, v)."""
    p, v, g = _f64(p, v, g)
    v = mu * v + g
    return (p - lr * (g + mu * v) if nesterov else p - lr * v), v


def adam_step(p, m, v, g, lr, beta1, beta2, eps, t):
    """Returns (p, m, v)."""
    p, m, v, g = _f64(p, m, v, g)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat, v_hat = m / (1 - beta1 ** t), v / (1 - beta2 ** t)
    return p - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def weight_decay(g, p, decay):
    g, p = _f64(g, p)
    return g + decay * p


def max_norm(W, c):
    (W,) = _f64(W)
    norms = np.sqrt((W * W).sum(axis=1, keepdims=True))
    return np.where(norms > c, W * (c / np.where(norms > 0, norms, 1.0)), W)


# --- dropout --------------------------------------------------------------------------
_M64 = (1 << 64) - 1


def splitmix64(z):
    """splitmix64 on Python integers (exact, no overflow games)."""
    z = (int(z) + 0x9E3779B97F4A7C15) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


def unit_hash(seed, step, node, row, col):
    h = splitmix64(seed)
    for part in (step, node, row, col):
        h = splitmix64(h ^ part)
    return h


def dropout_mask(seed, step, node, B, H, p):
    """The kept-unit scale M[B, H]: 1/(1-p) where hash >> 40 >= p * 2**24, else 0."""
    threshold = int(p * 16777216.0)
    keep = np.array([[unit_hash(seed, step, node, i, j) >> 40 >= threshold for j in range(H)]
                     for i in range(B)])
    return np.where(keep, 1.0 / (1.0 - p), 0.0)


def dropout_forward(X, p, seed, step, node):
    """Returns (Y, M)."""
    (X,) = _f64(X)
    M = dropout_mask(seed, step, node, X.shape[0], X.shape[1], p)
    return X * M, M


def dropout_backward(dY, M):
    dY, M = _f64(dY, M)
    return dY * M


# --- augmentation ---------------------------------------------------------------------
SHIFT_NODE = 0xFFFFFFFF


def shift_offsets(seed, step, B, S):
    """(dy, dx) for each batch row: uniform in -S..S from hash(seed, step, SHIFT_NODE, i, 0)."""
    out = []
    for i in range(B):
        h = unit_hash(seed, step, SHIFT_NODE, i, 0)
        out.append(((h % (2 * S + 1)) - S, ((h >> 32) % (2 * S + 1)) - S))
    return out


def shift_gather(images, rows, pixels, R, C, background, S, seed, step):
    """Images rows[i] moved down by dy and right by dx (blank pixels = background), then
    the columns `pixels` kept; returns X[B, P]."""
    (images,) = _f64(images)
    X = np.empty((len(rows), len(pixels)))
    for i, (dy, dx) in enumerate(shift_offsets(seed, step, len(rows), S)):
        moved = np.full((R + 2 * S, C + 2 * S), float(background))
        moved[S + dy:S + dy + R, S + dx:S + dx + C] = images[rows[i]].reshape(R, C)
        X[i] = moved[S:S + R, S:S + C].ravel()[pixels]
    return X


ELASTIC_NODE = 0xFFFFFFFE
AFFINE_NODE = 0xFFFFFFFD


def _uniform24(bits):
    return float(bits & 0xFFFFFF) / 8388608.0 - 1.0


def _splitmix64_array(z):
    """splitmix64 of a uint64 array (NumPy's uint64 arithmetic wraps, as the kernel's)."""
    with np.errstate(over="ignore"):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def gaussian_matrix(n, taps):
    """G[a, b] = taps[|a - b|] where |a - b| < len(taps), else 0: smoothing along an axis of
    n pixels with zero outside."""
    d = np.abs(np.subtract.outer(np.arange(n), np.arange(n)))
    g = np.zeros((n, n))
    near = d < len(taps)
    g[near] = np.asarray(taps, np.float64)[d[near]]
    return g


def elastic_fields(seed, step, B, R, C, alpha, taps):
    """(ex, ey)[B, R*C]: alpha * G_y U G_x for the noise U = uniform24 of the top and the
    middle 24 bits of unit_hash(seed, step, ELASTIC_NODE, i, pixel)."""
    ex, ey = np.empty((B, R * C)), np.empty((B, R * C))
    gy, gx = gaussian_matrix(R, taps), gaussian_matrix(C, taps)
    for i in range(B):
        row = splitmix64(seed)
        for part in (step, ELASTIC_NODE, i):
            row = splitmix64(row ^ part)
        h = _splitmix64_array(np.uint64(row) ^ np.arange(R * C, dtype=np.uint64))
        ux = ((h >> np.uint64(40)) & np.uint64(0xFFFFFF)).astype(np.float64) / 8388608.0 - 1.0
        uy = ((h >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.float64) / 8388608.0 - 1.0
        ex[i] = alpha * (gy @ ux.reshape(R, C) @ gx.T).ravel()
        ey[i] = alpha * (gy @ uy.reshape(R, C) @ gx.T).ravel()
    return ex, ey


def affine_draws(seed, step, i, rotate, scale, shear):
    """(angle in radians, x scale, y scale, shear tangent) of batch row i."""
    h0 = unit_hash(seed, step, AFFINE_NODE, i, 0)
    h1 = unit_hash(seed, step, AFFINE_NODE, i, 1)
    deg = np.pi / 180
    return (rotate * deg * _uniform24(h0 >> 40), 1 + scale * _uniform24(h0 >> 16),
            1 + scale * _uniform24(h1 >> 40), np.tan(shear * deg * _uniform24(h1 >> 16)))


def distort_gather(images, rows, pixels, R, C, background, S, alpha, taps, rotate, scale, shear, seed, step):
    """(X[B, P], ex, ey): images rows[i] affinely and elastically distorted, shifted by
    shift_offsets, sampled bilinearly (blank = background), then the columns `pixels`."""
    (images,) = _f64(images)
    B = len(rows)
    ex, ey = elastic_fields(seed, step, B, R, C, alpha, taps) if alpha != 0 else (np.zeros((B, R * C)),) * 2
    y, x = np.divmod(np.arange(R * C), C)
    ry, rx = y - (R - 1) / 2, x - (C - 1) / 2
    X = np.empty((B, len(pixels)))
    for i, (dy, dx) in enumerate(shift_offsets(seed, step, B, S)):
        angle, fx, fy, t = affine_draws(seed, step, i, rotate, scale, shear)
        c, s = np.cos(angle), np.sin(angle)
        u, v = c * rx + s * ry, c * ry - s * rx
        u = (u - t * v) / fx + (C - 1) / 2 - dx + ex[i]
        v = v / fy + (R - 1) / 2 - dy + ey[i]
        x0, y0 = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        wx, wy = u - x0, v - y0
        padded = np.full((R + 2, C + 2), float(background))
        padded[1:-1, 1:-1] = images[rows[i]].reshape(R, C)

        def at(yy, xx):
            inside = (yy >= 0) & (yy < R) & (xx >= 0) & (xx < C)
            return np.where(inside, padded[np.clip(yy, -1, R) + 1, np.clip(xx, -1, C) + 1], background)
        out = (1 - wy) * ((1 - wx) * at(y0, x0) + wx * at(y0, x0 + 1)) + wy * ((1 - wx) * at(y0 + 1, x0) + wx * at(y0 + 1, x0 + 1))
        X[i] = out[pixels]
    return X, ex, ey


def byte_counts(a, parts):
    """counts[p, v]: entries equal to v among the flat entries p * n // parts to
    (p + 1) * n // parts - 1 of a."""
    flat, n = a.ravel(), a.size
    return np.stack([np.bincount(flat[p * n // parts:(p + 1) * n // parts], minlength=256)
                     for p in range(parts)]).astype(np.int64)


def lookup_bytes(table, a):
    return table[a]


# --- layer normalisation ---------------------------------------------------------------
def layernorm_forward(X, gain, bias, eps):
    """Returns (Y, Xhat, R)."""
    X, gain, bias = _f64(X, gain, bias)
    mu = X.mean(axis=1, keepdims=True)
    R = 1 / np.sqrt(((X - mu) ** 2).mean(axis=1) + eps)
    Xhat = (X - mu) * R[:, None]
    return gain * Xhat + bias, Xhat, R


def layernorm_backward(dY, Xhat, R, gain):
    """Returns (dX, dgain, dbias)."""
    dY, Xhat, R, gain = _f64(dY, Xhat, R, gain)
    g = dY * gain
    dX = R[:, None] * (g - g.mean(axis=1, keepdims=True) - Xhat * (g * Xhat).mean(axis=1, keepdims=True))
    return dX, (dY * Xhat).sum(axis=0), dY.sum(axis=0)


# --- mean squared error on the softmax output ------------------------------------------
def mse_softmax_forward(Z, T):
    """Returns (P, L, mean of L)."""
    P = softmax_rows(Z)
    (T,) = _f64(T)
    L = ((P - T) ** 2).sum(axis=1)
    return P, L, L.mean()


def mse_softmax_backward(P, T):
    P, T = _f64(P, T)
    g = 2 * (P - T) / P.shape[0]
    return P * (g - (P * g).sum(axis=1, keepdims=True))

