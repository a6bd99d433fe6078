"""fastmlp.kernels: Numba kernels, arrays in and arrays out. Outputs first, then inputs.

Every kernel has a plain NumPy twin of the same name in fastmlp.kernels.reference.
"""
import os

from ._jit import CACHE_ENABLED
from ._jit import cache_dirs as _cache_dirs
from .activations import ACTIVATIONS, activation_backward, activation_forward
from .augment import shift_gather
from . import dense as _dense
from .dense import PARTS, dense_backward, dense_forward
from .dense import TALL_TILES as FUSED_HEAD
from .head import head_step
from . import matmul as _matmul
from .matmul import matmul_nn, matmul_tn
from .memory import aligned_empty, aligned_zeros
from .pixels import byte_counts, lookup_bytes
from .dropout import dropout_backward, dropout_forward
from .optim import adam_step, max_norm, momentum_step, sgd_step, weight_decay
from .softmax import (cross_entropy, softmax_cross_entropy_backward,
                      softmax_cross_entropy_forward, softmax_rows)

__all__ = [
    "ACTIVATIONS", "CACHE_ENABLED", "cache_dirs", "activation_backward", "activation_forward",
    "adam_step", "aligned_empty", "aligned_zeros", "byte_counts", "cross_entropy", "dense_backward", "dense_forward", "dropout_backward", "matmul_nn", "matmul_tn",
    "dropout_forward", "head_step", "lookup_bytes", "max_norm", "momentum_step", "sgd_step", "weight_decay",
    "softmax_cross_entropy_backward", "softmax_cross_entropy_forward", "softmax_rows", "shift_gather",
    "thread_safe",
]


def thread_safe():
    """Whether several Python threads may be inside parallel kernels at once (each has its
    own work-sharing counters, kernels/_share.py): true with Numba's omp or tbb threading
    layer, false with workqueue, its fallback where neither is installed, which aborts the
    process when two threads launch at once. Runs a tiny parallel kernel first, so that
    Numba has chosen its layer."""
    import numba
    import numpy as np
    x = np.zeros((8, 4), np.float32)
    activation_forward(x, x, 0)
    return numba.threading_layer() != "workqueue"


def cache_dirs():
    """Where Numba caches these kernels: beside the sources (kernels/__pycache__) when
    that is writable, else a per-user directory; NUMBA_CACHE_DIR overrides both."""
    return _cache_dirs([activation_backward, activation_forward, adam_step, cross_entropy,
                        _dense.column_sums, _dense.dense_forward_dot, _dense.dense_forward_tiles, head_step, _matmul.matmul,
                        dropout_backward, dropout_forward, byte_counts, lookup_bytes,
                        max_norm, momentum_step, sgd_step, weight_decay, softmax_cross_entropy_backward,
                        softmax_cross_entropy_forward, softmax_rows, shift_gather])


def cached_files(d):
    """The compiled-kernel files (.nbi index, .nbc code) in cache directory d."""
    return [os.path.join(d, f) for f in os.listdir(d) if f.endswith((".nbi", ".nbc"))] if os.path.isdir(d) else []


def clear_cache():
    """Remove every cached compiled kernel; returns {directory: files removed}."""
    removed = {}
    for d in cache_dirs():
        files = cached_files(d)
        for f in files:
            os.remove(f)
        removed[d] = len(files)
    return removed


def _dispatcher(name, dtype):
    """The compiled function behind warmup's kernel `name` for `dtype`."""
    import numpy as np
    if name == "dense_forward":
        return _dense.dense_forward_tiles if FUSED_HEAD and np.dtype(dtype) == np.float32 else _dense.dense_forward_dot
    if name == "dense_backward":
        return _matmul.matmul
    return globals()[name]


def warmup(dtype, names=None, helpers=None):
    """Compile (or load from the cache) the named kernels (default: all) for `dtype` on
    tiny arrays, with the argument types training uses, so that no compilation happens
    inside an epoch. Returns the names warmed up. helpers: processes that compile, beside
    this one, the kernels the on-disk cache lacks (kernels/_compile.py; default: one for
    each further core, at most 3; 0: none)."""
    import numpy as np
    from . import _compile
    x = np.ones((2, 3), dtype)
    w = np.ones((2, 3), dtype)
    b = np.zeros(2, dtype)
    y = np.empty((2, 2), dtype)
    t = np.eye(2, dtype=dtype)
    calls = {
        "dense_forward": lambda: dense_forward(y, x, w, b),
        "dense_backward": lambda: dense_backward(np.empty_like(x), np.empty_like(w), np.empty_like(b), y, x, w,
                                                 np.zeros(3, dtype), True),
        "activation_forward": lambda: activation_forward(y, y, 1),
        "activation_backward": lambda: activation_backward(y, y, y, y, 1),
        "softmax_rows": lambda: softmax_rows(y, y),
        "cross_entropy": lambda: cross_entropy(np.empty(2, dtype), y, t),
        "softmax_cross_entropy_forward": lambda: softmax_cross_entropy_forward(np.empty_like(y), np.empty(2, dtype), y, t),
        "softmax_cross_entropy_backward": lambda: softmax_cross_entropy_backward(y, y, t),
        "dropout_forward": lambda: dropout_forward(y, np.empty_like(y), y, 0.5, 0, 0, 0),
        "dropout_backward": lambda: dropout_backward(y, y, y),
        "sgd_step": lambda: sgd_step(b, b, 0.5),
        "momentum_step": lambda: momentum_step(b, np.zeros_like(b), b, 0.5, 0.9, False),
        "adam_step": lambda: adam_step(b, np.zeros_like(b), np.zeros_like(b), b, 0.5, 0.9, 0.999, 1e-8, 1),
        "weight_decay": lambda: weight_decay(b, b, 0.5),
        "max_norm": lambda: max_norm(w, 1.0),
        "byte_counts": lambda: byte_counts(np.zeros((2, 256), np.int64), np.zeros((2, 3), np.uint8)),
        "lookup_bytes": lambda: lookup_bytes(np.empty((2, 3), dtype), np.zeros(256, dtype), np.zeros((2, 3), np.uint8)),
        "shift_gather": lambda: shift_gather(x, np.ones((2, 4), dtype), np.arange(2), np.arange(3), 2, 2, 0.0, 1, 0, 0),
    }
    if FUSED_HEAD and np.dtype(dtype) == np.float32:  # Network.train_step's head kernel
        calls["head_step"] = lambda: head_step(y, np.empty_like(y), np.empty(2, dtype), np.empty_like(y), np.empty_like(x),
                                               np.empty_like(w), np.empty_like(b), x, w, b, t, x, 1, np.zeros(3, dtype), PARTS, True)
    names = list(calls) if names is None else list(names)
    helpers = min(_compile.cores() - 1, _compile.MOST) if helpers is None else helpers
    cold = [n for n in names if not _compile.has_code(_dispatcher(n, dtype), dtype)] if helpers > 0 and CACHE_ENABLED else []
    started = []
    if _compile.worth_helpers(cold):
        groups = _compile.split(cold, helpers + 1)
        started = _compile.start(__name__, __file__, np.dtype(dtype), groups[1:])
        try:
            for name in groups[0]:
                calls[name]()
        except BaseException:
            _compile.finish(started, stop=True)
            raise
        _compile.finish(started)
    for name in names:  # the helpers' kernels load from the cache (any they missed compile here)
        calls[name]()
    return names
