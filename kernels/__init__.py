"""fastmlp.kernels: Numba kernels, arrays in and arrays out. Outputs first, then inputs.

Two layers. The plain layer (kernels/*.py: dense, activations, losses, dropout, optim,
augment, norm) is the algorithm, and its functions are the names imported here; each has a
NumPy twin of the same name in fastmlp.kernels.reference. The fast layer (kernels/fast/)
holds tuned replacements, and kernels/dispatch.py decides which implementation runs for
each op on this machine (`fastmlp kernels` prints its table). The registry
(kernels/_runtime/registry.py) lists them all.
"""
import os
import threading

from ._runtime.jit import CACHE_ENABLED
from ._runtime.jit import cache_dirs as _cache_dirs
from ._runtime.memory import aligned_empty, aligned_zeros
from ._runtime.registry import KERNELS
from . import activations, augment, dense, dropout, losses, norm, optim, pixels  # noqa: F401  (they declare their kernels)
from .activations import ACTIVATIONS
from . import fast  # noqa: F401  (declares the fast layer)
from . import dispatch
from .fast._share import PARTS
from .fast.head import head_step
from .fast.matmul import matmul_nn, matmul_tn

# Every plain and data kernel in the registry is a public name (a kernel added to a plain
# module is importable from fastmlp.kernels without further lists).
globals().update({name: k.run for name, k in KERNELS.items() if k.layer != "fast"})
__all__ = sorted([name for name, k in KERNELS.items() if k.layer != "fast"]) + [
    "ACTIVATIONS", "CACHE_ENABLED", "KERNELS", "aligned_empty", "aligned_zeros", "cache_dirs", "dispatch",
    "head_step", "matmul_nn", "matmul_tn", "thread_safe", "warmup"]


_PROBE = threading.Lock()
_SAFE = []


def thread_safe():
    """Whether several Python threads may be inside parallel kernels at once (each has its
    own work-sharing counters, kernels/fast/_share.py): true with Numba's omp or tbb
    threading layer, false with workqueue, its fallback where neither is installed, which
    aborts the process when two threads launch at once. The first call runs a tiny
    parallel kernel, so that Numba has chosen its layer, under a lock (two threads probing
    at once would be just that abort)."""
    with _PROBE:
        if not _SAFE:
            import numba
            import numpy as np
            x = np.zeros((8, 4), np.float32)
            activation_forward(x, x, 0)
            _SAFE.append(numba.threading_layer() != "workqueue")
    return _SAFE[0]


def cache_dirs():
    """Where Numba caches these kernels: beside the sources (kernels/__pycache__ and
    kernels/fast/__pycache__) when that is writable, else a per-user directory;
    NUMBA_CACHE_DIR overrides both."""
    return _cache_dirs([d for k in KERNELS.values() for d in k.compiled])


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


def _implementations(names, dtype):
    """Registry names for `names`, each an op (resolved through the dispatch table, the
    fused head's "head" included) or already an implementation."""
    choices = dispatch.table(dtype)
    out = []
    for name in names:
        if name in choices:
            if choices[name].run is not None:
                out.append(choices[name].implementation)
        elif name in KERNELS:
            out.append(name)
        else:
            raise KeyError(f"no kernel or op named {name!r}")
    return list(dict.fromkeys(out))


def warmup(dtype, names=None, helpers=None):
    """Compile (or load from the cache) the kernels for `names` (ops or implementations;
    default: what the dispatch table chooses for every op) for `dtype`, on each one's
    registered example arguments, so that no compilation happens inside an epoch (a
    kernel of one type only, byte_counts, for that type). Returns the implementations
    warmed up. helpers: processes that compile, beside this
    one, the kernels the on-disk cache lacks (kernels/_runtime/compile.py; default: one
    for each further core, at most 3; 0: none)."""
    import numpy as np
    from ._runtime import compile as _compile
    dtype = np.dtype(dtype)
    if names is None:
        names = [op for op, k in dispatch.table(dtype).items()
                 if op == dispatch.HEAD or dtype.name in KERNELS[op].dtypes]
    names = _implementations(names, dtype)
    helpers = min(_compile.cores() - 1, _compile.MOST) if helpers is None else helpers
    cold = ([n for n in names
             if not all(_compile.has_code(d, KERNELS[n].own_dtype(dtype)) for d in KERNELS[n].compiled)]
            if helpers > 0 and CACHE_ENABLED else [])
    run = lambda name: KERNELS[name].run(*KERNELS[name].args(KERNELS[name].own_dtype(dtype)))
    if _compile.worth_helpers(cold):
        groups = _compile.split(cold, helpers + 1)
        started = _compile.start(__name__, __file__, dtype, groups[1:])
        try:
            for name in groups[0]:
                run(name)
        except BaseException:
            _compile.finish(started, stop=True)
            raise
        _compile.finish(started)
    for name in names:  # the helpers' kernels load from the cache (any they missed compile here)
        run(name)
    return names
