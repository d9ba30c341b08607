"""The register tile's code as LLVM vector IR: :func:`tile_fma`, :func:`vfma`, :func:`vmove`.

:func:`tile_fma` is the k loop of :mod:`lstm_numba._gemm`'s register tile
(``_gemm._tile`` calls it) written directly in LLVM IR: the tile's 2*rows vectors are loaded
from ``acc`` once, carried through the k loop as phi nodes, and stored once
after it. Per k: 2 vector loads of the panel row, one broadcast of
``a[r+i, k]`` per row and 2 ``llvm.fma`` per row (16 FMAs at 8 rows). LLVM
gets the loop it should emit and has nothing to unroll, promote or
SLP-vectorize, which is what a tile's compile time went to when the same
loop was written as 8*NC scalar statements per k.

Vector types: ``<16 x float>`` (float32) and ``<8 x double>`` (float64), two
per tile row (NC = 32 / 16 elements, 128 bytes). On an AVX-512 CPU each is
one zmm register; the 8-row loop is 2 panel loads, 8 ``vbroadcastss/sd``
and 16 register ``vfmadd231`` per k, no stack access (each broadcast feeds
two FMAs, so LLVM loads it once rather than using two ``{1to16}`` memory
operands). On a CPU without AVX-512 LLVM's type legalization splits each
vector in two ymm: 32 accumulators at 8 rows (16 at 4 rows, plus the
panel's 4 and a broadcast) do not fit the 16 ymm registers and the loop
spills (checked with a haswell target: 48-54 stack accesses per k at 8
rows, 16-18 at 4 rows, as many as the scalar-``_vfma`` tile at b2a3857). An
AVX2 tile needs fewer columns (one ``<8 x float>`` pair per row) or fewer
rows; this intrinsic does not choose.

Measured on the Intel Xeon (emeraldrapids), 1 thread, against the
former ``_gemm._acc`` (the same loop as eight :func:`vfma` per k): same
GFLOP/s (time ratio 0.96-1.04 over m 8-1024, K=N 256/512, both dtypes, at
b2a3857 and d6e0e1c); cold compile of ``_tile`` (rows 8 and 4) 0.65-1.06
-> 0.40-0.51 s per dtype at d6e0e1c (1.0-1.7 -> 0.6-0.7 s at b2a3857).
"""
from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

#: Distance in elements between two tile rows in ``acc`` (as in _gemm's tiles).
ROW_STRIDE = 32


def _lanes(dtype) -> int | None:
    """Elements per 64-byte vector of a Numba float type (None: not supported)."""
    if dtype == types.float32:
        return 16
    if dtype == types.float64:
        return 8
    return None


def _fma(builder, vty, lanes, ety):
    """The declaration of ``llvm.fma`` for vectors ``vty`` in the current module."""
    bits = 32 if ety == types.float32 else 64
    return cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.v{lanes}f{bits}")


