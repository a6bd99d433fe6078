"""exp for the kernels: float32 in straight-line code that LLVM vectorises, math.exp else.

Numba has no vector exp here (no SVML), so math.exp on float32 is a scalar libm call
(~4 ns an element), and it made the sigmoid of the book network cost as much as a third of
its forward product. expf below is Cephes' expf: x = n ln2 + r with |r| <= ln2/2,
exp(r) by a degree-7 polynomial, 2**n put into the exponent bits. Within 1 ulp of the
exact value over the whole range (tests/test_math.py), branch-free so a loop over it
vectorises. Beyond the float32 range it gives +inf above 88.72 and 0 below -87.34 (where
libm's expf gives subnormals), and NaN for NaN. float64 keeps math.exp. like(a, v) is
the Python float v in the float type of a scalar or array a, so that float32 arithmetic
stays float32 (a float64 scalar turns every float32 operation it meets into float64, at
half the vector width): like(z, 1.0) around vexp, like(p, lr) in the optimizers. bf16(x)
rounds a float32 to bfloat16 for the products of dense_forward_bf16 and
dense_backward_bf16 (kernels/dense.py).
"""
import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, overload

from ._runtime.jit import kernel

_LOG2E = np.float32(1.44269504088896341)
_C1 = np.float32(0.693359375)      # ln 2 split in two: C1 exact in 8 bits, C1 - C2 = ln 2
_C2 = np.float32(-2.12194440e-4)
_P0 = np.float32(1.9875691500e-4)
_P1 = np.float32(1.3981999507e-3)
_P2 = np.float32(8.3334519073e-3)
_P3 = np.float32(4.1665795894e-2)
_P4 = np.float32(1.6666665459e-1)
_P5 = np.float32(5.0000001201e-1)
_ONE = np.float32(1.0)
_HALF = np.float32(0.5)
_HI = np.float32(88.72283935546875)   # above: exp overflows float32
_LO = np.float32(-87.33654022216797)  # below: exp is under the smallest normal float32
_INF = np.float32(np.inf)
_ZERO = np.float32(0.0)


@intrinsic
def _bits_to_float32(typingctx, i):
    """Reinterpret an int32's bits as a float32 (no conversion)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


def _expf(x):
    xc = min(max(x, _LO), _HI)  # NaN is restored at the end
    n = np.floor(xc * _LOG2E + _HALF)
    r = xc - n * _C1 - n * _C2
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r * r + r + _ONE
    # 2**n as two factors 2**n1 * 2**n2, each a normal float32 for every n in [-126, 128].
    k = np.int32(n)
    k1 = k >> np.int32(1)
    k2 = k - k1
    y = p * _bits_to_float32((k1 + np.int32(127)) << np.int32(23)) * _bits_to_float32((k2 + np.int32(127)) << np.int32(23))
    y = _INF if x > _HI else y
    y = _ZERO if x < _LO else y
    return x if x != x else y


@intrinsic
def _float32_to_bits(typingctx, x):
    """A float32's bits as an int32 (no conversion)."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@kernel(inline="always")
def bf16(x):
    """The float32 x rounded to the nearest bfloat16 (ties to even), as a float32: add 0x7FFF
    plus the lowest kept bit to x's bits, keep the upper 16. NaN stays NaN (the addition
    could turn it into inf or a number); beyond the largest bfloat16 it rounds to inf. The
    product of two such numbers is exact in float32 (8 + 8 significant bits) unless it
    underflows or overflows, so a bf16 product unit (AMX, AVX512-BF16) accumulating in
    float32 can agree with loops over these within a float32 sum's tolerance (they flush
    subnormals and add in their own order). float32 only."""
    bits = np.int64(_float32_to_bits(np.float32(x))) & np.int64(0xFFFFFFFF)
    bits = (bits + np.int64(0x7FFF) + ((bits >> np.int64(16)) & np.int64(1))) & np.int64(0xFFFF0000)
    y = _bits_to_float32(np.int32(np.uint32(bits)))
    return x if x != x else y


def vexp(x):
    """exp(x); see the module header."""
    return math.exp(x)


@overload(vexp)
def _vexp(x):
    if isinstance(x, types.Float) and x.bitwidth == 32:
        return _expf
    return lambda x: math.exp(x)


def like(a, v):
    """v in the float type of a, a scalar or an array: float32 for float32, else float64."""
    return v


@overload(like)
def _like(a, v):
    t = a.dtype if isinstance(a, types.Array) else a
    if t == types.float32:
        return lambda a, v: np.float32(v)
    return lambda a, v: np.float64(v)
