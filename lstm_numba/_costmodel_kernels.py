"""Micro-benchmark kernels of the cost model (:mod:`lstm_numba.costmodel`).

Three questions, each a small kernel that does nothing else:

* FMA peak: independent chains of fused multiply-adds held in vector
  registers (:func:`fma_chains`). The chains are written as LLVM IR (an
  intrinsic) rather than left to the vectorizer, so the register count and
  vector width are what was asked for, not what a heuristic chose: 16
  accumulators of 16 float32 lanes cover two FMA ports of 4-cycle latency
  with room to spare; one scalar chain gives the FMA latency.
* bandwidth: read (a sum), write (a fill) and copy loops over a per-thread
  slice of a 2-D array, vectorized at the width the package's kernels use
  (:func:`lstm_numba._gemm.full_width`).
* sync: a two-thread ping-pong and a two-thread counter barrier on int64
  flags with the package's atomics (:mod:`lstm_numba._atomics`), the same
  mechanism ``numba-parallel`` uses between steps; and an empty ``prange``
  region (the fork and join of Numba's pool).

The Python drivers that time them (:func:`fma_peak_gflops`,
:func:`fma_latency_ns`, :func:`stream_gbs`, :func:`sync_ns`) sit at the end
and are public through :mod:`lstm_numba.costmodel`. Nothing runs at import.

The wait loops give up after ``max_polls`` polls and report it (flag 1 set),
so a partner that never runs (one thread in the pool, a starved core) costs
seconds, never a hang.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._atomics import _sched_yield, fetch_add, load
from ._gemm import full_width

#: Accumulators and lanes of the throughput chains: 16 x zmm (float32).
PEAK_CHAINS = 16
PEAK_LANES = 16

#: Polls before a waiting thread starts yielding its core (as _atomics).
_SPIN = 4000


def _splat(builder, value, lanes):
    if lanes == 1:
        return value
    vty = ir.VectorType(value.type, lanes)
    vec = builder.insert_element(ir.Constant(vty, ir.Undefined), value,
                                 ir.Constant(ir.IntType(32), 0))
    mask = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
    return builder.shuffle_vector(vec, ir.Constant(vty, ir.Undefined), mask)


def _make_fma(chains: int, lanes: int):
    """An intrinsic ``f(n_iter, a, b) -> float32`` running ``chains`` FMA chains.

    Each of ``chains`` accumulators (``lanes``-wide float32 vectors, in
    registers: the allocas sit in the entry block, so LLVM promotes them) is
    updated ``n_iter`` times as ``acc = fma(acc, a, b)``. The chains start
    from different values, so no optimisation can merge them; the sum of all
    lanes is returned, so none is dead. FLOPs: ``2 * chains * lanes * n_iter``.
    """

    @intrinsic
    def fma(typingctx, n_iter, a, b):
        if not (isinstance(n_iter, types.Integer) and a == types.float32
                and b == types.float32):
            return None
        sig = types.float32(types.intp, types.float32, types.float32)

        def codegen(context, builder, sig, args):
            n, va, vb = args
            f32 = ir.FloatType()
            vty = ir.VectorType(f32, lanes) if lanes > 1 else f32
            # llvmlite's declare_intrinsic knows no vector types: name it.
            suffix = f"v{lanes}f32" if lanes > 1 else "f32"
            fn = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vty, [vty, vty, vty]), f"llvm.fma.{suffix}")
            sa, sb = _splat(builder, va, lanes), _splat(builder, vb, lanes)
            accs = []
            for k in range(chains):
                p = cgutils.alloca_once(builder, vty)
                start = _splat(builder, ir.Constant(f32, 1.0 + 0.001 * k), lanes)
                builder.store(builder.fmul(start, sb), p)
                accs.append(p)
            with cgutils.for_range(builder, n):
                for p in accs:
                    builder.store(builder.call(fn, [builder.load(p), sa, sb]), p)
            total = builder.load(accs[0])
            for p in accs[1:]:
                total = builder.fadd(total, builder.load(p))
            if lanes == 1:
                return total
            out = builder.extract_element(total, ir.Constant(ir.IntType(32), 0))
            for i in range(1, lanes):
                out = builder.fadd(out, builder.extract_element(
                    total, ir.Constant(ir.IntType(32), i)))
            return out

        return sig, codegen

    return fma


_fma_peak = _make_fma(PEAK_CHAINS, PEAK_LANES)
_fma_latency = _make_fma(1, 1)


@njit(parallel=True, cache=True)
def fma_chains(n_threads, n_iter, a, b, out):
    """``out[t]`` = lane sum after ``n_iter`` rounds of the peak chains, thread t.

    FLOPs per thread: ``2 * PEAK_CHAINS * PEAK_LANES * n_iter``.
    """
    for t in prange(n_threads):
        full_width()
        out[t] = _fma_peak(n_iter, a, b)


@njit(cache=True)
def fma_latency_chain(n_iter, a, b):
    """One dependent scalar FMA chain of ``n_iter`` links (time / n_iter = latency)."""
    return _fma_latency(n_iter, a, b)


# ------------------------------------------------------------------ bandwidth

@njit(inline="always")
def _read(row):
    s = np.float32(0.0)
    for i in range(row.shape[0]):
        s += row[i]
    return s


@njit(parallel=True, fastmath=True, cache=True)
def read_rows(a, reps, out):
    """Thread t sums row ``a[t]`` ``reps`` times (fastmath: vector partial sums)."""
    for t in prange(a.shape[0]):
        full_width()
        s = np.float32(0.0)
        for _ in range(reps):
            s += _read(a[t])
        out[t] = s


@njit(parallel=True, cache=True)
def write_rows(a, reps, value):
    """Thread t fills row ``a[t]`` with ``value + r`` for ``r`` in range(reps)."""
    for t in prange(a.shape[0]):
        full_width()
        row = a[t]
        for r in range(reps):
            v = value + np.float32(r)
            for i in range(row.shape[0]):
                row[i] = v


@njit(parallel=True, cache=True)
def copy_rows(src, dst, reps):
    """Thread t copies row ``src[t]`` into ``dst[t]`` ``reps`` times (a scaled copy)."""
    for t in prange(src.shape[0]):
        full_width()
        s, d = src[t], dst[t]
        for r in range(reps):
            k = np.float32(1.0) + np.float32(r) * np.float32(1e-7)
            for i in range(s.shape[0]):
                d[i] = s[i] * k


# ----------------------------------------------------------------------- sync

@njit(inline="always")
def _wait(flags, n, max_polls):
    """Spin until flags[0] >= n or flags[1] (abort) is set; False on give-up."""
    polls = 0
    while load(flags, 0) < n:
        if load(flags, 1) != 0:
            return False
        polls += 1
        if polls > _SPIN:
            _sched_yield()
        if polls > max_polls:
            fetch_add(flags, 1, 1)
            return False
    return True


@njit(parallel=True, cache=True)
def pingpong(flags, n_round, mode, max_polls):
    """Two threads hand a counter back and forth (``mode`` 0) or meet at a barrier (1).

    ``flags`` is int64 ``[counter, abort]``, zeroed by the caller; runs on
    two threads of Numba's pool (the caller makes sure the pool has two).
    Ping-pong: thread 0 moves the counter to odd values, thread 1 to even
    ones, each waiting for the other's move: one round is a round trip of a
    cache line between the cores. Barrier: both add 1 each round and wait
    until the counter shows both arrivals. Returns nothing; ``flags[1] != 0``
    afterwards means a wait gave up.
    """
    for t in prange(2):
        for r in range(n_round):
            if mode == 0:
                if t == 0:
                    fetch_add(flags, 0, 1)
                    if not _wait(flags, 2 * r + 2, max_polls):
                        break
                else:
                    if not _wait(flags, 2 * r + 1, max_polls):
                        break
                    fetch_add(flags, 0, 1)
            else:
                fetch_add(flags, 0, 1)
                if not _wait(flags, 2 * r + 2, max_polls):
                    break


@njit(cache=True)
def pingpong_self(flags, n_round):
    """One thread making both moves of each round (the 1-thread figure).

    Nobody else touches the line, so this is the cost of two uncontended
    atomic adds and their loads: what a round trip costs when no second core
    is involved.
    """
    for r in range(n_round):
        fetch_add(flags, 0, 1)
        if load(flags, 0) < 2 * r + 1:
            fetch_add(flags, 1, 1)
        fetch_add(flags, 0, 1)
        if load(flags, 0) < 2 * r + 2:
            fetch_add(flags, 1, 1)


@njit(parallel=True, cache=True)
def empty_region(out):
    """An almost empty parallel region: the fork and join of Numba's pool."""
    for t in prange(out.shape[0]):
        out[t] += 1


