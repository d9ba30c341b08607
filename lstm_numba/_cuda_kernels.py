"""Kernel pieces shared by the ``cuda`` and ``cuda-persistent`` designs.

* :func:`gate_functions`: the gate math of one (batch row, hidden unit),
  applied in registers by both recurrent kernels, its loads issued early.
* :func:`warp_partials`: the per-warp reduction both recurrent kernels end
  their dot products with (warp shuffles on a GPU; shared memory in the
  simulator, which has no shuffles).
* :func:`recurrent_parts`: the constants and device functions both
  recurrent kernels are built from, ending with ``finish``: the step's
  reduction, the gate sums and the gates, as one device function.
* :func:`matmul_nt_kernel`: ``out (M, N) = a (M, K) @ w (N, K).T``, the input
  projection of all T steps as one product when CuPy/cuBLAS is absent.
  64x64 output tile per block, 4x4 outputs per thread in registers, K in
  tiles of 16 through shared memory.

The recurrent kernels live with their designs: :mod:`._cuda_step` (one
launch per step) and :mod:`._cuda_persistent` (one cooperative launch per
sequence). Each kernel is built by a factory per (cell, dtype, tile) so
the gate count, the gate math, the tile sizes and the scalar type are
compile-time constants (a float64 literal in a float32 kernel would
silently promote the arithmetic; a tile loop with a constant trip count
unrolls, so per-thread arrays stay in registers).

The kernels do no bounds checks on their arguments' shapes: the runners
check every shape before launching. Inside, every index that depends on a
size (H, B, K not multiples of a tile) is guarded.

State layout of both recurrent kernels: ``hbuf (T+1, B, H)`` holds h0 at
row 0 and h_t at row t+1; step t reads row t and writes row t+1. So no
block ever overwrites an h another block may still read (the double buffer,
unrolled over time), and a row is never read before the step that wrote it,
so no stale L1 line can exist for it. The LSTM's ``c (B, H)`` is updated in
place: each element is read and written by one thread only.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numba import cuda
from numba.np import numpy_support

from .cells import spec

# ---- projection kernel geometry ---------------------------------------------
MM_T = 64          # output tile (rows and columns)
MM_TK = 16         # K tile
MM_THREADS = (16, 16)

WARP = 32
FULL_MASK = 0xFFFFFFFF


def use_shuffles() -> bool:
    """Warp shuffles in the reductions: yes on a GPU, no in the simulator (it has none)."""
    from ._cuda_env import simulator

    return not simulator()



def nbtype(dtype):
    return numpy_support.from_dtype(np.dtype(dtype))


# ---------------------------------------------------------------------------
# gate math, shared by both recurrent kernels
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def gate_functions(cell: str, dtype):
    """``(load, apply)``: the gate math of one (b, j) of step t, in two halves.

    ``load(xp, b_ih, b_hh, hbuf, c, t, b, j, H) -> (x0, x1, x2, x3, e0, e1)``
    reads everything the gates need besides the recurrent products: the
    input projection plus both biases per gate (GRU's candidate gate keeps
    ``b_hn`` apart, as ``e0``: ``n = tanh(x_n + b_in + r * (W_hn h + b_hn))``),
    and the state (LSTM: ``e0 = c[b, j]``; GRU: ``e1 = h_{t-1}[b, j]``).
    None of it depends on this step's products, so the kernels issue these
    loads before their dot products and the latency hides behind them.

    ``apply(x0, x1, x2, x3, e0, e1, a0, a1, a2, a3, hbuf, c, t, b, j)``
    takes the G recurrent pre-activations ``a0..a3`` (unused ones zero),
    writes ``hbuf[t+1, b, j]`` and, for the LSTM, ``c[b, j]``.
    """
    one = np.dtype(dtype).type(1.0)
    zero = np.dtype(dtype).type(0.0)
    code = spec(cell).code

    @cuda.jit(device=True)
    def sig(v):
        return one / (one + math.exp(-v))

    @cuda.jit(device=True)
    def load(xp, b_ih, b_hh, hbuf, c, t, b, j, hid):
        x1 = zero
        x2 = zero
        x3 = zero
        e0 = zero
        e1 = zero
        x0 = xp[t, b, j] + b_ih[j] + b_hh[j]
        if code == 1:      # lstm: i, f, g, o
            x1 = xp[t, b, hid + j] + b_ih[hid + j] + b_hh[hid + j]
            x2 = xp[t, b, 2 * hid + j] + b_ih[2 * hid + j] + b_hh[2 * hid + j]
            x3 = xp[t, b, 3 * hid + j] + b_ih[3 * hid + j] + b_hh[3 * hid + j]
            e0 = c[b, j]
        elif code == 2:    # gru: r, z, n
            x1 = xp[t, b, hid + j] + b_ih[hid + j] + b_hh[hid + j]
            x2 = xp[t, b, 2 * hid + j] + b_ih[2 * hid + j]
            e0 = b_hh[2 * hid + j]
            e1 = hbuf[t, b, j]
        return x0, x1, x2, x3, e0, e1

    @cuda.jit(device=True)
    def apply(x0, x1, x2, x3, e0, e1, a0, a1, a2, a3, hbuf, c, t, b, j):
        if code == 1:      # lstm
            cc = sig(x1 + a1) * e0 + sig(x0 + a0) * math.tanh(x2 + a2)
            c[b, j] = cc
            hbuf[t + 1, b, j] = sig(x3 + a3) * math.tanh(cc)
        elif code == 2:    # gru
            r = sig(x0 + a0)
            z = sig(x1 + a1)
            n = math.tanh(x2 + r * (a2 + e0))
            hbuf[t + 1, b, j] = (one - z) * n + z * e1
        else:              # rnn (tanh)
            hbuf[t + 1, b, j] = math.tanh(x0 + a0)

    return load, apply


@lru_cache(maxsize=None)
def warp_partials(dtype, n_values: int, n_warps: int, shuffles: bool):
    """``reduce(acc, red, scr, warp, lane)``: sum ``acc[0:n_values]`` over a warp.

    Writes the warp's sums to ``red[warp, v]``; every thread of the block
    must call it (the simulator path meets at ``syncthreads``), and the
    caller synchronises the block before reading ``red``. ``scr`` is a
    shared scratch array of ``n_warps * 32 * n_values`` elements for the
    simulator path (any 1-element array on a GPU). With ``shuffles``: a
    butterfly of ``shfl_down_sync`` (5 steps), lane 0 writing; without: all
    lanes store, lane 0 adds the 32 values.
    """
    zero = np.dtype(dtype).type(0.0)
    nv = n_values

    if shuffles:
        @cuda.jit(device=True, inline=True)
        def reduce(acc, red, scr, warp, lane):
            for v in range(nv):
                s = acc[v]
                s += cuda.shfl_down_sync(FULL_MASK, s, 16)
                s += cuda.shfl_down_sync(FULL_MASK, s, 8)
                s += cuda.shfl_down_sync(FULL_MASK, s, 4)
                s += cuda.shfl_down_sync(FULL_MASK, s, 2)
                s += cuda.shfl_down_sync(FULL_MASK, s, 1)
                if lane == 0:
                    red[warp, v] = s
    else:
        @cuda.jit(device=True)
        def reduce(acc, red, scr, warp, lane):
            base = (warp * WARP + lane) * nv
            for v in range(nv):
                scr[base + v] = acc[v]
            cuda.syncthreads()
            if lane == 0:
                for v in range(nv):
                    s = zero
                    for ln in range(WARP):
                        s += scr[(warp * WARP + ln) * nv + v]
                    red[warp, v] = s

    return reduce


def scratch_len(n_values: int, n_warps: int, shuffles: bool) -> int:
    """Length of the simulator's reduction scratch (1 when shuffles are used)."""
    return 1 if shuffles else n_warps * WARP * n_values


