"""Numba CPU kernels (backends ``numba`` and ``numba-parallel``).

Shape of every kernel (Appleyard et al. 2016, DeepBench): the input
projections ``x @ w_ih.T + b`` do not depend on h, so they are computed for a
chunk of time steps at once (one product with many rows, kept cache-sized);
then, per step, one recurrent product ``h @ w_hh.T`` and one fused pass over
the gates. Both products use the register-blocked kernel of
:mod:`lstm_numba._gemm` on weights packed once (per forward call, or once per
runner: :func:`make_runner`); the gate pass uses the vectorizable activations
of :mod:`lstm_numba._activations` (float32; float64 stays exact). The whole
time loop runs in compiled code, writing into buffers allocated once per
call: no Python and no allocation per step, and no BLAS call at all (so no
BLAS pool to fight with Numba's).

``ln.forward`` finds the packed weights in a small cache keyed by a
fingerprint of their contents (:mod:`lstm_numba._packing`; weights changed
in place are packed again), and ``make setup`` fills Numba's cache with
every path (:func:`warm_cache`).

``numba-parallel`` splits the batch: rows of a batch never interact, so each
thread runs the serial kernel over its own rows for the whole sequence, with
no synchronisation between steps. Below 8 rows (nothing to split) it splits
the hidden units instead: the threads enter one parallel region for the
whole sequence and, per step, share out the panels of the recurrent product
(each takes the same panels every step, so they stay in its L2) and then the
gate pass, meeting at atomic counters (:mod:`lstm_numba._atomics`) rather
than a fork and join per step. With a small ``w_hh`` (see
:data:`HIDDEN_SPLIT_MIN_BYTES`) the two meetings per step cost more than the
split saves, and it runs serially.
"""
from __future__ import annotations

import threading
from typing import NamedTuple

import numba
import numpy as np
from numba import njit, prange

from . import _atomics as atomics
from ._packing import PackCache, fingerprint, fingerprint_many, pack_panels
from ._activations import FASTMATH, sigmoid, tanh
from ._gemm import (JIT, aligned_empty, compile_gemm, full_width, gemm_rows, gemm_rows2,
                    unliteral_calls)
from .cells import spec

_KERNEL = dict(JIT, fastmath=FASTMATH)
_KERNEL_PAR = dict(_KERNEL, parallel=True)
_INNER = dict(_KERNEL, no_cpython_wrapper=True, no_cfunc_wrapper=True)  # called by kernels only

#: Rows (time steps x batch rows) of input projection computed per chunk:
#: enough for the 4-row tiles to reach full speed, small enough that the
#: chunk (ROWS x G*H) stays in L2 until the steps read it.
CHUNK_ROWS = 64


#: Below 8 batch rows, numba-parallel splits each step's recurrent product
#: over the threads only when w_hh is at least this big: two meetings of the
#: threads per step cost about a microsecond or more, more than a small
#: product saves. Measured on 2 cores (race.py): LSTM H=128 (256 KiB) and GRU
#: H=256 (768 KiB) were slower split; LSTM H=256 (1 MiB) and every cell at
#: H=512 (1-4 MiB) 1.3-2.1x faster than one thread.
HIDDEN_SPLIT_MIN_BYTES = 1024 * 1024


#: Batch rows (per thread) from which the LSTM and RNN compute both products
#: of a step in one pass (see _steps_fused) instead of hoisting the input
#: projection over a chunk of steps. Read when the kernels compile (and
#: cached with them): changing it later has no effect.
FUSE_MIN_ROWS = 8

#: Hidden units per gate-pass work item in the hidden split.
GATE_BLOCK = 128

#: Panels per product work item in the hidden split: 8 panels, the width
#: of gemm_rows' one-row tile (256 float32 / 128 float64 columns).
ITEM_PANELS = 8


def unavailable(name: str) -> str | None:
    return None


# ---------------------------------------------------------------- gate passes
# One step of one batch row, hidden units [j0, j1), on 1-D rows: xg holds the
# input projection with the biases folded in, hg holds h_prev @ w_hh.T, hprev
# the previous h, out the new h. Each is a separate small function over
# contiguous rows, writing to at most two arrays: that keeps LLVM's runtime
# alias checks few enough for it to vectorize the loop (with more stores it
# fell back to scalar code, 10 ns per hidden unit instead of ~1). Indices are
# unsigned: with signed ones Numba's negative-index wraparound made LLVM
# turn the gate offsets (hid + j, ...) into gathers.

