"""The cost model: a lower bound on the time of a forward pass, from measured limits.

Per step the bound is ``max(FLOPs / peak, bytes moved / bandwidth, sync
latency)``; how the steps add up is what separates the cells:

* LSTM/GRU/RNN: step t needs h_{t-1}, so the T steps form a **sequential
  chain**: bound = T x (per-step bound). At B = 1 the step is a
  matrix-vector product: the whole of ``w_hh`` (4H x H floats, 1 MiB at
  H = 256) is streamed from the cache it lives in, every step, for 2 FLOPs
  per weight, so the **bandwidth of w_hh** binds; a second thread halves the
  bytes each core reads but adds a barrier per step.
* minGRU/minLSTM: the recurrence is linear, ``h_t = a_t h_{t-1} + b_t``, so
  a chunked scan on P threads does T/P steps each, a carry pass over the P
  chunk ends and a barrier: bound = max(FLOPs / peak_P, bytes / bandwidth_P,
  chain) + barriers. The bytes are **x streamed in and the outputs out**;
  the input projection costs 2·G·H FLOPs per input float (1024 for minGRU
  at H = 256), so at H = 256 its compute binds, and the stream only at
  small H (or for the scan proper, once the projections are made).
* attention (causal, one head): the T(T+1)/2 scores and the weighted sum of
  V are ``2 H T (T+1)`` FLOPs: **compute** binds once T is large; K and V
  are read once per block of :data:`ATTENTION_QUERY_BLOCK` queries.

The limits are measured on this machine by micro-benchmarks in Numba
(:mod:`lstm_numba._costmodel_kernels`), never assumed: the FMA peak
(:func:`fma_peak_gflops`), read/write/copy bandwidth at working sets sized
for L2, L3 and DRAM (:func:`stream_gbs`, sizes from :func:`cache_sizes`),
and the cost of two threads meeting (:func:`sync_ns`: a ping-pong and a
barrier on atomic flags, the mechanism ``numba-parallel`` uses between
steps). :func:`machine` runs them all once per process (a few seconds) and
caches the result; nothing runs at import. ``python -m lstm_numba
costmodel`` prints the measured machine and the bound table.

Bytes are the traffic no implementation of the algorithm can avoid (weights
and inputs read, outputs written); a backend that also writes and re-reads
intermediates (the input projections, the gates) is slower than its bound
by that much. A measured time below the bound (more than 100 % of it) means
the model missed a shortcut, and is reported as such.
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import asdict, dataclass, field

# The micro-benchmarks (defined beside their kernels), re-exported here.
from ._costmodel_kernels import (_threads_ok, fma_latency_ns, fma_peak_gflops,  # noqa: F401
                                 stream_gbs, sync_ns)

#: Cells whose steps form a chain through h (the recurrent weights).
RECURRENT = ("rnn", "lstm", "gru")
#: Cells with a linear recurrence computed by a scan.
SCAN = ("mingru", "minlstm")
#: Memory levels the bandwidth is measured at, fastest first.
LEVELS = ("L2", "L3", "DRAM")
#: Queries sharing one read of a K/V row in a tiled attention kernel.
ATTENTION_QUERY_BLOCK = 64
#: Backends that run on one thread whatever the pools are set to.
SINGLE_THREAD_BACKENDS = ("numpy", "numpy-seed", "numba")
#: Backends the CPU model covers.
CPU_BACKENDS = ("numpy", "numpy-seed", "numba", "numba-parallel", "torch")

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


# ------------------------------------------------------------- cache sizes

def _parse_size(text: str) -> int | None:
    m = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(i?B)?\s*", text)
    return int(m.group(1)) * _UNITS[m.group(2)] if m else None


def cache_sizes(base: str = "/sys/devices/system/cpu/cpu0/cache") -> dict[str, int]:
    """Data cache sizes of this CPU, bytes: ``{"L1": ..., "L2": ..., "L3": ...}``.

    Read from sysfs (Linux); a level that cannot be read falls back to
    48 KiB / 2 MiB / 32 MiB. L1 and L2 are per core, L3 is shared (on a
    virtual machine the L3 reported is the host socket's, shared with other
    tenants: the bandwidth measured at :func:`working_sets` says what this
    process actually gets).
    """
    sizes = {"L1": 48 << 10, "L2": 2 << 20, "L3": 32 << 20}
    try:
        entries = sorted(e for e in os.listdir(base) if e.startswith("index"))
    except OSError:
        return sizes
    for e in entries:
        try:
            with open(f"{base}/{e}/level") as f:
                level = f.read().strip()
            with open(f"{base}/{e}/type") as f:
                kind = f.read().strip()
            with open(f"{base}/{e}/size") as f:
                size = _parse_size(f.read())
        except OSError:
            continue
        if kind in ("Data", "Unified") and size and f"L{level}" in sizes:
            sizes[f"L{level}"] = size
    return sizes


def working_sets(caches: dict[str, int] | None = None) -> dict[str, int]:
    """Bytes each bandwidth level is measured at (all threads together).

    L2: half the per-core L2 per thread (fits with room for the code's other
    lines); L3: 4x the L2 (past every L2, well inside a shared L3); DRAM:
    twice the L3, at least 64 MiB and at most 256 MiB (a virtual machine
    reports its host's whole L3, 300 MiB here, of which it holds a share:
    past a few tens of MiB the bandwidth measured is already DRAM's, and a
    larger buffer only makes the measurement slow).
    """
    c = caches or cache_sizes()
    return {"L2": c["L2"] // 2, "L3": 4 * c["L2"],
            "DRAM": int(min(max(2 * c["L3"], 64 << 20), 256 << 20))}


# ----------------------------------------------------------------- machine

@dataclass(frozen=True)
class Machine:
    """The measured limits of this machine (one :func:`measure_machine` run).

    Attributes
    ----------
    cpu : str
        :func:`lstm_numba.describe_cpu`.
    caches, working_set : dict level -> bytes
    fma_gflops, sgemm_gflops : dict threads -> GFLOP/s (all threads together)
    fma_latency_ns : float
    read_gbs, write_gbs, copy_gbs : dict "level/threads" -> GB/s
    pingpong_ns, barrier_ns, forkjoin_ns : dict threads -> ns
    """

    cpu: str
    caches: dict
    working_set: dict
    fma_gflops: dict
    sgemm_gflops: dict
    fma_latency_ns: float
    read_gbs: dict
    write_gbs: dict
    copy_gbs: dict
    pingpong_ns: dict
    barrier_ns: dict
    forkjoin_ns: dict
    threads: tuple = field(default=(1,))

    def peak(self, threads: int) -> float:
        """FMA peak of ``threads`` threads, FLOP/s.

        FMA units are private to a core, so p threads can do p times one
        thread's rate: the bound takes the larger of that and the p-thread
        measurement (which checks it; on a busy shared machine it falls
        short, and :meth:`suspect` says so). A lower bound must be optimistic.
        """
        t = self._t(threads)
        return max(self.fma_gflops[t], t * self.fma_gflops[self.threads[0]]) * 1e9

    def bandwidth(self, kind: str, level: str, threads: int) -> float:
        """``kind`` ("read", "write", "copy") bandwidth at ``level``, bytes/s.

        L2 is private to a core: p threads get p times one thread's L2 rate
        (or the p-thread measurement if higher), as :meth:`peak`. L3 and DRAM
        are shared: the best measured at ``threads`` or fewer (p threads can
        always do what fewer do, so a spoiled p-thread figure never raises
        the bound).
        """
        table = {"read": self.read_gbs, "write": self.write_gbs, "copy": self.copy_gbs}[kind]
        t = self._t(threads)
        best = max(table[f"{level}/{p}"] for p in self.threads if p <= t)
        if level == "L2":
            best = max(best, t * table[f"L2/{self.threads[0]}"])
        return best * 1e9

    def suspect(self) -> list[str]:
        """Figures of more threads below those of fewer (the machine was busy),
        and sync figures that could not be measured."""
        out = [f"{name} on {p} threads not measured (a thread gave up waiting for its partner)"
               for name, table in (("ping-pong", self.pingpong_ns), ("barrier", self.barrier_ns))
               for p, v in table.items() if not math.isfinite(v)]
        for p in self.threads[1:]:
            if self.fma_gflops[p] < self.fma_gflops[1]:
                out.append(f"FMA peak on {p} threads ({self.fma_gflops[p]:.1f} GFLOP/s) below "
                           f"1 thread's: the model uses {p} x 1 thread's")
            for kind, table in (("read", self.read_gbs), ("write", self.write_gbs),
                                ("copy", self.copy_gbs)):
                for lv in LEVELS:
                    if table[f"{lv}/{p}"] < table[f"{lv}/1"]:
                        use = f"{p} x 1 thread's" if lv == "L2" else "1 thread's"
                        out.append(f"{kind} {lv} on {p} threads ({table[f'{lv}/{p}']:.1f} GB/s)"
                                   f" below 1 thread's: the model uses {use}")
        return out

    def sync(self, threads: int) -> float:
        """Seconds for ``threads`` threads to meet once (0 for one thread, and
        where the barrier could not be measured: a lower bound stays optimistic)."""
        t = self._t(threads)
        ns = self.barrier_ns.get(t, 0.0)
        return 0.0 if t == 1 or not math.isfinite(ns) else ns * 1e-9

    def level(self, nbytes: float, threads: int = 1) -> str:
        """Fastest level that holds ``nbytes`` split over ``threads`` threads.

        L2 when each thread's share fits its core's L2, L3 when the whole
        fits the L3, else DRAM. (The L3 a virtual machine reports is the
        host's; the bound then uses the L3 bandwidth measured at
        ``working_set["L3"]``: optimistic, as a lower bound must be.)
        """
        if nbytes / threads <= self.caches["L2"]:
            return "L2"
        return "L3" if nbytes <= self.caches["L3"] else "DRAM"

    def _t(self, threads: int) -> int:
        if threads in self.threads:
            return threads
        raise ValueError(f"threads={threads} was not measured; measured: {self.threads}")

    def to_dict(self) -> dict:
        return asdict(self)


def measure_machine(threads=None, sizes: dict | None = None, budget_s: float = 0.15,
                    sgemm_n: int = 1024) -> Machine:
    """Run every micro-benchmark (a few seconds; :func:`machine` caches it).

    Parameters
    ----------
    threads : iterable of int, optional
        Thread counts to measure; default 1 and all cores (at most 2).
    sizes : dict level -> bytes, optional
        Working sets (default :func:`working_sets`); tests pass tiny ones.
    budget_s : float
        Seconds of timed calls per figure.
    sgemm_n : int
        Size of the sgemm yardstick (:func:`lstm_numba.measure.sgemm_gflops`).
    """
    from .machine import describe_cpu
    from .measure import sgemm_gflops
    from .threads import max_threads, num_threads

    if threads is None:
        threads = sorted({1, min(2, max_threads())})
    threads = tuple(sorted({_threads_ok(t) for t in threads}))
    caches = cache_sizes()
    ws = dict(sizes) if sizes else working_sets(caches)
    fma, sg, rd, wr, cp, pp, bar, fj = {}, {}, {}, {}, {}, {}, {}, {}
    for t in threads:
        # more threads: shorter calls and a longer budget, to find moments when
        # every core is free (on a shared machine they rarely are for long)
        budget_t = budget_s * t
        fma[t] = fma_peak_gflops(t, call_s=1e-3 / t ** 2, budget_s=budget_t)
        with num_threads(t):
            sg[t] = sgemm_gflops(sgemm_n)
        for level in LEVELS:
            # L2 is private: each thread gets its own L2-sized share.
            nbytes = ws[level] * (t if level == "L2" else 1)
            gbs = stream_gbs(nbytes, t, budget_s=budget_t)
            for kind, table in (("read", rd), ("write", wr), ("copy", cp)):
                table[f"{level}/{t}"] = gbs[kind]
        if t <= 2:
            pp[t] = _or_nan(sync_ns, t, "pingpong", budget_s=budget_s / 3)
            bar[t] = _or_nan(sync_ns, t, "barrier", budget_s=budget_s / 3) if t == 2 else 0.0
        fj[t] = sync_ns(t, "forkjoin", budget_s=budget_s / 3)
    return Machine(describe_cpu(), caches, ws, fma, sg, fma_latency_ns(budget_s=budget_s / 3),
                   rd, wr, cp, pp, bar, fj, threads)


def _or_nan(fn, *args, **kwargs) -> float:
    """``fn(...)``, or NaN when a waiting thread gave up (a starved partner):
    one unmeasurable figure must not lose the others."""
    try:
        return fn(*args, **kwargs)
    except RuntimeError:
        return float("nan")


_MACHINE: dict = {}


def machine(**kwargs) -> Machine:
    """:func:`measure_machine` once per process and arguments, then cached."""
    key = repr(sorted(kwargs.items()))
    if key not in _MACHINE:
        _MACHINE[key] = measure_machine(**kwargs)
    return _MACHINE[key]


# ------------------------------------------------------------------- bounds

@dataclass(frozen=True)
class Bound:
    """The cost model's lower bound for one forward pass.

    Attributes
    ----------
    cell, backend : str
    seq_len, batch, hidden, input_size, threads : int
        T, B, H, I and the threads the backend uses (1 for single-thread
        backends whatever the pools are set to).
    flops, bytes_read, bytes_written : float
        Per forward pass.
    level : str
        Where the dominant stream lives ("L2", "L3", "DRAM").
    compute_s, memory_s, sync_s, chain_s : float
        The terms, seconds per forward pass: FLOPs / peak, bytes /
        bandwidth, barriers, and the sequential chain (recurrent cells: T x
        the per-step bound; scans: the dependent FMAs of the longest chunk
        plus the carry pass; attention: none).
    seconds : float
        The bound.
    binds : str
        The term that sets it ("memory", "compute", "sync", "chain"; for a
        recurrent cell "chain (memory)": T steps each bound by memory).
    note : str
        What the bytes are, in words.
    """

    cell: str
    backend: str
    seq_len: int
    batch: int
    hidden: int
    input_size: int
    threads: int
    flops: float
    bytes_read: float
    bytes_written: float
    level: str
    compute_s: float
    memory_s: float
    sync_s: float
    chain_s: float
    seconds: float
    binds: str
    note: str

    @property
    def per_step_s(self) -> float:
        """The bound divided by T."""
        return self.seconds / self.seq_len

    def percent_of(self, measured_s: float) -> float:
        """100 x bound / measured time: how close a backend comes to its bound."""
        if not measured_s > 0:
            raise ValueError(f"measured_s must be a positive time; got {measured_s!r}")
        return 100.0 * self.seconds / measured_s


def backend_threads(backend: str, threads: int) -> int:
    """Threads ``backend`` actually uses when the pools are set to ``threads``."""
    return 1 if backend in SINGLE_THREAD_BACKENDS else int(threads)


def _largest(terms: dict) -> str:
    return max(terms, key=lambda k: terms[k])


def _mib(n: float) -> str:
    return f"{n / (1 << 20):.3g} MiB" if n >= 1 << 20 else f"{n / 1024:.3g} KiB"


def bound(cell: str, backend: str, seq_len: int, batch: int, hidden: int, threads: int = 1,
          input_size: int | None = None, itemsize: int = 4, m: Machine | None = None) -> Bound:
    """Lower bound of one forward pass of ``cell`` on ``backend``.

    Parameters
    ----------
    cell : str
        One of ``ln.CELLS + ln.PARALLEL_CELLS``.
    backend : str
        A CPU backend (:data:`CPU_BACKENDS`); decides the thread count
        (:func:`backend_threads`).
    seq_len, batch, hidden : int
        T, B, H.
    threads : int
        Threads the pools are set to (a measured count of ``m``).
    input_size : int, optional
        I, default H.
    itemsize : int
        Bytes per float (4: float32).
    m : Machine, optional
        The limits; default :func:`machine` (measured once per process).

    Returns
    -------
    Bound
    """
    from .cells import flops, flops_per_step, spec
    from .validation import check_size

    s = spec(cell)
    if backend not in CPU_BACKENDS:
        raise ValueError(f"backend must be a CPU backend, one of {CPU_BACKENDS}; got {backend!r}")
    t_len, b, h = (check_size(n, v) for n, v in
                   (("seq_len", seq_len), ("batch", batch), ("hidden", hidden)))
    i = h if input_size is None else check_size("input_size", input_size)
    m = machine() if m is None else m
    p = backend_threads(backend, check_size("threads", threads))
    peak = m.peak(p)
    g, sz = s.n_gates, itemsize

    def mem(read, write, level):
        return max(read / m.bandwidth("read", level, p), write / m.bandwidth("write", level, p))

    if cell in RECURRENT:
        # Per step: all of w_hh, x_t and the state in; the state and output out.
        state = b * h * sz * (2 if s.has_cell_state else 1)
        w_hh = g * h * h * sz
        read, write = w_hh + b * i * sz + state, state
        level = m.level(w_hh, p)
        f_step = flops_per_step(cell, b, i, h)
        step = {"compute": f_step / peak, "memory": mem(read, write, level), "sync": m.sync(p)}
        chain = t_len * max(step.values())
        return Bound(cell, backend, t_len, b, h, i, p, float(f_step * t_len), float(read * t_len),
                     float(write * t_len), level, t_len * step["compute"],
                     t_len * step["memory"], t_len * step["sync"], chain, chain,
                     f"chain ({_largest(step)})",
                     f"w_hh {_mib(w_hh)} read every step from {level}")
    f = float(flops(cell, t_len, b, i, h))
    x_bytes, out_bytes = t_len * b * i * sz, t_len * b * h * sz
    if cell in SCAN:
        # x streamed in, outputs out; the chunk scans and the carry pass are
        # dependent FMAs, one per step per lane; two barriers between phases.
        read, write = x_bytes + g * h * i * sz + b * h * sz, out_bytes
        level = m.level(read + write, p)
        chain = (math.ceil(t_len / p) + (p - 1)) * m.fma_latency_ns * 1e-9
        sync = 2 * m.sync(p)
        note = f"x in, outputs out ({_mib(read + write)}, {level})"
    else:
        # Attention: q, k, v made once (k, v written); each block of
        # ATTENTION_QUERY_BLOCK queries reads the keys and values up to its end.
        q = ATTENTION_QUERY_BLOCK
        nb = math.ceil(t_len / q)
        keys_read = q * nb * (nb - 1) / 2 + t_len
        kv = 2 * t_len * b * h * sz
        read = x_bytes + 3 * h * i * sz + 2 * b * h * sz * keys_read
        write = out_bytes + kv
        level = m.level(kv, p)
        chain, sync = 0.0, m.sync(p)
        note = f"K/V {_mib(kv)} re-read per {q} queries from {level}"
    terms = {"compute": f / peak, "memory": mem(read, write, level), "chain": chain}
    seconds = max(terms.values()) + sync
    binds = "sync" if sync > max(terms.values()) else _largest(terms)
    return Bound(cell, backend, t_len, b, h, i, p, f, float(read), float(write), level,
                 terms["compute"], terms["memory"], sync, chain, seconds, binds, note)


# ------------------------------------------------------------- the tables

#: (cell, backend) pairs of the bound table and the limits benchmark.
CASES = (("lstm", "numba"), ("lstm", "numba-parallel"), ("lstm", "torch"),
         ("mingru", "numba"), ("mingru", "numba-parallel"), ("mingru", "torch"),
         ("minlstm", "numba"), ("minlstm", "numba-parallel"), ("minlstm", "torch"),
         ("attention", "numba"), ("attention", "numba-parallel"), ("attention", "torch"))


def bound_table(seq_lens=(1024, 4096), batches=(1, 16), hidden: int = 256, threads=None,
                cases=CASES, m: Machine | None = None) -> list[Bound]:
    """:func:`bound` over cases x B x T x threads (single-thread backends once)."""
    m = machine() if m is None else m
    threads = m.threads if threads is None else tuple(threads)
    rows = []
    for cell, backend in cases:
        for b in batches:
            for t_len in seq_lens:
                for p in threads:
                    if backend in SINGLE_THREAD_BACKENDS and p != threads[0]:
                        continue
                    rows.append(bound(cell, backend, t_len, b, hidden, p, m=m))
    return rows


def format_machine(m: Machine) -> str:
    """The measured limits as a few lines of text."""
    lines = [f"cost model limits, {m.cpu}",
             "caches: " + ", ".join(f"{k} {_mib(v)}" for k, v in m.caches.items()),
             "bandwidth measured at: " + ", ".join(f"{k} {_mib(v)}"
                                                   for k, v in m.working_set.items())
             + " (L2 per thread)"]
    for p in m.threads:
        each = f" ({m.fma_gflops[p] / p:.1f} per thread)" if p > 1 else ""
        lines.append(f"{p} thread{'s' if p > 1 else ''}: FMA peak {m.fma_gflops[p]:.1f} GFLOP/s{each}, "
                     f"sgemm {m.sgemm_gflops[p]:.1f} GFLOP/s "
                     f"({m.sgemm_gflops[p] / m.fma_gflops[p]:.0%} of peak)")
        for kind, table in (("read", m.read_gbs), ("write", m.write_gbs), ("copy", m.copy_gbs)):
            lines.append(f"    {kind:5} GB/s, all threads " + "  ".join(
                f"{lv} {table[f'{lv}/{p}']:7.1f}" for lv in LEVELS))
        sync = f"    fork+join of a prange region {m.forkjoin_ns[p] / 1e3:.1f} us"
        if p == 1:
            sync += f"; two atomic moves on one core {m.pingpong_ns[p]:.0f} ns"
        elif p in m.pingpong_ns:
            sync += (f"; ping-pong round trip {m.pingpong_ns[p]:.0f} ns, "
                     f"barrier {m.barrier_ns[p]:.0f} ns")
        lines.append(sync)
    lines += [f"suspect: {w}" for w in m.suspect()]
    lines.append(f"FMA latency {m.fma_latency_ns:.2f} ns")
    return "\n".join(lines)


def format_bounds(rows: list[Bound], measured: dict | None = None) -> str:
    """A text table of bounds; ``measured`` maps (cell, backend, T, B, threads) -> s."""
    head = (f"{'cell':9} {'backend':14} {'B':>3} {'T':>6} {'thr':>3} {'GFLOP':>8} "
            f"{'MB moved':>9} {'compute ms':>10} {'memory ms':>10} {'sync ms':>8} "
            f"{'chain ms':>9} {'bound ms':>9} {'us/step':>8}  binds")
    if measured is not None:
        head += f"{'':16} {'measured ms':>11} {'% of bound':>10}"
    out = [head]
    for r in rows:
        line = (f"{r.cell:9} {r.backend:14} {r.batch:3d} {r.seq_len:6d} {r.threads:3d} "
                f"{r.flops / 1e9:8.3f} {(r.bytes_read + r.bytes_written) / 1e6:9.1f} "
                f"{r.compute_s * 1e3:10.3f} {r.memory_s * 1e3:10.3f} {r.sync_s * 1e3:8.3f} "
                f"{r.chain_s * 1e3:9.3f} {r.seconds * 1e3:9.3f} {r.per_step_s * 1e6:8.2f}  "
                f"{r.binds:16}")
        if measured is not None:
            t = measured.get((r.cell, r.backend, r.seq_len, r.batch, r.threads))
            line += (f" {t * 1e3:11.3f} {r.percent_of(t):9.0f}%" if t
                     else f" {'—':>11} {'—':>10}")
        out.append(line.rstrip())
    notes = sorted({f"{r.cell}: {r.note.split(' (')[0]}" for r in rows})
    return "\n".join(out + ["", "bytes: " + "; ".join(notes)])


def measure_cases(rows: list[Bound], budget_s: float = 1.0) -> tuple[dict, dict]:
    """Time each row's forward pass (least of repeated calls, warm-up first).

    Returns ``(times, skipped)``: ``(cell, backend, T, B, threads) -> s`` and
    the same keys -> why a case could not run (backend or cell missing).
    """
    from .backends import get
    from .measure import make_problem, measure
    from .threads import num_threads

    times, skipped = {}, {}
    for r in rows:
        key = (r.cell, r.backend, r.seq_len, r.batch, r.threads)
        try:
            reason = get(r.backend).unavailable()
            if reason:
                raise RuntimeError(reason)
            x, w, h0, c0 = make_problem(r.cell, r.seq_len, r.batch, r.hidden)
            run = get(r.backend).runner(r.cell, w)
            args = (x,) if r.cell == "attention" else (x, h0, c0)
            with num_threads(r.threads):
                times[key] = measure(lambda: run(*args), stat="min", budget_s=budget_s,
                                     max_calls=20).value
        except Exception as e:     # a backend or cell another issue has not landed
            skipped[key] = f"{type(e).__name__}: {e}"
    return times, skipped


def main(argv=None) -> int:
    """``python -m lstm_numba costmodel``: the measured limits and the bound table."""
    import argparse

    def ints(text):
        try:
            return tuple(int(v) for v in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated integers; got {text!r}")

    ap = argparse.ArgumentParser(
        prog="python -m lstm_numba costmodel",
        description="Measure this machine's FMA peak, bandwidth (L2, L3, DRAM) and "
                    "two-thread sync cost, then print the cost model's lower bound per "
                    "cell, backend and size, and which term binds.")
    ap.add_argument("--hidden", type=int, default=256, help="H (default 256)")
    ap.add_argument("--batch", type=ints, default=(1, 16), help="B values (default 1,16)")
    ap.add_argument("--seq-len", type=ints, default=(1024, 4096),
                    help="T values (default 1024,4096)")
    ap.add_argument("--threads", type=ints, default=None,
                    help="thread counts (default 1 and all cores, at most 2)")
    ap.add_argument("--quick", action="store_true",
                    help="small working sets and short budgets (seconds, rough figures)")
    ap.add_argument("--measure", action="store_true",
                    help="also time each case (least of repeated calls) and print %% of bound")
    args = ap.parse_args(argv)
    kw = {"budget_s": 0.02, "sizes": {"L2": 256 << 10, "L3": 4 << 20, "DRAM": 64 << 20},
          "sgemm_n": 256} if args.quick else {}
    try:
        m = machine(threads=args.threads, **kw)
        rows = bound_table(args.seq_len, args.batch, args.hidden, m=m)
    except (ValueError, TypeError) as e:
        print(f"error: {e}", flush=True)
        return 2
    print(format_machine(m), flush=True)
    print()
    measured = None
    if args.measure:
        measured, skipped = measure_cases(rows)
        for key, why in sorted(skipped.items()):
            print(f"not measured {key}: {why}")
    print(format_bounds(rows, measured))
    return 0