@lru_cache(maxsize=None)
def recurrent_parts(cell: str, dtype, bt: int, kw: int, n_warps: int, shuffles: bool):
    """What both recurrent kernels are built from, for one (cell, dtype, tile).

    Returns ``(dt, zero, G, GB, load, finish, red_shape, scr_len, kstep)``:
    the Numba scalar type and its zero, the gate count ``G`` and ``GB = G *
    bt`` partial sums per lane, ``load`` of :func:`gate_functions`, the shapes
    of the kernel's shared arrays ``red (n_warps, GB)`` and ``scr``
    (:func:`scratch_len`), and ``kstep = 32 * kw`` (a lane's stride over K).
    A kernel unpacks them into its factory's locals: the compiler sees
    compile-time constants.

    ``finish(acc, red, scr, warp, lane, gate, item, q, x0, x1, x2, x3, e0, e1,
    hbuf, c, t, b, j)`` ends a step's dot products; every thread of the block
    calls it. Each warp's partial sums ``acc`` go to ``red[warp]``
    (:func:`warp_partials`), the block meets at ``syncthreads``, then the gate
    thread (``gate``) of work item ``item`` and tile row ``q`` adds up the
    ``kw`` warps ``item*kw ..`` that split its K, per gate, and applies the
    gates to the inputs it loaded early (``x0..e1``, :func:`gate_functions`).
    """
    dt = nbtype(dtype)
    zero = np.dtype(dtype).type(0.0)
    G = spec(cell).n_gates
    GB = G * bt
    load, apply = gate_functions(cell, dtype)
    reduce = warp_partials(dtype, GB, n_warps, shuffles)

    @cuda.jit(device=True, inline=True)
    def finish(acc, red, scr, warp, lane, gate, item, q, x0, x1, x2, x3, e0, e1,
               hbuf, c, t, b, j):
        reduce(acc, red, scr, warp, lane)
        cuda.syncthreads()
        if gate:
            a0 = zero
            a1 = zero
            a2 = zero
            a3 = zero
            for s in range(kw):
                w0 = item * kw + s
                a0 += red[w0, q]
                if G > 1:
                    a1 += red[w0, bt + q]
                    a2 += red[w0, 2 * bt + q]
                if G > 3:
                    a3 += red[w0, 3 * bt + q]
            apply(x0, x1, x2, x3, e0, e1, a0, a1, a2, a3, hbuf, c, t, b, j)

    return (dt, zero, G, GB, load, finish, (n_warps, GB),
            scratch_len(GB, n_warps, shuffles), WARP * kw)


