"""Work sharing for the big parallel kernels (dense_forward_tiles, matmul): each thread
starts on its own share of the work and, when it runs out, takes the last items of the
shares that are still running.

Shapes: P shares (dense.PARTS, one for each thread Numba may start); counters[SLOT * P]
int64, one cache line a share. A kernel numbers its work items 0, 1, ... within each
share and runs
    for p in prange(P):                      # share p starts on its own thread
        for r in range(P):
            q = (p + r) % P                  # its own share first, then the others
            while True:
                t = claim(counters, q, r == 0, keep)
                if t < 0: break
                ... item t of share q ...
An item computes the same numbers whichever thread runs it (each output element belongs
to one item, summed in a fixed order inside it): results never depend on who took what.

Why: on this shared machine one core often runs a third slower than the other for
seconds at a time (its neighbour on the host is busy); with fixed halves the faster
thread then waits for the slower one at the end of every kernel (measured on the book
network, batch 256: the worker's half of the forward product 233 us against 172 us for
the main thread's, BENCHMARKS.md, session 7).

Each share's counter packs two item numbers: the next item from the front (low 32 bits;
the owner takes it and adds 1) and one past the last from the back (high 32 bits;
another thread takes back - 1 and subtracts 1 << 32). Both are one atomic add, so an
item is taken exactly once: whoever's add sees front >= back finds the share empty.
`keep`: another thread only takes an item while at least that many are left (an item
taken away must bring its operands to the other core: for the forward product, a
thread's rows of W).
"""
import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from ._jit import kernel
from .memory import aligned_zeros

SLOT = 8  # int64 counters a share: 64 bytes, so two threads' counters never share a line
_FRONT = 0xFFFFFFFF
# Shares of a kernel's work: the most threads Numba may use. (Asking
# numba.get_num_threads() costs 1.6-4 us a call, and inside a kernel it stops caching.)
# With fewer threads running, a thread runs several shares, its own first.
PARTS = numba.config.NUMBA_NUM_THREADS


def make_counters(parts):
    """The counters for `parts` shares (their values are set by each kernel call)."""
    return aligned_zeros(SLOT * max(1, int(parts)), np.int64)


# The counters the kernels' wrappers pass. Kernels run one at a time (they hold the GIL),
# so one set serves them all.
COUNTERS = make_counters(PARTS)


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
    """The next item of share q: from the front for its own thread (own true), else
    from the back, and only while at least `keep` are left; -1 when there is none."""
    if not own:
        now = peek(counters, SLOT * q)
        if (now >> 32) - (now & _FRONT) < keep:
            return -1
    old = fetch_add(counters, SLOT * q, 1 if own else -(1 << 32))
    front = old & _FRONT
    back = old >> 32
    if front >= back:
        return -1
    return front if own else back - 1