@njit(inline="always", **_KERNEL)
def _lstm_units(xg, hg, fused, c_in, c_out, keep, out, h1, j0, j1):
    """The LSTM cell on units [j0, j1) of one row: its one copy in the package.

    ``fused``: ``xg`` holds both products and the biases (``hg`` unused).
    ``keep``: write the activated gates (i, f, g, o) back over ``xg``, the
    training forward's tape. ``c_in``/``c_out``: previous and new c (the same
    array in inference). Both flags are constants where this is inlined, so
    each caller compiles only its own case. ``h1``, ``j0``, ``j1`` unsigned.
    """
    h2 = h1 + h1
    h3 = h2 + h1
    for j in range(j0, j1):
        if fused:
            gi = sigmoid(xg[j])
            gf = sigmoid(xg[h1 + j])
            gg = tanh(xg[h2 + j])
            go = sigmoid(xg[h3 + j])
        else:
            gi = sigmoid(xg[j] + hg[j])
            gf = sigmoid(xg[h1 + j] + hg[h1 + j])
            gg = tanh(xg[h2 + j] + hg[h2 + j])
            go = sigmoid(xg[h3 + j] + hg[h3 + j])
        cc = gf * c_in[j] + gi * gg
        if keep:
            xg[j] = gi
            xg[h1 + j] = gf
            xg[h2 + j] = gg
            xg[h3 + j] = go
        c_out[j] = cc
        out[j] = go * tanh(cc)


@unliteral_calls
@njit(**_INNER)
def _lstm_row(xg, hg, c, out, hid, j0, j1):
    full_width()
    _lstm_units(xg, hg, False, c, c, False, out, np.uint64(hid), np.uint64(j0), np.uint64(j1))


@unliteral_calls
@njit(**_INNER)
def _gru_row(xg, hg, b_hn, hprev, out, hid, j0, j1):
    full_width()
    one = out.dtype.type(1.0)
    h1 = np.uint64(hid)
    h2 = h1 + h1
    for j in range(np.uint64(j0), np.uint64(j1)):
        r = sigmoid(xg[j] + hg[j])
        z = sigmoid(xg[h1 + j] + hg[h1 + j])
        n = tanh(xg[h2 + j] + r * (hg[h2 + j] + b_hn[j]))
        out[j] = (one - z) * n + z * hprev[j]


@unliteral_calls
@njit(**_INNER)
def _rnn_row(xg, hg, out, hid, j0, j1):
    full_width()
    for j in range(np.uint64(j0), np.uint64(j1)):
        out[j] = tanh(xg[j] + hg[j])


@unliteral_calls
@njit(**_INNER)
def _lstm_row1(g, c, out, hid):
    """_lstm_row when both products are already summed into ``g``."""
    full_width()
    h1 = np.uint64(hid)
    _lstm_units(g, g, True, c, c, False, out, h1, np.uint64(0), h1)


@unliteral_calls
@njit(**_INNER)
def _rnn_row1(g, out, hid):
    full_width()
    for j in range(np.uint64(0), np.uint64(hid)):
        out[j] = tanh(g[j])


@njit(inline="always", **_KERNEL)
def _gate_row(cell, xg, hg, b_hn, hprev, c, out, j0, j1):
    """Hidden units [j0, j1) of one batch row (c is unused but for the LSTM)."""
    hid = out.shape[0]
    if cell == 1:
        _lstm_row(xg, hg, c, out, hid, j0, j1)
    elif cell == 2:
        _gru_row(xg, hg, b_hn, hprev, out, hid, j0, j1)
    else:
        _rnn_row(xg, hg, out, hid, j0, j1)