# ---------------------------------------------------------------- drivers
# Public through lstm_numba.costmodel (re-exported there).

def _threads_ok(threads: int) -> int:
    import numba

    from .threads import max_threads

    threads = int(threads)
    if threads < 1 or threads > min(max_threads(), numba.config.NUMBA_NUM_THREADS):
        raise ValueError(f"threads must be in 1..{min(max_threads(), numba.config.NUMBA_NUM_THREADS)}"
                         f" (cores this process may use); got {threads}")
    return threads


def _timed_min(fn, budget_s: float, min_calls: int = 3) -> float:
    """Least seconds of ``fn()`` (warm-up first): on a shared machine the
    least disturbed call is the best estimate of what the hardware does."""
    from .measure import measure

    return measure(fn, stat="min", warmup=1, min_calls=min_calls, max_calls=500,
                   budget_s=budget_s).value


def fma_peak_gflops(threads: int = 1, call_s: float = 1e-3, budget_s: float = 0.2) -> float:
    """Float32 FMA rate of ``threads`` threads together, GFLOP/s.

    Each thread runs 16 independent chains of 16-lane FMAs held in registers
    (enough to keep two FMA ports busy through a 4-cycle latency); the
    chains are LLVM IR, so the width is the CPU's (512-bit with AVX-512).

    Parameters
    ----------
    threads : int
        Threads of Numba's pool, 1 .. cores.
    call_s : float
        Seconds one timed call should last (short calls dodge the other
        processes of a shared machine; the least of many is kept).
    budget_s : float
        Seconds of timed calls.
    """
    from .threads import num_threads

    threads = _threads_ok(threads)
    out = np.zeros(threads, np.float32)
    a, b = np.float32(0.999), np.float32(1e-3)
    per_iter = 2.0 * PEAK_CHAINS * PEAK_LANES
    with num_threads(threads):
        fma_chains(threads, 1000, a, b, out)           # compile / load the cache
        n = 1000
        dt = _timed_min(lambda: fma_chains(threads, n, a, b, out), 0.0, 1)
        n = max(1000, int(n * call_s / max(dt, 1e-7)))
        dt = _timed_min(lambda: fma_chains(threads, n, a, b, out), budget_s)
    return threads * per_iter * n / dt / 1e9


