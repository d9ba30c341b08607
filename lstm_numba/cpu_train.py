"""Training with the Numba CPU kernels (backends ``numba`` and ``numba-parallel``).

The interface of a training module (see :mod:`lstm_numba.training`):
:func:`forward_train` and :func:`backward_train`.

Forward: the inference kernel's loop (:mod:`lstm_numba.cpu`, same products,
same gate arithmetic: the same outputs) whose gate pass also stores the
tape: LSTM the activations i, f, g, o and c of every step; GRU r, z, n and
``W_hn h + b_hn``; all cells keep the outputs (h_prev of every step).

Backward, over blocks of steps from the last (Appleyard et al. 2016; the
training issue's kernel shape): per step only what depends on the step
after, a fused elementwise pass per batch row giving dG (the gradient of
the gate pre-activations) and one product ``dh_prev = dG_t @ W_hh`` (the
register-tiled micro-kernel of :mod:`lstm_numba._gemm` on ``W_hh`` packed
un-transposed). Everything else waits for the end of the block and is done
as a few big products over all its rows: ``dW_ih += dG^T X``,
``dW_hh += dG^T H_prev`` (dG transposed, X and H_prev packed into panels
per block, then gemm_rows' register tile accumulating into dW:
:func:`lstm_numba._train_kernels.gemm_acc`), the bias sums and
``dX = dG @ W_ih``. A block is ``BLOCK_ROWS`` rows of dG (kept in L2/L3
between its recurrence and its products), or one checkpoint segment.

``checkpoint=k``: the forward keeps (h, c) at the start of every k-step
segment only (and not the outputs); the backward reruns the forward of each
segment from its start (the same kernel, into segment-sized buffers) before
its backward: 2 T/k states kept, O(k) rows of work buffers.

``numba-parallel``: the recurrences (forward, backward, recomputation) split
the batch rows over the threads (rows never meet) when B >= 8; the batched
products split the rows of dW and of dX. Below 8 rows the recurrences run
on one thread (no hidden-unit split as in inference).

Tape bytes (``tape.nbytes``): everything the forward allocated and the tape
keeps, outputs included (they are h_prev of the backward); not the caller's
x, h0, c0 or weights, which the tape references.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numba
import numpy as np

from . import _train_kernels as K
from ._checks import read_only as _ro   # the tape's arrays, and what the backward reads
from ._gemm import aligned_empty, compile_gemm, gemm_rows2, panel_width
from .cpu import CHUNK_ROWS, pack

#: Rows of dG per block of the backward in full (not checkpointed) mode:
#: enough rows for the batched products to run at full speed, few enough
#: that the block's dG stays in cache between its steps and its products.
BLOCK_ROWS = 256


def unavailable(name: str) -> str | None:
    return None


def _split(n: int, parts: int, unit: int) -> np.ndarray:
    """Bounds cutting range(n) into ``parts`` pieces, multiples of ``unit`` inside."""
    parts = max(1, parts)
    cuts = [min(n, int(round(q * n / parts / unit)) * unit) for q in range(parts)]
    return np.array(cuts + [n], dtype=np.int64)


def _threads(name: str) -> int:
    return 1 if name == "numba" else numba.get_num_threads()


def _row_bounds(batch: int, threads: int) -> np.ndarray:
    """Batch-row chunks of the recurrences: one per thread, >= 4 rows each (as cpu)."""
    chunks = min(threads, batch // 4) if threads >= 2 and batch // 4 >= 2 else 1
    return _split(batch, chunks, 4)


def _pad(n: int, dtype) -> int:
    nc = panel_width(dtype)
    return -(-n // nc) * nc


@dataclass(frozen=True, eq=False)
class NumbaTape:
    """What the Numba training forward keeps for the backward (read-only arrays).

    ``x``, ``weights``, ``h0``, ``c0`` are the caller's (referenced, not
    counted in :attr:`nbytes`). Full mode: ``outputs`` (T*B, H), ``G`` (T*B,
    Gpad) gate activations (LSTM i f g o; GRU r z n), ``HN`` (T*B, H) the
    GRU's W_hn h + b_hn, ``CS`` ((T+1)*B, H) the LSTM's c (c0 first).
    Checkpointed (``checkpoint`` = k): ``hk``, ``ck`` ((nseg-1)*B, H), the
    state at the start of segments 1, 2, ...; nothing else.
    """

    cell: int
    name: str
    checkpoint: int | None
    x: np.ndarray
    weights: tuple
    h0: np.ndarray
    c0: np.ndarray | None
    outputs: np.ndarray | None
    G: np.ndarray | None
    HN: np.ndarray | None
    CS: np.ndarray | None
    hk: np.ndarray | None
    ck: np.ndarray | None

    @property
    def nbytes(self) -> int:
        """Bytes the forward allocated and the tape keeps (outputs included)."""
        own = (self.outputs, self.G, self.HN, self.CS, self.hk, self.ck)
        return int(sum(a.nbytes for a in own if a is not None))


def _compile(x2, h0, out2, pk, G):
    """The micro-kernels the forward calls, compiled with SLP on (see compile_gemm)."""
    for a, wp in ((x2, pk.wih), (h0, pk.whh), (out2, pk.whh)):
        compile_gemm(a, 0, 1, wp, pk.bx, G, 0, 0, 1, False)
    for a in (h0, out2):
        compile_gemm(x2, 0, pk.wih, a, 0, pk.whh, 1, pk.bx, G, 0, 0, 1, False,
                     kernel=gemm_rows2)


def _chunk(t_len: int, rows: int) -> int:
    """Steps per input-projection chunk (cpu's rule, so the outputs match)."""
    return min(t_len, max(1, -(-CHUNK_ROWS // rows)))


def _pc(t_len: int, batch: int, threads: int) -> int:
    """Steps per projection chunk of :func:`_forward` with ``threads``."""
    return _chunk(t_len, int(np.diff(_row_bounds(batch, threads)).max()))


def _forward(cell, pk, x, h0, c0, out, G, HN, CS, CK, kck, threads):
    """Run :func:`~lstm_numba._train_kernels.fwd_range` over all rows (split or not)."""
    t_len, batch, n_in = x.shape
    hid = h0.shape[1]
    x2 = x.reshape(t_len * batch, n_in)
    out2 = out.reshape(t_len * batch, hid)
    bounds = _row_bounds(batch, threads)
    nb_max = int(np.diff(bounds).max())
    pc = _pc(t_len, batch, threads)
    n_pad = pk.zb.shape[0]
    _compile(x2, h0, out2, pk, G)
    args = (cell, x2, batch, pk.wih, pk.bx, pk.whh, pk.zb, pk.b_hn, h0, c0, out2, G, HN, CS,
            CK, kck, pc)
    if bounds.shape[0] > 2:
        hps = aligned_empty((bounds.shape[0] - 1, nb_max, n_pad), x.dtype)
        K.fwd_split(*args, bounds, hps)
    else:
        K.fwd_range(*args, 0, batch, np.empty((batch, n_pad), dtype=x.dtype))


def _buffers(cell, rows_g, rows_c, hid, n_pad, dt):
    """G, HN, CS for ``rows_g`` gate rows and ``rows_c`` c rows (dummies where unused)."""
    dummy = np.zeros((1, 1), dtype=dt)
    G = np.empty((rows_g, n_pad), dtype=dt)
    HN = np.empty((rows_g, hid), dtype=dt) if cell == 2 else dummy
    CS = np.empty((rows_c, hid), dtype=dt) if cell == 1 else dummy
    return G, HN, CS


def forward_train(p, checkpoint, name):
    """Training forward: ``(outputs (T,B,H), h (B,H), c (B,H) or None, NumbaTape)``.

    Parameters
    ----------
    p : lstm_numba.validation.Prepared
    checkpoint : None or int >= 1
        None keeps every step; k keeps the state every k steps.
    name : {"numba", "numba-parallel"}
        One thread, or ``numba.get_num_threads()``.
    """
    cell = p.spec.code
    x, h0, c0 = p.x, p.h0, p.c0
    t_len, batch, _ = x.shape
    hid = h0.shape[1]
    dt = x.dtype
    threads = _threads(name)
    pk = pack(p.spec.name, p.weights)
    n_pad = pk.zb.shape[0]
    out = np.empty((t_len, batch, hid), dtype=dt)
    c_in = c0 if cell == 1 else np.zeros((1, 1), dtype=dt)
    if checkpoint is None:
        # The RNN keeps no gates: its G is the projection chunk's scratch.
        rows_g = t_len * batch if cell else _pc(t_len, batch, threads) * batch
        G, HN, CS = _buffers(cell, rows_g, (t_len + 1) * batch, hid, n_pad, dt)
        _forward(cell, pk, x, h0, c_in, out, G, HN, CS, CS, 0, threads)
        c = CS[t_len * batch:].copy() if cell == 1 else None
        keep = dict(outputs=out.reshape(t_len * batch, hid),
                    G=G if cell else None, HN=HN if cell == 2 else None,
                    CS=CS if cell == 1 else None, hk=None, ck=None)
    else:
        k = int(checkpoint)
        nseg = -(-t_len // k)
        pc = _pc(t_len, batch, threads)
        G, HN, CS = _buffers(cell, pc * batch, 2 * batch, hid, n_pad, dt)
        CK = np.empty(((nseg - 1) * batch, hid), dtype=dt) if cell == 1 else CS
        _forward(cell, pk, x, h0, c_in, out, G, HN, CS, CK, k if cell == 1 else 0, threads)
        c = CS[(t_len % 2) * batch:(t_len % 2 + 1) * batch].copy() if cell == 1 else None
        hk = out[k - 1:(nseg - 1) * k:k].reshape((nseg - 1) * batch, hid).copy()
        keep = dict(outputs=None, G=None, HN=None, CS=None, hk=hk,
                    ck=CK if cell == 1 else None)
    keep = {n: _ro(a) for n, a in keep.items()}
    tape = NumbaTape(cell, name, checkpoint, x, p.weights, h0, c0, **keep)
    return out, out[-1].copy(), c, tape


# ------------------------------------------------------------------ backward

def _pack_plain(w, k_pad):
    """``w (K, N)`` un-transposed, in panels of K = ``k_pad`` rows (zero past K)."""
    nc = panel_width(w.dtype)
    wp = aligned_empty((-(-w.shape[1] // nc), k_pad, nc), w.dtype)
    K.pack_plain(w, wp)
    return wp


def _recompute(tape, pk, s0, s1, bufs, threads):
    """Rerun the forward of steps [s0, s1) from the segment's kept state."""
    cell, k = tape.cell, tape.checkpoint
    x = tape.x
    batch, hid = tape.h0.shape
    j = s0 // k
    h_start = tape.h0 if j == 0 else tape.hk[(j - 1) * batch:j * batch]
    c_start = (tape.c0 if j == 0 else tape.ck[(j - 1) * batch:j * batch]) if cell == 1 \
        else None
    h_start = np.array(h_start)                     # writable: the forward's types
    c_start = np.array(c_start) if cell == 1 else np.zeros((1, 1), dtype=x.dtype)
    n = s1 - s0
    Gb, HNb, CSb, Hb = bufs
    G = Gb[:n * batch]
    HN = HNb[:n * batch] if cell == 2 else HNb
    CS = CSb[:(n + 1) * batch] if cell == 1 else CSb
    out = Hb[:n * batch].reshape(n, batch, hid)
    _forward(cell, pk, x[s0:s1], h_start, c_start, out, G, HN, CS, CS, 0, threads)
    return G, HN, CS, Hb[:n * batch], h_start


def backward_train(tape, grad_outputs, grad_h, grad_c, profile=None):
    """BPTT over ``tape``: ``(dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih, db_hh)``.

    Gradients of ``L = sum(grad_outputs*outputs) + sum(grad_h*h_T) +
    sum(grad_c*c_T)``; the arrays are validated, C-contiguous, of the data's
    dtype (grad_c None but for the LSTM). The tape is only read.
    ``profile``: a dict to which the seconds of each phase are added
    ("setup", "recompute", "recurrence", "batched"; benchmarks/train_breakdown.py).
    """
    clock = time.perf_counter if profile is not None else None
    if clock:
        t_mark = clock()
    cell = tape.cell
    x = tape.x
    w_ih, w_hh = tape.weights[0], tape.weights[1]
    t_len, batch, n_in = x.shape
    hid = tape.h0.shape[1]
    dt = x.dtype
    threads = _threads(tape.name)
    gh_rows = w_hh.shape[0]
    n_pad = _pad(gh_rows, dt)
    h_pad, i_pad = _pad(hid, dt), _pad(n_in, dt)
    whhq, wihq = _pack_plain(w_hh, n_pad), _pack_plain(w_ih, n_pad)
    zbh, zbi = np.zeros(h_pad, dtype=dt), np.zeros(i_pad, dtype=dt)
    dummy = _ro(np.zeros((1, 1), dtype=dt))

    hp = np.zeros((batch, h_pad), dtype=dt)
    hp[:, :hid] = grad_h
    dc = grad_c.copy() if cell == 1 else np.zeros((1, 1), dtype=dt)
    carry = np.zeros((batch, hid), dtype=dt) if cell == 2 else np.zeros((1, 1), dtype=dt)
    dwih = np.zeros((n_pad, i_pad), dtype=dt)
    dwhh = np.zeros((n_pad, h_pad), dtype=dt)
    dbx = np.zeros(n_pad, dtype=dt)
    dbh = np.zeros(n_pad, dtype=dt) if cell == 2 else dbx
    dxp = np.empty((t_len * batch, i_pad), dtype=dt)
    x2 = _ro(x.reshape(t_len * batch, n_in))
    go2 = grad_outputs.reshape(t_len * batch, hid)
    h0 = _ro(tape.h0)

    ckpt = tape.checkpoint is not None
    steps = tape.checkpoint if ckpt else max(1, -(-BLOCK_ROWS // batch))
    steps = min(steps, t_len)
    rows_max = steps * batch
    dGx = np.zeros((rows_max, n_pad), dtype=dt)
    dGh = np.zeros((rows_max, n_pad), dtype=dt) if cell == 2 else dGx
    nc = panel_width(dt)
    xp = aligned_empty((i_pad // nc, rows_max, nc), dt)
    hpk = aligned_empty((h_pad // nc, rows_max, nc), dt)
    dGxT = np.empty((n_pad, rows_max), dtype=dt)
    dGhT = np.empty((n_pad, rows_max), dtype=dt) if cell == 2 else dGxT
    if ckpt:
        pk = pack(("rnn", "lstm", "gru")[cell], tape.weights)
        bufs = (np.empty((rows_max, n_pad), dtype=dt),
                np.empty((rows_max, hid), dtype=dt) if cell == 2 else np.zeros((1, 1), dt),
                np.empty((rows_max + batch, hid), dtype=dt) if cell == 1
                else np.zeros((1, 1), dt),
                np.empty((rows_max, hid), dtype=dt))
    else:
        G = tape.G if cell else dummy
        HN = tape.HN if cell == 2 else dummy
        CS = tape.CS if cell == 1 else dummy
        Hs = tape.outputs

    bounds = _row_bounds(batch, threads)
    gbounds = _split(n_pad // 16, threads, 1)
    _compile_bwd(dGx, dGxT, xp, dwih, wihq, zbi, dxp, whhq, hp)
    nblocks = -(-t_len // steps)
    if clock:
        t_mark = _lap(profile, "setup", t_mark)
    for blk in range(nblocks - 1, -1, -1):
        s0 = blk * steps
        s1 = min(t_len, s0 + steps)
        rows = (s1 - s0) * batch
        if ckpt:
            G, HN, CS, Hs, h_start = _recompute(tape, pk, s0, s1, bufs, threads)
            G, HN, CS, Hs = _ro(G), _ro(HN), _ro(CS), _ro(Hs)
            hfirst = _ro(h_start)
            tbase = hbase = s0
            if clock:
                t_mark = _lap(profile, "recompute", t_mark)
        else:
            hfirst = h0 if s0 == 0 else Hs[(s0 - 1) * batch:s0 * batch]
            tbase = hbase = 0
        args = (cell, s0, s1, tbase, hbase, t_len, batch, G, HN, CS, hfirst, Hs, go2, whhq,
                zbh, dGx, dGh, hp, dc, carry)
        if bounds.shape[0] > 2:
            K.bwd_split(*args, bounds)
        else:
            K.bwd_range(*args, 0, batch)
        if clock:
            t_mark = _lap(profile, "recurrence", t_mark)
        K.batched(dGx, dGh, rows, x2, s0 * batch, hfirst, batch, Hs, (s0 - hbase) * batch,
                  wihq, zbi, dxp, s0 * batch, dwih, dwhh, dbx, dbh, cell != 2, xp, hpk,
                  dGxT, dGhT, gbounds, _split(rows, threads, 4))
        if clock:
            t_mark = _lap(profile, "batched", t_mark)

    dx = dxp.reshape(t_len, batch, i_pad)
    dx = dx if i_pad == n_in else np.ascontiguousarray(dx[:, :, :n_in])
    dh0 = hp[:, :hid] + carry if cell == 2 else np.ascontiguousarray(hp[:, :hid])
    dc0 = dc if cell == 1 else None
    return (dx, dh0, dc0, np.ascontiguousarray(dwih[:gh_rows, :n_in]),
            np.ascontiguousarray(dwhh[:gh_rows, :hid]), dbx[:gh_rows].copy(),
            dbh[:gh_rows].copy())


def _lap(profile: dict, phase: str, since: float) -> float:
    now = time.perf_counter()
    profile[phase] = profile.get(phase, 0.0) + now - since
    return now


def _compile_bwd(dG, dGT, xp, dwih, wihq, zbi, dxp, whhq, hp):
    """Compile the backward's micro-kernels with SLP on before the kernels that call them."""
    compile_gemm(dGT, 0, 1, 1, xp, dwih, kernel=K.gemm_acc)
    compile_gemm(dG, 0, 1, wihq, zbi, dxp, 0, 0, 1, False)
    compile_gemm(dG, 0, 1, whhq, zbi, hp, 0, 0, 1, False)