@njit(inline="always", **_KERNEL)
def _gates(cell, xp, rx0, hp, b_hn, hprev, rp0, c, out2, ro0, b0, nb):
    """Gate pass of one step for batch rows b0..b0+nb-1.

    xp row rx0+i, hp row i, previous h at hprev row rp0+i, new h to out2 row
    ro0+i, cell state c row b0+i.
    """
    hid = out2.shape[1]
    for i in range(nb):
        ci = b0 + i if cell == 1 else 0
        _gate_row(cell, xp[rx0 + i], hp[i], b_hn, hprev[rp0 + i], c[ci], out2[ro0 + i], 0, hid)


# ------------------------------------------------------- serial (batch range)

@njit(inline="always", **_KERNEL)
def _project(x2, batch, wih, bx, xp, t0, t1, b0, nb):
    """xp rows (t-t0)*nb+i = x[t, b0+i] @ w_ih.T + bx for t in [t0, t1)."""
    npan = wih.shape[0]
    if nb == batch:     # the rows of all steps are contiguous in x: one product
        gemm_rows(x2, t0 * batch, (t1 - t0) * batch, wih, bx, xp, 0, 0, npan, False)
    else:
        for t in range(t0, t1):
            gemm_rows(x2, t * batch + b0, nb, wih, bx, xp, (t - t0) * nb, 0, npan, False)


# inline: a separate function would be one more library for Numba to link,
# re-optimise and emit (with gemm_rows2 and gemm_rows inside it) on a cold
# compile, ~1 s on the Intel Xeon here.
@njit(inline="always", **_KERNEL)
def _steps_fused(cell, x2, batch, wih, bx, whh, h, c, out2, b0, b1, hp):
    """LSTM/RNN steps for rows [b0, b1) with both products in one pass per step.

    From FUSE_MIN_ROWS rows on, the input projection of a step is a product
    big enough on its own, so it needs no hoisting: each 4-row tile
    accumulates x_t @ w_ih.T and h @ w_hh.T in the same registers
    (gemm_rows2), and the gate pass reads one array. (Not the GRU, whose n
    gate needs the recurrent part apart: r * (W_hn h + b_hn).)
    """
    hid = out2.shape[1]
    t_len = x2.shape[0] // batch
    nb = b1 - b0
    npan = whh.shape[0]
    for t in range(t_len):
        if t == 0:
            hprev, rp0 = h, b0
        else:
            hprev, rp0 = out2, (t - 1) * batch + b0
        gemm_rows2(x2, t * batch + b0, wih, hprev, rp0, whh, nb, bx, hp, 0, 0, npan,
                   t % 2 == 1)
        for i in range(nb):
            if cell == 1:
                _lstm_row1(hp[i], c[b0 + i], out2[t * batch + b0 + i], hid)
            else:
                _rnn_row1(hp[i], out2[t * batch + b0 + i], hid)


@unliteral_calls
@njit(**_KERNEL)
def _steps_range(cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, b0, b1, xp, hp):
    """Run all steps for batch rows [b0, b1); cell 0 rnn, 1 lstm, 2 gru.

    x2 (T*B, I), out2 (T*B, H): x and outputs with (t, b) merged; h (B, H)
    the initial state (read only: later states are out2's rows), c (B, H)
    updated in place; xp (chunk*nb, Np), hp (nb, Np) scratch.
    """
    nb = b1 - b0
    if cell != 2 and nb >= FUSE_MIN_ROWS:
        _steps_fused(cell, x2, batch, wih, bx, whh, h, c, out2, b0, b1, hp)
        return
    t_len = x2.shape[0] // batch
    tc = xp.shape[0] // nb
    npan = whh.shape[0]
    for t0 in range(0, t_len, tc):
        t1 = min(t_len, t0 + tc)
        _project(x2, batch, wih, bx, xp, t0, t1, b0, nb)
        for t in range(t0, t1):
            # h_prev is h0 at t = 0, else the previous step's output rows.
            if t == 0:
                hprev, rp0 = h, b0
            else:
                hprev, rp0 = out2, (t - 1) * batch + b0
            gemm_rows(hprev, rp0, nb, whh, zb, hp, 0, 0, npan, t % 2 == 1)
            _gates(cell, xp, (t - t0) * nb, hp, b_hn, hprev, rp0, c, out2,
                   t * batch + b0, b0, nb)


# ------------------------------------------------------------------ parallel