# ---------------------------------------------------------------------------
# input projection: out = a @ w.T
# ---------------------------------------------------------------------------

@lru_cache(maxsize=None)
def matmul_nt_kernel(dtype):
    """Kernel ``(a (M,K), w (N,K), out (M,N))``; launch with grid
    ``(ceil(N/64), ceil(M/64))`` and block ``(16, 16)``."""
    dt = nbtype(dtype)
    zero = np.dtype(dtype).type(0.0)
    T, TK = MM_T, MM_TK
    ty_n, tx_n = MM_THREADS
    nthreads = tx_n * ty_n
    per = T // tx_n       # 4 outputs per thread along each axis
    # Array shapes must be compile-time literals: plain ints/tuples from here.
    tile_shape = (TK, T + 1)
    acc_shape = (per, per)

    @cuda.jit
    def matmul_nt(a, w, out):
        a_s = cuda.shared.array(tile_shape, dt)
        w_s = cuda.shared.array(tile_shape, dt)
        m_len, k_len = a.shape
        n_len = w.shape[0]
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        tid = ty * tx_n + tx
        m0 = cuda.blockIdx.y * T
        n0 = cuda.blockIdx.x * T
        acc = cuda.local.array(acc_shape, dt)
        for i in range(per):
            for jj in range(per):
                acc[i, jj] = zero
        for k0 in range(0, k_len, TK):
            # T*TK elements of each tile; consecutive threads read consecutive k.
            for e in range(tid, T * TK, nthreads):
                row = e // TK
                kk = e - row * TK
                k = k0 + kk
                v = zero
                if m0 + row < m_len and k < k_len:
                    v = a[m0 + row, k]
                a_s[kk, row] = v
                v = zero
                if n0 + row < n_len and k < k_len:
                    v = w[n0 + row, k]
                w_s[kk, row] = v
            cuda.syncthreads()
            for kk in range(TK):
                for i in range(per):
                    av = a_s[kk, ty + ty_n * i]
                    for jj in range(per):
                        acc[i, jj] += av * w_s[kk, tx + tx_n * jj]
            cuda.syncthreads()
        for i in range(per):
            m = m0 + ty + ty_n * i
            if m < m_len:
                for jj in range(per):
                    n = n0 + tx + tx_n * jj
                    if n < n_len:
                        out[m, n] = acc[i, jj]

    return matmul_nt