@intrinsic
def tile_fma(typingctx, acc, a, r, k_len, wp, p, rows):
    """``acc[32*i : 32*i+NC] += a[r+i, :k_len] @ wp[p, :k_len, :NC]`` for i < rows.

    Parameters (types checked at typing; no bounds checks at run time)
    ----------
    acc : 1-D C array of float32/float64, >= 32*(rows-1) + NC elements;
        read (2*rows vectors) before the k loop, written after it. Usually a
        stack array from ``_gemm._stack``, which LLVM then keeps in registers.
    a : 2-D C array of the same dtype; rows r .. r+rows-1, columns 0 ..
        k_len-1 are read (row stride taken from ``a.strides[0]``).
    r, k_len, p : integers. ``k_len <= 0`` leaves ``acc`` unchanged.
    wp : 3-D C array (P, >= k_len, NC) of the same dtype, the packed panels:
        ``wp[p, k, 0:NC]`` read for k < k_len. NC = 32 float32 / 16 float64.
    rows : an integer *literal* 1 .. 8 (a compile-time constant: one loop of
        2*rows accumulators is emitted for it).

    Loads are unaligned-safe (alignment of one element): on AVX-512 an
    unaligned ``vmovups``/``vfmadd`` memory operand costs nothing extra when
    the data is in fact 64-byte aligned, as the packed panels are.
    """
    if not isinstance(rows, types.IntegerLiteral) or not 1 <= rows.literal_value <= 8:
        return None
    if not (isinstance(acc, types.Array) and isinstance(a, types.Array)
            and isinstance(wp, types.Array)):
        return None
    if (acc.ndim, a.ndim, wp.ndim) != (1, 2, 3) or not (acc.layout == a.layout
                                                        == wp.layout == "C"):
        return None
    ety = wp.dtype
    lanes = _lanes(ety)
    if lanes is None or acc.dtype != ety or a.dtype != ety:
        return None
    if not all(isinstance(t, types.Integer) for t in (r, k_len, p)):
        return None
    nrows = rows.literal_value
    nvec = 2 * nrows

    def codegen(context, builder, sig, args):
        acc_v, a_v, r_v, k_v, wp_v, p_v, _ = args
        accty, aty, rty, kty, wpty, pty, _ = sig.args
        intp_t = context.get_value_type(types.intp)
        lty = context.get_data_type(ety)
        vty = ir.VectorType(lty, lanes)
        align = context.get_abi_sizeof(lty)

        r_v = context.cast(builder, r_v, rty, types.intp)
        k_v = context.cast(builder, k_v, kty, types.intp)
        p_v = context.cast(builder, p_v, pty, types.intp)
        acc_a = make_array(accty)(context, builder, acc_v)
        a_a = make_array(aty)(context, builder, a_v)
        wp_a = make_array(wpty)(context, builder, wp_v)
        zero = intp_t(0)

        # Loop-invariant pointers: the tile's vectors, row i of a, panel p.
        pacc = [builder.bitcast(builder.gep(acc_a.data, [intp_t(ROW_STRIDE * i + h * lanes)]),
                                vty.as_pointer())
                for i in range(nrows) for h in range(2)]
        arow = [cgutils.get_item_pointer(context, builder, aty, a_a,
                                         [builder.add(r_v, intp_t(i)), zero])
                for i in range(nrows)]
        pw0 = cgutils.get_item_pointer(context, builder, wpty, wp_a, [p_v, zero, zero])
        ncol = cgutils.unpack_tuple(builder, wp_a.shape, 3)[2]   # NC, a row of a panel

        fma = _fma(builder, vty, lanes, ety)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
        undef = ir.Constant(vty, ir.Undefined)

        init = [builder.load(q, align=align) for q in pacc]
        entry = builder.block
        loop = builder.append_basic_block("tile_fma.loop")
        done = builder.append_basic_block("tile_fma.done")
        builder.cbranch(builder.icmp_signed(">", k_v, zero), loop, done)

        builder.position_at_end(loop)
        k = builder.phi(intp_t, "k")
        k.add_incoming(zero, entry)
        accs = [builder.phi(vty) for _ in range(nvec)]
        for v, x in zip(accs, init):
            v.add_incoming(x, entry)
        pw = builder.gep(pw0, [builder.mul(k, ncol)])
        w = [builder.load(builder.bitcast(builder.gep(pw, [intp_t(h * lanes)]),
                                          vty.as_pointer()), align=align)
             for h in range(2)]
        new = []
        for i in range(nrows):
            x = builder.load(builder.gep(arow[i], [k]), align=align)
            xv = builder.shuffle_vector(
                builder.insert_element(undef, x, ir.IntType(32)(0)), undef, splat)
            for h in range(2):
                new.append(builder.call(fma, [xv, w[h], accs[2 * i + h]]))
        k1 = builder.add(k, intp_t(1), flags=("nsw", "nuw"))
        k.add_incoming(k1, loop)
        for v, x in zip(accs, new):
            v.add_incoming(x, loop)
        builder.cbranch(builder.icmp_signed("<", k1, k_v), loop, done)

        builder.position_at_end(done)
        outs = [builder.phi(vty) for _ in range(nvec)]   # phis first in the block
        for q, out, x0, x1 in zip(pacc, outs, init, new):
            out.add_incoming(x0, entry)
            out.add_incoming(x1, loop)
            builder.store(out, q, align=align)
        return context.get_dummy_value()

    return types.none(acc, a, r, k_len, wp, p, rows), codegen


