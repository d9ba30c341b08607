"""A register-blocked matrix product for the recurrent kernels, in Numba.

``out[o0+i, :] = a[r0+i, :] @ W + bias`` for i < m, with ``W`` (K, N) packed
once per forward pass into panels of NC columns: ``wp[p, k, c] = W[k, p*NC+c]``
(zero past N). NC = 32 float32 or 16 float64: two AVX-512 registers, 128
bytes, so a panel's K rows lie one after the other in memory.

Why a hand-written kernel and not ``np.dot``: the per-step product of a
recurrent layer is small (B rows) and BLAS pays its set-up on every step
(measured 42-53 GFLOP/s at B=16 with OpenBLAS here). Here a tile of 8 rows x
one panel (16 vector registers) is accumulated in registers over the whole K
loop: per k, 2 vector loads of the panel, 8 broadcasts and 16 FMAs. That
reads 0.25 byte of panel per FLOP, and a panel of K = 256 (32 KiB, one
contiguous block) stays in L1 while every 8-row group of the batch passes
over it. (The first design, 4 rows x 64 columns, read 0.5 byte per FLOP; and
8 rows x half of a 64-column panel strode 256 bytes per k, which left half
of L1's sets unused: the panel fell out of L1 and was streamed from L2 for
every row group. On the Intel Xeon here, 1 thread, K = 256-512: ~95-100,
~115-130 and 140-150 GFLOP/s respectively, the last at the same-process
sgemm's rate.) At one row (batch 1) a 1 x 8-panel tile gives 16
independent FMA chains. The tile lives in a stack array (:func:`_stack`)
that LLVM promotes to registers; its k loops, loads and stores are written
as LLVM vector IR (:mod:`lstm_numba._simd`), so LLVM has no scalar code to
unroll and vectorize (which cost most of a cold compile).

Four compiler settings matter, each checked in the assembly:

* The full vector width: :func:`full_width` puts the LLVM function attribute
  ``"prefer-vector-width"="512"`` on each kernel (on AVX-512 CPUs), because
  LLVM's tuning for Intel's AVX-512 cores prefers 256 bits and would build
  the tile from ymm halves there (AMD Zen 4/5 already get 512).

* LLVM's SLP vectorizer, which Numba turns off by default (numba#8705); it is
  read from ``numba.core.config`` each time a module is optimised, so
  :func:`slp_vectorize` switches it on only while the products compile
  (:func:`compile_gemm`), for what is still scalar around the tiles.
* ``fastmath`` with only {'contract', ...}: 'reassoc' would let LLVM
  vectorize the k-reduction instead and spill the tile.
* ``error_model='numpy'`` (no division-by-zero branch in the gate pass).

And three for compile time: :func:`unliteral_calls` makes jitted callers
compile a kernel once per argument types, not once per constant they pass;
:func:`inline_here` lets LLVM, not Numba, inline the tile's functions; and
functions only jitted code calls get no Python wrapper (``INNER``).

Kernels do no bounds checks; callers (cpu.py) size every array.
Note on Numba's cache: a cached kernel is recompiled only when its own file
changes; after editing this module, delete ``lstm_numba/__pycache__/*.nb*``.
"""
from __future__ import annotations

import contextlib
import threading

import numpy as np
from numba import njit, typeof, types
from numba.core import cgutils, config
from numba.extending import intrinsic, overload
from numba.np.arrayobj import make_array, populate_array

from ._activations import FASTMATH
from ._simd import tile_fma, vfma, vmove
from .machine import kernel_fn_attribute

# One set of fast-math flags for every kernel (lstm_numba._activations.FASTMATH):
# 'contract' gives FMAs; no 'reassoc' (see above); NaN/inf are not assumed away
# so that NaN in the inputs reaches the outputs.
JIT = dict(cache=True, error_model="numpy", nogil=True, boundscheck=False)
# Functions only jitted code calls: no Python-callable wrapper to build
# (~65 ms of each one's cold compile).
INNER = dict(JIT, no_cpython_wrapper=True, no_cfunc_wrapper=True)