@njit(**_KERNEL_PAR)
def _steps_batch_split(cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, bounds,
                       xps, hps):
    """Each chunk of batch rows [bounds[q], bounds[q+1]) on its own thread."""
    for q in prange(bounds.shape[0] - 1):
        _steps_range(cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2,
                     bounds[q], bounds[q + 1], xps[q], hps[q])


@njit(inline="always", **_KERNEL)
def _claim(claim, base, q, nthreads, home, reverse):
    """Next work item of a phase for worker q, or -1 when none is left.

    Items [home[r], home[r+1]) belong to worker r: it takes its own first
    (the same panels every step, so they stay in its L2), then steals;
    ``reverse`` hands them out from the top (see gemm_rows' ``reverse``).
    """
    for s in range(nthreads):
        r = (q + s) % nthreads
        n = home[r + 1] - home[r]
        if n > 0 and atomics.load(claim, base + r) < n:
            i = atomics.fetch_add(claim, base + r, 1)
            if i < n:
                return home[r + 1] - 1 - i if reverse else home[r] + i
    return -1


@unliteral_calls
@njit(**_INNER)
def _hidden_worker(q, nthreads, cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, xp, hp,
                   claim, done, home_in, home_rec, home_gate, ublock):
    """One thread's share of the whole sequence (see _steps_hidden_split).

    Each phase (input projection of a chunk, recurrent product of a step,
    gate pass of a step) is a set of items; a worker claims items, counts
    each finished one in done[k], and waits until done[k] holds them all.
    Deadlock-free whatever the scheduling: a worker waits only after every
    item is claimed, and a claimed item is being run by a live thread.
    """
    t_len = x2.shape[0] // batch
    tc = xp.shape[0] // batch
    hid = out2.shape[1]
    npi = wih.shape[0]
    npr = whh.shape[0]
    nub = (hid + ublock - 1) // ublock
    k = 0
    for t0 in range(0, t_len, tc):
        t1 = min(t_len, t0 + tc)
        while True:                 # input projection: groups of ITEM_PANELS panels
            it = _claim(claim, k * nthreads, q, nthreads, home_in, False)
            if it < 0:
                break
            gemm_rows(x2, t0 * batch, (t1 - t0) * batch, wih, bx, xp, 0,
                      ITEM_PANELS * it, min(npi, ITEM_PANELS * (it + 1)), False)
            atomics.fetch_add(done, k, 1)
        atomics.wait_at_least(done, k, home_in[nthreads])
        k += 1
        for t in range(t0, t1):
            if t == 0:
                hprev, rp0 = h, 0
            else:
                hprev, rp0 = out2, (t - 1) * batch
            while True:             # recurrent product: groups of ITEM_PANELS panels
                it = _claim(claim, k * nthreads, q, nthreads, home_rec, t % 2 == 1)
                if it < 0:
                    break
                gemm_rows(hprev, rp0, batch, whh, zb, hp, 0, ITEM_PANELS * it,
                          min(npr, ITEM_PANELS * (it + 1)), t % 2 == 1)
                atomics.fetch_add(done, k, 1)
            atomics.wait_at_least(done, k, home_rec[nthreads])
            k += 1
            while True:             # gate pass: (batch row, block of units)
                it = _claim(claim, k * nthreads, q, nthreads, home_gate, False)
                if it < 0:
                    break
                i = it // nub
                j0 = (it % nub) * ublock
                ci = i if cell == 1 else 0
                _gate_row(cell, xp[(t - t0) * batch + i], hp[i], b_hn, hprev[rp0 + i],
                          c[ci], out2[t * batch + i], j0, min(hid, j0 + ublock))
                atomics.fetch_add(done, k, 1)
            atomics.wait_at_least(done, k, home_gate[nthreads])
            k += 1


@njit(**_KERNEL_PAR)
def _steps_hidden_split(cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, xp, hp,
                        claim, done, home_in, home_rec, home_gate, ublock):
    """All batch rows, the hidden units split: one parallel region per sequence.

    The threads stay in this region for every step and meet at counters
    (lstm_numba._atomics) instead of a fork and join per step.
    """
    nthreads = home_in.shape[0] - 1
    for q in prange(nthreads):
        _hidden_worker(q, nthreads, cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2,
                       xp, hp, claim, done, home_in, home_rec, home_gate, ublock)


