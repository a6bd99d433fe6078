"""The one registry of kernels: each declares itself once, where it is defined.

A plain kernel (the algorithm, kernels/*.py) is declared with @plain(example): example(dtype)
gives tiny arguments of the types training uses, for warm-up; its NumPy twin is the
function of the same name in kernels/reference.py. A fast replacement (kernels/fast/) is
declared with @fast(replaces, example=None, needs=...): the plain ops it stands for, in
the order of the pattern it replaces, and what it needs to run. Warm-up, the cache
listing, `fastmlp kernels`, the dispatch table and the every-kernel-has-a-twin test read
KERNELS; nothing else keeps a list of names.
"""
import dataclasses

import numpy as np

KERNELS = {}


@dataclasses.dataclass
class Kernel:
    name: str
    run: object              # what callers call: a Numba dispatcher or a Python wrapper
    layer: str               # "plain", "fast" or "data"
    example: object          # dtype -> arguments for run, or None (then the plain op's)
    replaces: tuple = ()     # fast: the plain ops it stands for
    needs: tuple = ()        # fast: "float32", "avx512"
    compiled: tuple = ()     # the Numba dispatchers run calls (warm-up, cache listing)
    dtypes: tuple = ("float32", "float64")
    seconds: float = 0.5     # compile time, float32, no cache: how warm-up shares out the work

    def own_dtype(self, dtype):
        """dtype, or this kernel's only type where it has one of its own (byte_counts: bytes)."""
        dtype = np.dtype(dtype)
        return dtype if dtype.name in self.dtypes else np.dtype(self.dtypes[0])

    def args(self, dtype):
        example = self.example or KERNELS[self.replaces[0]].example
        return example(np.dtype(dtype))


def _dispatchers(function, compiled):
    if compiled:
        return tuple(compiled)
    return (function,) if hasattr(function, "signatures") else ()


def plain(example, layer="plain", dtypes=("float32", "float64"), seconds=0.5):
    """Declare a plain-layer kernel (layer "data" for the byte kernels of data loading);
    seconds: about how long it takes to compile (kernels/_runtime/compile.py)."""
    def wrap(function):
        name = function.__name__
        KERNELS[name] = Kernel(name, function, layer, example, compiled=_dispatchers(function, ()), dtypes=dtypes,
                               seconds=seconds)
        return function
    return wrap


def fast(replaces, example=None, needs=(), compiled=(), seconds=0.5):
    """Declare a fast replacement of the plain ops `replaces` (one op, or a pattern of ops
    that it computes in one call). compiled: the dispatchers a Python wrapper calls."""
    def wrap(function):
        name = function.__name__
        dtypes = ("float32",) if "float32" in needs else ("float32", "float64")
        KERNELS[name] = Kernel(name, function, "fast", example, tuple(replaces), tuple(needs),
                               _dispatchers(function, compiled), dtypes, seconds)
        return function
    return wrap