_slp_lock = threading.RLock()
_compiled: set = set()


@contextlib.contextmanager
def slp_vectorize():
    """Turn on LLVM's SLP vectorizer for kernels compiled inside this block."""
    with _slp_lock:
        old = config.SLP_VECTORIZE
        config.SLP_VECTORIZE = 1
        try:
            yield
        finally:
            config.SLP_VECTORIZE = old


def compile_gemm(*args, kernel=None) -> None:
    """Compile the product behind :func:`gemm_rows` (or ``kernel``), SLP on.

    ``args`` are those of a call of ``kernel`` (gemm_rows, gemm_rows2 or
    gemm_acc); what compiles is :func:`_products` for the matching types.

    Why not compile everything under :func:`slp_vectorize`: with SLP on
    during the gate pass's function passes, LLVM packs the two Horner chains
    of the rational tanh into 2-wide vectors, and the loop vectorizer then
    leaves the whole loop scalar (measured 10x slower). So the cell kernels
    compile with Numba's default (SLP off) and link to this kernel, compiled
    (and optimised) here first with SLP on. Called before each launch; a set
    remembers what is done, keyed on dtype/layout/flags read off the arrays
    (``numba.typeof`` cost 70 us per launch for the three products).
    """
    # A cheap key first: numba.typeof costs ~2 us per argument, too much per call.
    kernel = gemm_rows if kernel is None else kernel
    quick = (kernel.py_func.__name__,) + tuple(
        (a.dtype.num, a.ndim, a.flags.c_contiguous, a.flags.f_contiguous,
         a.flags.writeable, a.flags.aligned) if isinstance(a, np.ndarray) else type(a)
        for a in args)
    if quick in _compiled:
        return
    # The products are wrappers that Numba inlines; what is compiled (and
    # what needs SLP) is the one function behind them, _products.
    onto_out = kernel is gemm_acc
    if kernel is gemm_rows2:
        a1, r1, wp1, a2, r2, wp2, m, bias, out, o0, p0, p1, reverse = args
        k1, k2 = a1.shape[1], a2.shape[1]
    elif onto_out:
        a1, r1, m, k1, wp1, out = args
        a2, r2, wp2, k2, bias, o0, p0, p1, reverse = a1, r1, wp1, k1, out[0], 0, 0, 1, False
    else:
        a1, r1, m, wp1, bias, out, o0, p0, p1, reverse = args
        a2, r2, wp2, k1, k2 = a1, r1, wp1, a1.shape[1], a1.shape[1]
    sig = (a1, r1, k1, wp1, a2, r2, k2, wp2, False, onto_out, m, bias, out, o0, p0, p1,
           reverse)
    with slp_vectorize():
        _products.compile(tuple(types.unliteral(typeof(a)) for a in sig))
    _compiled.add(quick)


def unliteral_calls(dispatcher):
    """Make jitted callers compile ``dispatcher`` once per argument *types*.

    Numba compiles a jitted function separately for every constant a jitted
    caller passes it (``gemm_rows(..., 0, 0, npan, False)`` typed as
    ``Literal[int](0)``, ``Literal[bool](False)``): each such version is a
    full compile (4-7 s for gemm_rows on the Intel Xeon here, and it was
    compiled six times per entry point). The arguments' literal types are
    dropped before the dispatcher compiles or resolves a call; the code is
    the same, the constants reach it as ordinary arguments. Returns
    ``dispatcher`` (use as a decorator above ``@njit``).
    """
    orig = dispatcher.get_call_template

    def get_call_template(args, kws):
        return orig(tuple(types.unliteral(a) for a in args),
                    {k: types.unliteral(v) for k, v in kws.items()})

    dispatcher.get_call_template = get_call_template
    return dispatcher