# ------------------------------------------------------------ Python wrappers

_pack = pack_panels     # PyTorch's (N, K) weight -> (P, K, NC) panels of its transpose


def _split(n: int, parts: int, unit: int) -> np.ndarray:
    """Bounds cutting range(n) into ``parts`` pieces, multiples of ``unit`` inside."""
    cuts = [min(n, int(round(q * n / parts / unit)) * unit) for q in range(parts)]
    return np.array(cuts + [n], dtype=np.int64)


def _plan(batch: int, whh_bytes: int, threads: int) -> str:
    """How numba-parallel runs: "serial", "batch" (split rows) or "hidden"."""
    if threads < 2:
        return "serial"
    if batch // 4 >= 2:
        return "batch"
    return "hidden" if whh_bytes >= HIDDEN_SPLIT_MIN_BYTES else "serial"


def _compile_gemms(x2, h, out2, wih, whh, bias, scratch):
    """gemm_rows for each matrix the kernels multiply (see compile_gemm).

    Only needed when the cell kernel itself is compiled (it links the
    products compiled here, with SLP on); see :func:`_ready`.
    """
    for a, wp in ((x2, wih), (h, whh), (out2, whh)):
        compile_gemm(a, 0, 1, wp, bias, scratch, 0, 0, 1, False)
    for a in (h, out2):
        compile_gemm(x2, 0, wih, a, 0, whh, 1, bias, scratch, 0, 0, 1, False,
                     kernel=gemm_rows2)


_READY: set = set()


def _ready(kernel, args, gemm_args, quick) -> None:
    """Make sure ``kernel(*args)`` will run compiled code with SLP-built products.

    If Numba's cache (or this process) already has ``kernel`` for these
    argument types, load it and nothing else: its compiled code contains
    the products, so loading gemm_rows and gemm_rows2 apart would only cost
    time on a first call (~2 x 20-40 ms). Otherwise compile the products
    first with SLP on (:func:`_compile_gemms`); the kernel then compiles on
    its first call and links them. ``quick``, a cheap key made by the caller
    from what can vary between calls (see :func:`_run`), makes later calls
    skip all this with one set look-up.
    """
    if quick in _READY:
        return
    if not _load_cached(kernel, tuple(numba.typeof(a) for a in args)):
        _compile_gemms(*gemm_args)
    _READY.add(quick)


def _load_cached(kernel, sig) -> bool:
    """True if ``kernel`` has ``sig`` compiled, now or from Numba's cache (loaded)."""
    try:     # what Dispatcher.compile does first, without compiling on a miss
        if sig in kernel.overloads:
            return True
        cres = kernel._cache.load_overload(sig, kernel.targetctx)
        if cres is None:
            return False
        kernel.targetctx.insert_user_function(cres.entry_point, cres.fndesc, [cres.library])
        kernel.add_overload(cres)
        return True
    except Exception:        # Numba internals moved (or a stand-in): compile the products
        return False


class Packed(NamedTuple):
    """Weights of one layer in the kernels' layout (built by :func:`pack`)."""

    cell: int            # 0 rnn, 1 lstm, 2 gru
    wih: np.ndarray      # (P, I, NC) panels of w_ih.T
    whh: np.ndarray      # (P, H, NC) panels of w_hh.T
    bx: np.ndarray       # (P*NC,) biases folded into the input projection
    b_hn: np.ndarray     # (H,) the GRU's b_hn (zeros otherwise)
    zb: np.ndarray       # (P*NC,) zeros: the recurrent product has no bias


def pack(cell: str, weights) -> Packed:
    """Pack validated ``weights`` of ``cell`` once for any number of forward calls."""
    w_ih, w_hh, b_ih, b_hh = weights
    hid = w_hh.shape[1]
    dt = w_hh.dtype
    code = spec(cell).code
    wih, whh = _pack(w_ih), _pack(w_hh)
    n_pad = whh.shape[0] * whh.shape[2]
    gh = w_hh.shape[0]
    # Biases: b_ih + b_hh folded into the input projection, except the GRU's
    # b_hn, which sits inside r * (W_hn h + b_hn) and so stays apart.
    bx = np.zeros(n_pad, dtype=dt)
    bx[:gh] = b_ih + b_hh
    b_hn = np.zeros(hid, dtype=dt)
    if code == 2:
        bx[2 * hid:gh] = b_ih[2 * hid:]
        b_hn[:] = b_hh[2 * hid:]
    return Packed(code, wih, whh, bx, b_hn, np.zeros(n_pad, dtype=dt))


