"""Vectors of LANES numbers for the register tiles of kernels/matmul.py and
kernels/dense.py.

Numba has no vector type, and its auto-vectoriser cannot keep a tile of sums in
registers, so this module adds the operations such a tile needs, each a few lines of
LLVM IR:
    vload(row, j, n)      row[j:j+n] as a vector (lanes past n read as 0, nothing read there)
    vstore(row, j, v, n)  row[j:j+n] = the first n lanes of v (nothing written past n)
    vfma(a, b, c)         a * b + c, lane by lane, a a scalar or a vector: one rounding
                          (fused multiply-add)
    vsum(v)               the sum of v's lanes by a fixed tree: lanes l and l + 8 added,
                          then l and l + 4, l and l + 2, l and l + 1
    vsums((v0, ..., vn))  n <= 16 vectors -> one vector, lane m = vsum(vm) bit for bit
    lane(v, m)            lane m of v, m a constant
    at(row, i)            row[i], without Numba's test for a negative index (i >= 0)
    address(a)            a pointer to a C-contiguous array's first element
    prefetch(p, j)        ask for the cache line holding p[j] (p a pointer) to be brought
                          into the core's L2 cache: a hint, no fault and no effect on results
row is a 1-D C-contiguous float32 or float64 array (a row of a 2-D one: Y[i]) or a
pointer from address(), and 0 <= j, j + n <= len(row), 0 <= n <= LANES; nothing checks
this (as Numba without boundscheck). The tiles take pointers: Numba counts references
to every array an inlined function receives (a call into its runtime each time), a
pointer it leaves alone. A vector of 16 float32 fills one AVX-512 register, or two AVX2 ones: LLVM
uses 512-bit registers for these explicit vectors even where Numba's auto-vectorised
loops keep to 256 bits (checked in tests/test_matmul.py), so no process-wide setting
is needed.
"""
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

LANES = 16


class Vector(types.Type):
    """LANES numbers of one float type, held in vector registers."""

    def __init__(self, dtype):
        self.dtype = dtype
        super().__init__(name=f"Vector{LANES}({dtype})")


@register_model(Vector)
class _VectorModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), LANES))


def _data(context, builder, row_type, row):
    """The address of element 0: of a 1-D array, or the pointer itself."""
    if isinstance(row_type, types.CPointer):
        return row
    return context.make_array(row_type)(context, builder, row).data


def _address(context, builder, row_type, row, j, vector_type):
    return builder.bitcast(builder.gep(_data(context, builder, row_type, row), [j]), vector_type.as_pointer())


def _mask(builder, n):
    """<LANES x i1>: lane l is on when l < n."""
    lanes = ir.Constant(ir.VectorType(ir.IntType(64), LANES), list(range(LANES)))
    return builder.icmp_unsigned("<", lanes, _splat(builder, builder.sext(n, ir.IntType(64)) if n.type.width < 64 else n))