def panel_width(dtype) -> int:
    """NC: columns per packed panel, 2 AVX-512 registers (128 bytes) of ``dtype``."""
    return 32 if np.dtype(dtype) == np.float32 else 16


def _nc(a):  # pragma: no cover - replaced by the overload in @njit code
    return panel_width(a.dtype)


@overload(_nc, inline="always")
def _ov_nc(a):
    # A compile-time constant, so the tile loops have constant trip counts.
    w = 32 if a.dtype == types.float32 else 16
    return lambda a: w


@intrinsic
def full_width(typingctx):
    """Ask LLVM for the CPU's full vector width in the calling function.

    Call it first thing in a kernel: it adds the function attribute
    ``"prefer-vector-width"="512"`` (on AVX-512 CPUs; 256 with AVX;
    nothing otherwise, see :func:`lstm_numba.machine.kernel_vector_bits`)
    to the LLVM function being compiled. LLVM's tuning for Intel AVX-512
    cores says ``prefer-256-bit``, so without it the SLP and loop
    vectorizers build 256-bit code there (half the register tile of
    :func:`gemm_rows`; measured 57-60 GFLOP/s instead of ~90 on a Xeon);
    AMD Zen 4/5 already prefer 512 bits and are unchanged. Only the
    functions that call this (and what inlines into them) change: no
    process-wide target setting is touched, so other code compiled in the
    process keeps LLVM's choice. The attribute is part of the compiled
    code, so Numba's cache keeps it.
    """
    attr = kernel_fn_attribute()

    def codegen(context, builder, sig, args):
        if attr:
            # llvmlite's FunctionAttributes accepts only its list of known
            # keyword attributes; a "key"="value" string attribute is valid
            # LLVM IR in the same place, so add it past that check.
            set.add(builder.function.attributes, attr)
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def inline_here(typingctx):
    """Have LLVM, not Numba, inline the calling function into its callers.

    Call it first thing in a helper of the tile. It adds the LLVM attribute
    ``alwaysinline`` (and :func:`full_width`'s, so that the helper's own
    optimisation already builds full-width vectors). Why not Numba's
    ``inline="always"``: Numba inlines by deep-copying the callee's IR into
    every call site and typing it again there, and the tile's helpers were
    long unrolled loops nested four deep: half of a cold compile went to
    ``copy.deepcopy`` (cProfile of compiling gemm_rows: 8.5 of 19 s).
    Compiled as functions of their own (:func:`_tile`, :func:`_products`),
    each is typed and optimised once per signature; LLVM inlines them where
    they are linked in. Measured on the Intel Xeon (emeraldrapids), this
    step alone: LSTM float32 cold compile 12.8 s -> ~9.5 s, products
    bit-identical, same speed (README, "Compile time", for the whole story).
    """
    attr = kernel_fn_attribute()

    def codegen(context, builder, sig, args):
        builder.function.attributes.add("alwaysinline")
        if attr:
            set.add(builder.function.attributes, attr)
        return context.get_dummy_value()

    return types.none(), codegen


@intrinsic
def _stack(typingctx, n, like):
    """A 1-D C array of literal length ``n`` (dtype of array ``like``) on the stack."""
    if not isinstance(n, types.IntegerLiteral):
        return None
    nval = n.literal_value
    ety = like.dtype
    arrty = types.Array(ety, 1, "C")

    def codegen(context, builder, sig, args):
        lty = context.get_data_type(ety)
        ptr = cgutils.alloca_once(builder, lty, size=nval)
        ary = make_array(arrty)(context, builder)
        intp = context.get_value_type(types.intp)
        size = context.get_abi_sizeof(lty)
        populate_array(ary, data=ptr, shape=[intp(nval)], strides=[intp(size)],
                       itemsize=intp(size), meminfo=None)
        return ary._getvalue()

    return arrty(n, like), codegen