#: Scratch buffers up to this size are kept between calls (per thread, see
#: :func:`_scratch`); bigger ones are allocated per call, where the
#: allocation is small beside the work and memory is not held for nothing.
SCRATCH_KEEP_BYTES = 4 << 20

_TLS = threading.local()


def _scratch(slot: str, shape: tuple, dt) -> np.ndarray:
    """An aligned, uninitialised ``shape`` array for ``slot``, reused between calls.

    The kernels overwrite their scratch (input projections, products)
    before reading it, so a buffer from an earlier call serves as well as a
    new one, without the allocation and the page faults of a fresh one.
    Kept per thread (the kernels release the GIL: two threads must never
    share one) and per slot, one shape at a time; never returned to users.
    """
    bufs = _TLS.__dict__
    a = bufs.get(slot)
    if a is None or a.shape != shape or a.dtype != dt:
        a = aligned_empty(shape, dt)
        if a.nbytes <= SCRATCH_KEEP_BYTES:
            bufs[slot] = a
    return a


def _run(pk: Packed, x, h, c0, threads: int):
    """Forward pass on validated, C-contiguous ``x (T,B,I)``, ``h (B,H)``, ``c0``.

    Returns new arrays ``(outputs, h, c)`` (``c`` None but for the LSTM),
    never views of the inputs or of another call's results.
    """
    t_len, batch, n_in = x.shape
    hid = h.shape[1]
    dt = x.dtype
    cell, wih, whh, bx, b_hn, zb = pk
    n_pad = zb.shape[0]
    c = c0.copy() if cell == 1 else np.empty((1, 1), dtype=dt)
    out = np.empty((t_len, batch, hid), dtype=dt)
    x2 = x.reshape(t_len * batch, n_in)
    out2 = out.reshape(t_len * batch, hid)
    # What decides the kernels' Numba signature and is not fixed here: the
    # dtype and whether the caller's x and h are writeable (everything else
    # is C-contiguous, aligned and writeable, made here or by pack).
    flags = (dt.num, x.flags.writeable, h.flags.writeable)

    plan = _plan(batch, whh.nbytes, threads)
    chunks = min(threads, batch // 4)
    if plan == "batch":
        bounds = _split(batch, chunks, 4)
        nb_max = int(np.diff(bounds).max())
        tc = min(t_len, max(1, -(-CHUNK_ROWS // nb_max)))
        xps = _scratch("xps", (chunks, tc * nb_max, n_pad), dt)
        hps = _scratch("hps", (chunks, nb_max, n_pad), dt)
        args = (cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, bounds, xps, hps)
        _ready(_steps_batch_split, args, (x2, h, out2, wih, whh, bx, xps[0]),
               (_steps_batch_split,) + flags)
        _steps_batch_split(*args)
    else:
        tc = min(t_len, max(1, -(-CHUNK_ROWS // batch)))
        xp = _scratch("xp", (tc * batch, n_pad), dt)
        hp = _scratch("hp", (batch, n_pad), dt)
        gemm_args = (x2, h, out2, wih, whh, bx, xp)
        if plan == "hidden" and whh.shape[0] >= 2:
            groups = lambda npan: -(-npan // ITEM_PANELS)     # noqa: E731 - work items
            ublock = GATE_BLOCK
            home_in = _split(groups(wih.shape[0]), threads, 1)
            home_rec = _split(groups(whh.shape[0]), threads, 1)
            home_gate = _split(batch * -(-hid // ublock), threads, 1)
            phases = -(-t_len // tc) + 2 * t_len
            claim = np.zeros(phases * threads, dtype=np.int64)
            done = np.zeros(phases, dtype=np.int64)
            args = (cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, xp, hp,
                    claim, done, home_in, home_rec, home_gate, ublock)
            _ready(_steps_hidden_split, args, gemm_args, (_steps_hidden_split,) + flags)
            _steps_hidden_split(*args)
        else:
            args = (cell, x2, batch, wih, bx, whh, zb, b_hn, h, c, out2, 0, batch, xp, hp)
            _ready(_steps_range, args, gemm_args, (_steps_range,) + flags)
            _steps_range(*args)
    return out, out[-1].copy(), (c if cell == 1 else None)


#: Packs of weights recently seen by forward_numba*, keyed by their contents.
PACKS = PackCache(max_bytes=64 << 20)


def cached_pack(cell: str, weights) -> Packed:
    """:func:`pack`, reused while the weights' contents are unchanged.

    The key is the cell, dtype, shapes and a fingerprint of every byte of
    the four arrays (:mod:`lstm_numba._packing`): weights changed in place
    between calls are packed again, never served stale. Reading the weights
    once (one compiled call for the four) costs a fifth to a quarter of
    packing them (transpose and write): at B=1, H=256 it is most of
    ``ln.forward``'s set-up (``benchmarks/overhead.py``).
    """
    w_ih, w_hh, b_ih, b_hh = weights
    key = (cell, w_hh.dtype.str, w_ih.shape, w_hh.shape, b_ih.shape, b_hh.shape,
           fingerprint_many(weights))
    return PACKS.get(key, lambda: pack(cell, weights))


def forward_numba(p):
    """Backend ``numba``: ``(outputs (T,B,H), h (B,H), c (B,H) or None)``.

    One thread; the whole sequence in one compiled call.
    """
    return _run(cached_pack(p.spec.name, p.weights), p.x, p.h0, p.c0, 1)


def forward_numba_parallel(p):
    """Backend ``numba-parallel``: the same, on Numba's thread pool.

    Uses ``numba.get_num_threads()`` threads (set it with
    :func:`lstm_numba.set_num_threads`): over batch rows when B >= 8, else
    over the panels of the recurrent product. No BLAS is called.
    """
    return _run(cached_pack(p.spec.name, p.weights), p.x, p.h0, p.c0,
                numba.get_num_threads())


def make_runner(name: str, cell: str, weights):
    """``run(x, h0, c0) -> (outputs, h, c)`` with ``weights`` packed once.

    Used by :meth:`lstm_numba.backends.Backend.runner` (benchmarks time the
    forward pass, not the packing, as they do for torch's module). Like the
    torch runner, it keeps a packed copy: later changes to ``weights`` are
    not seen.
    """
    pk = pack(cell, weights)
    if name == "numba":
        return lambda x, h0, c0=None: _run(pk, x, h0, c0, 1)
    return lambda x, h0, c0=None: _run(pk, x, h0, c0, numba.get_num_threads())


def warm_cache(dtypes=("float32", "float64")) -> list[str]:
    """Compile (or load) every kernel path of both backends into Numba's cache.

    Run by ``make setup`` (target ``warm-cache``) so that a first benchmark
    or forward call loads compiled code instead of compiling it: the serial
    kernel (one compile serves every cell: the cell is a runtime code), and
    with 2+ threads the batch split and the hidden split. Returns the paths
    compiled, as ``"dtype/path"``.
    """
    from .measure import make_problem
    done = []
    threads = numba.get_num_threads()
    for dt in dtypes:
        dt = np.dtype(dt)
        # (batch, hidden): 1 x 16 serial; 8 x 16 batch split; 1 x 512 over
        # HIDDEN_SPLIT_MIN_BYTES of w_hh (float32 LSTM) for the hidden split.
        for path, batch, hid in (("serial", 1, 16), ("batch", 8, 16), ("hidden", 1, 512)):
            if path != "serial" and threads < 2:
                continue
            p = make_problem("lstm", 2, batch, hid, dtype=dt)
            pk = pack("lstm", p.w)
            _run(pk, p.x, p.h0, p.c0, 1 if path == "serial" else threads)
            done.append(f"{dt.name}/{path}")
    z = np.zeros(4)
    fingerprint(z)                    # the pack cache key's kernels (one for all dtypes)
    fingerprint_many((z, z, z, z))
    return done