@intrinsic
def vfma(typingctx, acc, off, x, wp, p, k):
    """``acc[off:off+NC] += x * wp[p, k, :NC]`` as two 64-byte vector FMAs.

    The one-row tiles' k loops in :mod:`lstm_numba._gemm`. Written as vector
    IR, so LLVM has nothing to vectorize: the scalar form (NC statements per
    row) made each tile's own compile spend most of its time in unrolling
    and the SLP vectorizer.
    """
    ety = wp.dtype
    lanes = _lanes(ety)
    if lanes is None:
        return None

    def codegen(context, builder, sig, args):
        acc_v, off_v, x_v, wp_v, p_v, k_v = args
        accty, _, xty, wpty, _, _ = sig.args
        lty = context.get_data_type(ety)
        vty = ir.VectorType(lty, lanes)
        intp = context.get_value_type(types.intp)
        acc_a = make_array(accty)(context, builder, acc_v)
        wp_a = make_array(wpty)(context, builder, wp_v)
        pa = cgutils.get_item_pointer(context, builder, accty, acc_a, [off_v])
        pw = cgutils.get_item_pointer(context, builder, wpty, wp_a,
                                      [p_v, k_v, intp(0)])
        xs = context.cast(builder, x_v, xty, ety)
        xv = builder.insert_element(ir.Constant(vty, ir.Undefined), xs, ir.IntType(32)(0))
        xv = builder.shuffle_vector(xv, ir.Constant(vty, ir.Undefined),
                                    ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                [0] * lanes))
        fma = _fma(builder, vty, lanes, ety)
        for h in range(2):
            qa = builder.bitcast(builder.gep(pa, [intp(h * lanes)]), vty.as_pointer())
            qw = builder.bitcast(builder.gep(pw, [intp(h * lanes)]), vty.as_pointer())
            va = builder.load(qa, align=4)
            vw = builder.load(qw, align=4)
            builder.store(builder.call(fma, [xv, vw, va]), qa, align=4)
        return context.get_dummy_value()

    return types.none(acc, off, x, wp, p, k), codegen


@intrinsic
def vmove(typingctx, dst, di, src, si):
    """``dst[di][:NC] = src[si][:NC]``: NC elements as two 64-byte vectors.

    ``di``/``si`` are tuples of indices of the first element (C arrays of
    one dtype, NC of it: 32 float32 or 16 float64). The tile's load and
    store, in vector IR like :func:`vfma`.
    """
    ety = dst.dtype
    lanes = _lanes(ety)
    if lanes is None or src.dtype != ety:
        return None

    def codegen(context, builder, sig, args):
        dst_v, di_v, src_v, si_v = args
        dty, dity, sty, sity = sig.args
        vty = ir.VectorType(context.get_data_type(ety), lanes)
        intp = context.get_value_type(types.intp)
        pd = cgutils.get_item_pointer(context, builder, dty, make_array(dty)(
            context, builder, dst_v), cgutils.unpack_tuple(builder, di_v, len(dity)))
        ps = cgutils.get_item_pointer(context, builder, sty, make_array(sty)(
            context, builder, src_v), cgutils.unpack_tuple(builder, si_v, len(sity)))
        for h in range(2):
            qs = builder.bitcast(builder.gep(ps, [intp(h * lanes)]), vty.as_pointer())
            qd = builder.bitcast(builder.gep(pd, [intp(h * lanes)]), vty.as_pointer())
            builder.store(builder.load(qs, align=4), qd, align=4)
        return context.get_dummy_value()

    return types.none(dst, di, src, si), codegen