def aligned_empty(shape, dtype, zero: bool = False) -> np.ndarray:
    """``np.empty(shape, dtype)`` (or zeros) whose data starts on a 64-byte boundary.

    Panels and the rows the tiles store are read and written in whole
    64-byte vectors; NumPy's allocator gives 16-byte alignment, so a panel
    array started 16, 32 or 48 bytes into a cache line about three times in
    four, and every vector load of it then touched two lines. Measured on
    the Intel Xeon (emeraldrapids, 1 thread, LSTM T=128): 28-48 % slower at
    B=1, H <= 256 and 8 % at B=64, and a random one of those depending on
    where each pack landed.
    """
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    buf = (np.zeros if zero else np.empty)(nbytes + 64, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64
    return buf[start:start + nbytes].view(dt).reshape(shape)


def packed_shape(n: int, k: int, dtype) -> tuple[int, int, int]:
    """Shape (P, K, NC) of ``W (K, N)`` packed into panels."""
    nc = panel_width(dtype)
    return (-(-n // nc), k, nc)


@njit(**JIT)
def pack_transposed(w, wp):
    """wp[p, k, c] = w[p*NC + c, k] (zero past N): ``w`` is PyTorch's (N, K).

    A transpose: done in 16-deep k blocks so that the reads of a block's NC
    rows of ``w`` stay in L1 (2x faster than a plain loop here).
    """
    n_len, k_len = w.shape
    npan, _, nc = wp.shape
    for p in range(npan):
        nv = min(nc, n_len - p * nc)
        for k0 in range(0, k_len, 16):
            k1 = min(k_len, k0 + 16)
            for c in range(nv):
                for k in range(k0, k1):
                    wp[p, k, c] = w[p * nc + c, k]
        for k in range(k_len):
            for c in range(nv, nc):
                wp[p, k, c] = 0.0


# ---------------------------------------------------------- register tiles
# A tile is ``acc``, a stack array that LLVM keeps in vector registers: 8
# rows x one panel (row i at acc[32*i:]), 16 vector registers. Everything
# in a tile is written as vector IR: its k loop is one loop of
# :func:`lstm_numba._simd.tile_fma` (accumulators carried as phi nodes),
# the one-row tiles use :func:`~lstm_numba._simd.vfma`, loads and stores
# :func:`~lstm_numba._simd.vmove`.
# :func:`_tile` is a function of its own that LLVM inlines
# (:func:`inline_here`) and owns its ``acc``: with ``acc`` passed in, LLVM
# had to assume it might alias the operands and kept scalar fallback loops.
# ``rows`` stays a literal (one compile each for 8 and 4). Functions that
# only jitted code calls are compiled without a Python-callable wrapper
# (``INNER``).

@unliteral_calls
@njit(fastmath=FASTMATH, **INNER)
def _row8panels(a, r, k_len, wp, p, bias, out, o):
    """One row x eight panels (8*NC columns): 16 independent FMA chains."""
    inline_here()
    nc = _nc(wp)
    acc = _stack(256, wp)          # panel p+q at acc[32*q:32*q+nc]
    for q in range(8):
        vmove(acc, (32 * q,), bias, ((p + q) * nc,))
    for k in range(k_len):
        a0 = a[r, k]
        vfma(acc, 0, a0, wp, p, k)
        vfma(acc, 32, a0, wp, p + 1, k)
        vfma(acc, 64, a0, wp, p + 2, k)
        vfma(acc, 96, a0, wp, p + 3, k)
        vfma(acc, 128, a0, wp, p + 4, k)
        vfma(acc, 160, a0, wp, p + 5, k)
        vfma(acc, 192, a0, wp, p + 6, k)
        vfma(acc, 224, a0, wp, p + 7, k)
    for q in range(8):
        vmove(out, (o, (p + q) * nc), acc, (32 * q,))


@unliteral_calls
@njit(fastmath=FASTMATH, **INNER)
def _row1panel(a, r, k_len, wp, p, bias, out, o):
    """One row x one panel, k split four ways (8 chains in flight)."""
    inline_here()
    nc = _nc(wp)
    acc = _stack(128, wp)          # k % 4 == q at acc[32*q:32*q+nc]
    n0 = p * nc
    for c in range(nc):
        acc[c] = bias[n0 + c]
        acc[32 + c] = 0.0
        acc[64 + c] = 0.0
        acc[96 + c] = 0.0
    k4 = k_len - k_len % 4
    for k in range(0, k4, 4):
        vfma(acc, 0, a[r, k], wp, p, k)
        vfma(acc, 32, a[r, k + 1], wp, p, k + 1)
        vfma(acc, 64, a[r, k + 2], wp, p, k + 2)
        vfma(acc, 96, a[r, k + 3], wp, p, k + 3)
    for k in range(k4, k_len):
        vfma(acc, 0, a[r, k], wp, p, k)
    for c in range(nc):
        out[o, n0 + c] = (acc[c] + acc[32 + c]) + (acc[64 + c] + acc[96 + c])


@unliteral_calls
@njit(fastmath=FASTMATH, **INNER)
def _row(a, r, k_len, wp, bias, out, o, p0, p1, reverse):
    """One row (batch 1, or a leftover row): groups of eight panels, then the rest.

    One loop (and one call site of each tile, which halves the compile
    time) walks the work items forwards or backwards. A function of its
    own, not inlined: gemm_rows, gemm_rows2 (twice) and gemm_acc call it,
    and it is compiled once for all (inlined, it cost ~2 s of compile in each).
    """
    full_width()
    npan = p1 - p0
    ng = npan // 8
    items = ng + npan - 8 * ng
    for s in range(items):
        it = items - 1 - s if reverse else s
        if it < ng:
            _row8panels(a, r, k_len, wp, p0 + 8 * it, bias, out, o)
        else:
            _row1panel(a, r, k_len, wp, p0 + 7 * ng + it, bias, out, o)


@njit(fastmath=FASTMATH, **INNER)
def _tile(a, r, k_len, wp, onto_out, bias, out, o, p, rows):
    """out[o:o+rows, panel p] = (out or bias) + a[r:r+rows, :k_len] @ W, in registers."""
    inline_here()
    acc = _stack(256, wp)
    nc = _nc(wp)
    n0 = p * nc
    if onto_out:    # out += ...: start from out's rows
        for i in range(rows):
            vmove(acc, (32 * i,), out, (o + i, n0))
    else:           # start from the bias
        for i in range(rows):
            vmove(acc, (32 * i,), bias, (n0,))
    tile_fma(acc, a, r, k_len, wp, p, rows)
    for i in range(rows):
        vmove(out, (o + i, n0), acc, (32 * i,))


@unliteral_calls
@njit(fastmath=FASTMATH, **INNER)
def _products(a1, r1, k1, wp1, a2, r2, k2, wp2, dual, onto_out, m, bias, out, o0,
              p0, p1, reverse):
    """The body of every product here: ``out[o0+i] = a1[r1+i] @ W1 (+ a2[r2+i] @ W2)``.

    ``dual``: add the second product (a second pass of each tile). ``onto_out``:
    start from ``out``'s rows instead of ``bias`` (``out += ...``). Both are
    plain arguments, tested outside the k loops: this one function (and the
    tiles LLVM inlines into it) compiles once per dtype for all three
    products, which are thin wrappers Numba inlines into their callers.
    Per panel, rows go 8 at a time (8 x NC tiles: the panel stays in
    L1 across the row groups), then 4; then the rows left one by one
    (:func:`_row`).
    """
    full_width()
    m8 = m - m % 8
    m4 = m8 + 4 if m - m8 >= 4 else m8
    npan = p1 - p0
    for s in range(npan):
        p = p1 - 1 - s if reverse else p0 + s
        # dual: a second pass of the tile adds a2 @ W2 onto the rows the
        # first stored, still in L1 (bit-identical to one pass: the tile's
        # float values are stored and loaded exactly). One tile in registers
        # across a runtime branch spilled it (13-19 % slower LSTM steps).
        for q in range(2 if dual else 1):
            a, r, kq, wp = (a1, r1, k1, wp1) if q == 0 else (a2, r2, k2, wp2)
            onto = onto_out or q == 1
            for i in range(0, m8, 8):
                _tile(a, r + i, kq, wp, onto, bias, out, o0 + i, p, 8)
            if m4 > m8:     # the 4 leftover rows
                _tile(a, r + m8, kq, wp, onto, bias, out, o0 + m8, p, 4)
    for i in range(m4, m):
        o = o0 + i
        # out[o] as the bias of a product adds onto what out[o] holds.
        _row(a1, r1 + i, k1, wp1, out[o] if onto_out else bias, out, o, p0, p1, reverse)
        if dual:
            _row(a2, r2 + i, k2, wp2, out[o], out, o, p0, p1, reverse)


@njit(fastmath=FASTMATH, inline="always", **JIT)
def gemm_rows(a, r0, m, wp, bias, out, o0, p0, p1, reverse):
    """``out[o0+i, cols] = a[r0+i] @ W[:, cols] + bias[cols]`` for i < m.

    Parameters
    ----------
    a : (R, K) C array; rows r0 .. r0+m-1 are read.
    wp : (P, K, NC) packed ``W (K, N)``, see :func:`pack_transposed`.
    bias : (P*NC,) added to every row (zeros for none).
    out : (O, >= P*NC) C array; rows o0 .. o0+m-1 are written.
    p0, p1 : panels [p0, p1) are computed (columns p0*NC .. p1*NC-1).
    reverse : walk the panels from the last to the first. The result is the
        same; a recurrent layer alternates the direction every step so that
        the panels it read last, still in L2, are the first it reads next
        (when ``W`` is bigger than L2, a one-way walk evicts every panel
        before its reuse: measured 18-20% faster per step at batch 1).
    """
    k = a.shape[1]
    _products(a, r0, k, wp, a, r0, k, wp, False, False, m, bias, out, o0, p0, p1, reverse)


@njit(fastmath=FASTMATH, inline="always", **JIT)
def gemm_rows2(a1, r1, wp1, a2, r2, wp2, m, bias, out, o0, p0, p1, reverse):
    """``out[o0+i] = a1[r1+i] @ W1 + a2[r2+i] @ W2 + bias`` for i < m.

    The two products of a recurrent step in one pass (x_t @ w_ih.T and
    h @ w_hh.T), for batches large enough that the input projection need not
    be hoisted out of the time loop: both k-loops accumulate into the same
    registers (one initialisation and one store per tile). ``wp1``, ``wp2``
    are packed like :func:`gemm_rows`' ``wp`` with the same number of panels.
    """
    _products(a1, r1, a1.shape[1], wp1, a2, r2, a2.shape[1], wp2, True, False, m, bias,
              out, o0, p0, p1, reverse)


@njit(fastmath=FASTMATH, inline="always", **JIT)
def gemm_acc(a, m0, m1, k_len, wp, out):
    """``out[m] += a[m, :k_len] @ W`` for m in [m0, m1).

    ``wp`` (P, >= k_len, NC) packed W; ``out`` (M, >= P*NC). Rows in groups
    of 32 outermost: a group's rows of ``a`` stay in L2 across the panels.
    (The weight gradients of the backward pass: dW += dG^T @ [X | H_prev].)
    """
    npan = wp.shape[0]
    for g in range(m0, m1, 32):
        ge = min(m1, g + 32)
        _products(a, g, k_len, wp, a, g, k_len, wp, False, True, ge - g, out[0], out, g,
                  0, npan, False)
