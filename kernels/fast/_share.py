"""Work sharing for the big parallel kernels (dense_forward_tiles, matmul): each thread
starts on its own share of the work and, when it runs out, takes the last items of the
shares that are still running.

Shapes: P shares (PARTS below: one for each thread Numba may start); counters[SLOT * P]
int64, one cache line a share. A kernel numbers its work items 0, 1, ... within each
share and runs
    for p in prange(P):                      # share p starts on its own thread
        for r in range(P):
            q = (p + r) % P                  # its own share first, then the others
            while True:
                t0, t1 = claim(counters, q, r == 0, keep)
                if t0 >= t1: break
                for t in range(t0, t1):
                    ... item t of share q ...
An item computes the same numbers whichever thread runs it (each output element belongs
to one item, summed in a fixed order inside it): results never depend on who took what.

Why: on this shared machine one core often runs a third slower than the other for
seconds at a time (its neighbour on the host is busy); with fixed halves the faster
thread then waits for the slower one at the end of every kernel (on the book network at
batch 256 the worker's half of the forward product took 233 us against 172 us for the
main thread's in one reading: BENCHMARKS.md, History, commit a03b18a).

Each share's counter packs two item numbers: the next item from the front (low 32 bits;
the owner takes n items from there by adding n) and one past the last from the back
(high 32 bits; another thread takes the n before it by subtracting n << 32). Both are
one atomic add, so an item is taken exactly once: each side's items stop where it saw
the other side, and whoever's add sees front >= back finds the share empty.
`keep`: another thread only takes an item while at least that many are left (an item
taken away must bring its operands to the other core: for the forward product, a
thread's rows of W).
"""
import threading

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from .._runtime.jit import kernel
from .._runtime.memory import aligned_zeros

SLOT = 8  # int64 counters a share: 64 bytes, so two threads' counters never share a line
_FRONT = 0xFFFFFFFF
# Shares of a kernel's work: the most threads Numba may use. (Asking
# numba.get_num_threads() costs 1.6-4 us a call, and inside a kernel it stops caching.)
# With fewer threads running, a thread runs several shares, its own first.
PARTS = numba.config.NUMBA_NUM_THREADS


def make_counters(parts):
    """The counters for `parts` shares (their values are set by each kernel call)."""
    return aligned_zeros(SLOT * max(1, int(parts)), np.int64)


_local = threading.local()


def counters():
    """The counters the kernels' wrappers pass: one set for each Python thread, made on its
    first call. Parallel kernels release the GIL, so two Python threads (a Dask worker's
    threads, for one) can be inside kernels at once; with one shared set they would take
    each other's items and leave parts of an output unwritten."""
    c = getattr(_local, "counters", None)
    if c is None:
        c = _local.counters = make_counters(PARTS)
    return c


def _is_counters(a):
    return isinstance(a, types.Array) and a.ndim == 1 and a.layout == "C" and a.dtype == types.int64


@intrinsic
def fetch_add(typingctx, a, i, v):
    """a[i] += v atomically; returns the value before (a: int64 counters)."""
    if not (_is_counters(a) and isinstance(i, types.Integer) and isinstance(v, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        return builder.atomic_rmw("add", builder.gep(data, [args[1]]), value, "monotonic")
    return types.int64(a, i, v), codegen


@intrinsic
def peek(typingctx, a, i):
    """a[i], read atomically (another thread may be adding to it)."""
    if not (_is_counters(a) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.load_atomic(builder.gep(data, [args[1]]), "monotonic", 8)
    return types.int64(a, i), codegen


@kernel(inline="always")
def deal(counters, q, items):
    """Share q holds items 0 .. items - 1 (called before the parallel loop)."""
    counters[SLOT * q] = items << 32


@kernel(inline="always")
def claim(counters, q, own, keep):
    """The next items t0 .. t1 - 1 of share q (t0 >= t1: none left). Its own thread takes
    them from the front, a quarter of what is left at a time (one at the end), so that
    it touches the counter a few times per call rather than once per item; another
    thread takes half of what is left from the back, and only while at least `keep` are
    left (each time one thread touches the other's counter, that cache line has to
    travel between the cores)."""
    now = peek(counters, SLOT * q)
    left = (now >> 32) - (now & _FRONT)
    if own:
        bite = max(1, left // 4)
        old = fetch_add(counters, SLOT * q, bite)
        front = old & _FRONT
        return front, min(front + bite, old >> 32)
    if left < keep:
        return 0, 0
    bite = max(1, left // 2)
    old = fetch_add(counters, SLOT * q, -(bite << 32))
    back = old >> 32
    return max(old & _FRONT, back - bite), back