def _splat(builder, x):
    v = builder.insert_element(ir.Constant(ir.VectorType(x.type, LANES), ir.Undefined), x, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(v, ir.Constant(v.type, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))


def _suffix(vector_type):
    return f"v{LANES}{'f32' if isinstance(vector_type.element, ir.FloatType) else 'f64'}"


def _is_row(row):
    if isinstance(row, types.CPointer):
        return row.dtype in (types.float32, types.float64)
    return isinstance(row, types.Array) and row.ndim == 1 and row.layout == "C" and row.dtype in (types.float32, types.float64)


@intrinsic
def address(typingctx, a):
    """A pointer to a C-contiguous array's first element, for the tiles: unlike an
    array, a pointer passed to an inlined function costs no reference counting (Numba
    otherwise calls NRT_incref/NRT_decref for every array argument of every tile)."""
    if not (isinstance(a, types.Array) and a.layout == "C" and a.dtype in (types.float32, types.float64)):
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data
    return types.CPointer(a.dtype)(a), codegen


@intrinsic
def prefetch(typingctx, p, j):
    if not (isinstance(p, types.CPointer) and isinstance(j, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        i8p = ir.IntType(8).as_pointer()
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [i8p, ir.IntType(32), ir.IntType(32), ir.IntType(32)]), "llvm.prefetch.p0")
        # read, locality 2 (prefetcht1: L2, leaving L1 to the tile's rows), data cache
        builder.call(f, [builder.bitcast(builder.gep(args[0], [args[1]]), i8p), ir.Constant(ir.IntType(32), 0),
                         ir.Constant(ir.IntType(32), 2), ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return types.none(p, j), codegen


@intrinsic(prefer_literal=True)  # n = LANES arrives as a literal: a plain load
def vload(typingctx, row, j, n):
    if not (_is_row(row) and isinstance(j, types.Integer) and isinstance(n, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        row_type = signature.args[0]
        vt = context.get_value_type(signature.return_type)
        if isinstance(signature.args[2], types.IntegerLiteral) and signature.args[2].literal_value == LANES:
            return builder.load(_address(context, builder, row_type, args[0], args[1], vt), align=1)
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            vt, [vt.as_pointer(), ir.IntType(32), ir.VectorType(ir.IntType(1), LANES), vt]),
            f"llvm.masked.load.{_suffix(vt)}.p0")
        return builder.call(f, [_address(context, builder, row_type, args[0], args[1], vt),
                                ir.Constant(ir.IntType(32), 1), _mask(builder, args[2]), ir.Constant(vt, None)])
    return Vector(row.dtype)(row, j, n), codegen


@intrinsic(prefer_literal=True)
def vstore(typingctx, row, j, v, n):
    if not (_is_row(row) and isinstance(v, Vector) and v.dtype == row.dtype):
        return None

    def codegen(context, builder, signature, args):
        row_type = signature.args[0]
        vt = args[2].type
        address = _address(context, builder, row_type, args[0], args[1], vt)
        if isinstance(signature.args[3], types.IntegerLiteral) and signature.args[3].literal_value == LANES:
            builder.store(args[2], address, align=1)
        else:
            f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
                ir.VoidType(), [vt, vt.as_pointer(), ir.IntType(32), ir.VectorType(ir.IntType(1), LANES)]),
                f"llvm.masked.store.{_suffix(vt)}.p0")
            builder.call(f, [args[2], address, ir.Constant(ir.IntType(32), 1), _mask(builder, args[3])])
        return context.get_dummy_value()
    return types.none(row, j, v, n), codegen


@intrinsic
def at(typingctx, row, i):
    if not (_is_row(row) and isinstance(i, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return builder.load(builder.gep(_data(context, builder, signature.args[0], args[0]), [args[1]]))
    return row.dtype(row, i), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    if not (isinstance(b, Vector) and b == c and (a == b.dtype or a == b)):
        return None

    def codegen(context, builder, signature, args):
        vt = args[2].type
        f = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt]), f"llvm.fma.{_suffix(vt)}")
        x = args[0] if isinstance(signature.args[0], Vector) else _splat(builder, args[0])
        return builder.call(f, [x, args[1], args[2]])
    return c(a, b, c), codegen


@intrinsic
def vsum(typingctx, v):
    if not isinstance(v, Vector):
        return None

    def codegen(context, builder, signature, args):
        x = args[0]
        width = LANES
        while width > 1:  # a fixed tree: lanes l and l + width/2 added, width halved
            width //= 2
            lo = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width))))
            hi = builder.shuffle_vector(x, x, ir.Constant(ir.VectorType(ir.IntType(32), width), list(range(width, 2 * width))))
            x = builder.fadd(lo, hi)
        return builder.extract_element(x, ir.Constant(ir.IntType(32), 0))
    return v.dtype(v), codegen


@intrinsic
def vsums(typingctx, t):
    """A tuple of up to LANES vectors -> one vector whose lane m is vsum(t[m]), bit for bit
    (the same additions, done for all of them at once: each level pairs two vectors and
    adds the halves of every group of lanes, so 16 sums cost 15 such steps, not 16 x 4)."""
    if not (isinstance(t, types.UniTuple) and isinstance(t.dtype, Vector) and 1 <= t.count <= LANES):
        return None

    def codegen(context, builder, signature, args):
        vs = [builder.extract_value(args[0], i) for i in range(signature.args[0].count)]
        i32 = ir.IntType(32)
        d = LANES // 2
        while d >= 1:  # each vector holds LANES // (2 d) sums in the making, 2 d lanes each
            groups = LANES // (2 * d)
            lo = [g * 2 * d + l + 16 * half for half in (0, 1) for g in range(groups) for l in range(d)]
            hi = [x + d for x in lo]
            lo_mask = ir.Constant(ir.VectorType(i32, LANES), [x if x < 16 else x - 16 + LANES for x in lo])
            hi_mask = ir.Constant(ir.VectorType(i32, LANES), [x if x < 16 else x - 16 + LANES for x in hi])
            pairs = [(vs[i], vs[i + 1] if i + 1 < len(vs) else vs[i]) for i in range(0, len(vs), 2)]
            vs = [builder.fadd(builder.shuffle_vector(u, v, lo_mask), builder.shuffle_vector(u, v, hi_mask))
                  for u, v in pairs]
            d //= 2
        return vs[0]
    return t.dtype(t), codegen


@intrinsic
def lane(typingctx, v, m):
    """Lane m of v (m a constant)."""
    if not (isinstance(v, Vector) and isinstance(m, types.IntegerLiteral)):
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], ir.Constant(ir.IntType(32), signature.args[1].literal_value))
    return v.dtype(v, m), codegen