def fma_latency_ns(n: int = 200_000, budget_s: float = 0.05) -> float:
    """Latency of one float32 FMA, ns: one dependent chain of ``n`` links."""

    a, b = np.float32(0.999), np.float32(1e-3)
    fma_latency_chain(10, a, b)
    return _timed_min(lambda: fma_latency_chain(n, a, b), budget_s) / n * 1e9


def stream_gbs(nbytes: int, threads: int = 1, kinds=("read", "write", "copy"),
               call_bytes: int = 8 << 20, budget_s: float = 0.15) -> dict[str, float]:
    """Bandwidth of read, write and copy loops over a working set of ``nbytes``.

    Parameters
    ----------
    nbytes : int
        Working set of all threads together; each thread owns ``nbytes /
        threads`` of it (per-core caches see their share). One buffer serves
        every kind, so each touches ``nbytes`` in all.
    threads : int
        Threads of Numba's pool, 1 .. cores.
    kinds : iterable of {"read", "write", "copy"}
        read: a vectorized sum; write: a fill; copy: ``dst = src * k`` from
        one half of the buffer to the other (bytes counted read + written,
        as STREAM does).
    call_bytes : int
        Bytes per thread one timed call moves at least (passes are repeated).
    budget_s : float
        Seconds of timed calls per kind.

    Returns
    -------
    dict kind -> float
        Bytes moved by all threads per second, in GB/s (1e9 bytes).
    """
    from .threads import num_threads

    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in ("read", "write", "copy")]
    if bad or not kinds:
        raise ValueError(f"kinds must be among 'read', 'write', 'copy'; got {kinds!r}")
    threads = _threads_ok(threads)
    if int(nbytes) < 1024 * threads:
        raise ValueError(f"nbytes must be at least 1 KiB per thread; got {nbytes}")
    h = int(nbytes) // threads // 8            # floats per thread in each half
    buf = np.empty(2 * threads * h, np.float32)
    rows = buf.reshape(threads, 2 * h)
    src, dst = buf[:threads * h].reshape(threads, h), buf[threads * h:].reshape(threads, h)
    out = np.zeros(threads, np.float32)
    reps = max(1, call_bytes // (8 * h))
    two = np.float32(2.0)
    fns = {"read": lambda: read_rows(rows, reps, out),
           "write": lambda: write_rows(rows, reps, two),
           "copy": lambda: copy_rows(src, dst, reps)}
    gbs = {}
    with num_threads(threads):
        write_rows(rows, 1, np.float32(1.0))     # touch the pages
        for kind in kinds:
            dt = _timed_min(fns[kind], budget_s)
            gbs[kind] = threads * 8 * h * reps / dt / 1e9
    return gbs


def sync_ns(threads: int = 2, mode: str = "pingpong", rounds: int = 2000,
            budget_s: float = 0.05, max_polls: int = 2_000_000) -> float:
    """What two threads pay to meet, ns per round.

    Parameters
    ----------
    threads : {1, 2}
        2: two threads of Numba's pool on atomic int64 flags. 1: one thread
        makes both moves of each round (no other core involved: the cost of
        the atomics alone); a 1-thread pool never waits for a partner that
        cannot run.
    mode : {"pingpong", "barrier", "forkjoin"}
        pingpong: a round trip, thread 0 moves, thread 1 answers;
        barrier: both arrive at a counter and wait for each other (what
        ``numba-parallel`` pays per step); forkjoin: an empty ``prange``
        region started from Python (per region, not per round).
    rounds : int
    max_polls : int
        Polls after which a waiting thread gives up (then RuntimeError).
    """
    from .threads import num_threads

    if mode not in ("pingpong", "barrier", "forkjoin"):
        raise ValueError(f"mode must be 'pingpong', 'barrier' or 'forkjoin'; got {mode!r}")
    if threads not in (1, 2):
        raise ValueError(f"threads must be 1 or 2; got {threads!r}")
    threads = _threads_ok(threads)
    flags = np.zeros(2, np.int64)
    with num_threads(threads):
        if mode == "forkjoin":
            out = np.zeros(threads)
            return _timed_min(lambda: empty_region(out), budget_s, 20) * 1e9
        if threads == 1:
            def fn():
                flags[:] = 0
                pingpong_self(flags, rounds)
        else:
            import numba

            if numba.get_num_threads() < 2:     # pragma: no cover - guarded above
                raise RuntimeError("Numba's pool has fewer than 2 threads")
            code = 0 if mode == "pingpong" else 1

            def fn():
                flags[:] = 0
                pingpong(flags, rounds, code, max_polls)
                if flags[1]:
                    raise RuntimeError(
                        f"{mode}: a thread waited {max_polls} polls for its partner and "
                        "gave up (is the second core busy, or the pool one thread?)")
        return _timed_min(fn, budget_s) / rounds * 1e9
