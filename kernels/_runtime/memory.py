"""Arrays whose first element sits on a 64-byte boundary (a cache line, and one 512-bit
vector of float32), for the buffers the kernels read most.

NumPy's allocator aligns to 16 bytes only. A 16-lane vector load (kernels/_simd.py) from
an address that is not a multiple of 64 spans two cache lines and costs about two loads:
on unaligned arrays the forward tiles run about a quarter slower (BENCHMARKS.md, History,
commit fb86f79). A row of a C-contiguous [R, C] array starts on a boundary too when C times
the item size is a multiple of 64 (784 or 1200 float32 columns: yes; 100: no).
"""
import numpy as np

ALIGN = 64


def aligned_empty(shape, dtype):
    """np.empty(shape, dtype), C-contiguous, starting on an ALIGN-byte boundary."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(n * dtype.itemsize + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + n * dtype.itemsize].view(dtype).reshape(shape)


def aligned_zeros(shape, dtype):
    """np.zeros(shape, dtype), C-contiguous, starting on an ALIGN-byte boundary."""
    a = aligned_empty(shape, dtype)
    a[...] = 0
    return a
