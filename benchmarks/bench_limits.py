"""Question: where is the parallelization limit, and how close is each backend to it?

The LSTM's step t needs h_{t-1}: its time is linear in T and a second thread
buys little at batch 1. minGRU and minLSTM (gates from x only) have a linear
recurrence that a parallel scan splits over threads; causal attention has no
recurrence at all but T^2 work. Here the three sit side by side, measured the
same way (issue 12):

* ``Limits``: forward time vs T at B=1 on one thread, for the LSTM (numba,
  numba-parallel, torch), minGRU and minLSTM (numba: sequential loop;
  numba-parallel: chunked scan; torch: log-space cumsum scan) and attention
  (numba: tiled online softmax; numba-parallel: query blocks over threads;
  torch: SDPA). ``LimitsThreads``: the same at B=1 on 2 threads (the report
  divides: thread speedup). ``LimitsBatch``: B=16, one thread.
* ``Bounds``, ``BoundsThreads``: the cost model's lower bound of each case at
  T=4096, B=1, on 1 and 2 threads
  (``track_bound``, seconds) and ``100 x bound / measured`` (``track_percent_of_bound``;
  the measured time is the least of repeated calls, all cases timed side by
  side in one process).
* ``Peak``, ``Bandwidth``, ``Caches``, ``Sync``, ``SyncThreads``: the micro-benchmarks the bound is built
  from (FMA and sgemm GFLOP/s; read/write/copy GB/s at the L2, L3 and DRAM
  working sets; ping-pong, barrier, fork-join and FMA latency in ns).

The machine's limits and the %-of-bound timings are measured once, in one
``setup_cache`` shared by the track classes (asv pickles it to each
parameter process), so each track costs a process start only.

Process count (each parameter set is its own process): fast 36 + 8 + 16 time
processes, 40 bound/percent, 4 + 12 + 3 + 6 micro-benchmark tracks (cheap),
one setup_cache: 7.5 minutes measured on the 2-core Xeon at a load average of
8-10 (other engineers' jobs), so about 4 on an idle one. Single-thread
backends (numba) are not run at 2 threads.
"""
from lstm_numba import costmodel

from .common import (Problem, Timing, max_threads, pick, reads_cache, require_backend,
                     set_threads)

CELLS = ["lstm", "mingru", "minlstm", "attention"]
HIDDEN = pick(fast=256, full=256, smoke=16)
SEQ_LENS = pick(fast=[256, 1024, 4096], full=[256, 1024, 4096, 16384, 65536], smoke=[8, 32])
#: T of the thread-speedup and %-of-bound figures (the issue's target T).
TARGET_T = pick(fast=4096, full=4096, smoke=32)
BATCH_SEQ_LENS = pick(fast=[128, 512], full=[256, 1024, 4096, 16384], smoke=[8])
BATCH = pick(fast=16, full=16, smoke=3)
THREADS = sorted({1, min(2, max_threads())})
#: the thread count of the 2-thread classes (1 on a one-core machine).
MORE_THREADS = [t for t in THREADS if t > 1] or [1]
#: attention's T^2 work: skip calls of more than this many T*T*B (a few seconds each).
ATTENTION_CAP = pick(fast=4096 ** 2, full=65536 ** 2, smoke=64 ** 2)
_NAMES = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]
#: the micro-benchmarks' working sets and budgets in the smoke profile (tests).
_SMOKE_MACHINE = {"sizes": {"L2": 64 << 10, "L3": 256 << 10, "DRAM": 1 << 20},
                  "budget_s": 0.005, "sgemm_n": 128}


def _check_case(cell, backend, seq_len, batch, threads):
    """NotImplementedError (asv's skip) for cases that are not run, saying why."""
    require_backend(backend)
    from lstm_numba.parallel_cells import supports

    if cell != "lstm" and not supports(backend, cell):
        raise NotImplementedError(f"{backend}: {cell} is not implemented on this backend")
    if threads > 1 and backend in costmodel.SINGLE_THREAD_BACKENDS:
        raise NotImplementedError(f"{backend} runs on one thread: not implemented at "
                                  f"{threads} threads (its speedup is 1 by construction)")
    if cell == "attention" and seq_len * seq_len * batch > ATTENTION_CAP:
        raise NotImplementedError(f"attention capped at T*T*B <= {ATTENTION_CAP} in this "
                                  f"profile (T^2 work; asked {seq_len}^2 x {batch})")


def problem(cell, backend, seq_len, batch, hidden, threads):
    """``(run, args)`` of one case, after its skips: ``common.Problem.get``.

    Inputs from :func:`lstm_numba.measure.make_problem` (attention's h0 is
    None), the runner from the backend registry, built and warmed up (compile
    or cache load, untimed) once per process.
    """
    _check_case(cell, backend, seq_len, batch, threads)
    return Problem.get(backend, cell, seq_len, batch, hidden, threads=threads)


class _TimeForward(Timing):
    param_names = _NAMES

    def setup(self, cell, backend, seq_len, batch, hidden, threads):
        self.run, self.args = problem(cell, backend, seq_len, batch, hidden, threads)

    def time_forward(self, cell, backend, seq_len, batch, hidden, threads):
        """Seconds for one forward pass over T steps."""
        self.run(*self.args)


class Limits(_TimeForward):
    """Forward time vs T, batch 1, one thread: the LSTM, the scans, attention."""

    params = [CELLS, ["numba", "numba-parallel", "torch"], SEQ_LENS, [1], [HIDDEN], [1]]


class LimitsThreads(_TimeForward):
    """Forward time at batch 1 on 2 threads (÷ ``Limits`` at 1 thread: the speedup)."""

    params = [CELLS, ["numba-parallel", "torch"],
              pick(fast=[TARGET_T], full=[1024, 4096, 16384], smoke=[TARGET_T]), [1],
              [HIDDEN], MORE_THREADS]


class LimitsBatch(_TimeForward):
    """Forward time vs T at batch 16, one thread (numba and torch)."""

    params = [CELLS, ["numba", "torch"], BATCH_SEQ_LENS, [BATCH], [HIDDEN], [1]]


# ---------------------------------------------------------------- the model

def _machine_kwargs():
    return pick(fast={"budget_s": 0.1}, full={}, smoke=_SMOKE_MACHINE)


def _limits_cache(self):
    """The machine's limits and the %-of-bound timings, once for every track class.

    Returns a dict: ``machine`` (``Machine.to_dict()``), ``times`` and
    ``bounds`` keyed by ``(cell, backend, threads)`` at T=TARGET_T, B=1
    (seconds; the time is the least of repeated calls, every case timed in
    this one process, one after the other), ``skipped`` (why a case is not
    run) and ``failed`` (the error of a case that broke).
    """
    from lstm_numba.measure import measure

    m = costmodel.machine(**_machine_kwargs())
    times, bounds, skipped, failed = {}, {}, {}, {}
    for cell, backend, threads in Bounds.cases():
        key = (cell, backend, threads)
        try:
            run, args = problem(cell, backend, TARGET_T, 1, HIDDEN, threads)
            times[key] = measure(lambda: run(*args), stat="min",
                                 budget_s=pick(fast=0.3, full=2.0, smoke=0.0),
                                 max_calls=pick(fast=10, full=50, smoke=3)).value
        except NotImplementedError as e:
            skipped[key] = str(e)
            continue
        except Exception as e:     # one broken backend must not lose every track
            failed[key] = f"{type(e).__name__}: {e}"
            continue
        bounds[key] = costmodel.bound(cell, backend, TARGET_T, 1, HIDDEN, threads, m=m).seconds
    Problem.forget()
    set_threads(max_threads())
    return {"machine": m.to_dict(), "times": times, "bounds": bounds, "skipped": skipped,
            "failed": failed}


_limits_cache.timeout = pick(fast=600, full=3600, smoke=300)
#: base of the track classes: one _limits_cache run serves them all.
_ReadsLimits = reads_cache(_limits_cache)


class Bounds(_ReadsLimits):
    """The cost model's bound and each backend's % of it, T=4096, batch 1, one thread."""

    params = [CELLS, ["numba", "numba-parallel", "torch"], [TARGET_T], [1], [HIDDEN], [1]]
    param_names = _NAMES

    @staticmethod
    def cases():
        """(cell, backend, threads) of ``Bounds`` and ``BoundsThreads``."""
        return [(c, b, p[5][0]) for p in (Bounds.params, BoundsThreads.params)
                for c in p[0] for b in p[1]]

    def setup(self, cache, cell, backend, seq_len, batch, hidden, threads):
        key = (cell, backend, threads)
        if key in cache["skipped"]:
            raise NotImplementedError(cache["skipped"][key])
        if key in cache["failed"]:          # asv records it as failed, with the reason
            raise RuntimeError(f"timing this case in setup_cache failed: {cache['failed'][key]}")
        self.bound, self.time = cache["bounds"][key], cache["times"][key]

    def track_bound(self, cache, cell, backend, seq_len, batch, hidden, threads):
        """The cost model's lower bound of this forward pass (seconds)."""
        return self.bound

    track_bound.unit = "seconds"

    def track_percent_of_bound(self, cache, cell, backend, seq_len, batch, hidden, threads):
        """100 x bound / measured time (least of repeated calls): 100 is the limit."""
        return 100.0 * self.bound / self.time

    track_percent_of_bound.unit = "%"


class BoundsThreads(Bounds):
    """As ``Bounds`` on 2 threads (the backends that use them)."""

    params = [CELLS, ["numba-parallel", "torch"], [TARGET_T], [1], [HIDDEN],
              MORE_THREADS]


class Peak(_ReadsLimits):
    """FMA peak (the micro-benchmark) and the sgemm yardstick, GFLOP/s."""

    params = [THREADS]
    param_names = ["threads"]

    def track_fma_gflops(self, cache, threads):
        """Float32 FMA chains in registers, all threads together."""
        return cache["machine"]["fma_gflops"][threads]

    track_fma_gflops.unit = "GFLOP/s"

    def track_sgemm_gflops(self, cache, threads):
        """numpy float32 matmul (lstm_numba.measure.sgemm_gflops), same process."""
        return cache["machine"]["sgemm_gflops"][threads]

    track_sgemm_gflops.unit = "GFLOP/s"


class Bandwidth(_ReadsLimits):
    """Read and write bandwidth at the L2, L3 and DRAM working sets, GB/s (the
    model's two streams; ``python -m lstm_numba costmodel`` also prints copy)."""

    params = [["read", "write"], list(costmodel.LEVELS), THREADS]
    param_names = ["kind", "level", "threads"]

    def track_gbs(self, cache, kind, level, threads):
        """Bytes moved per second by all threads together (1e9 units)."""
        return cache["machine"][f"{kind}_gbs"][f"{level}/{threads}"]

    track_gbs.unit = "GB/s"


class Caches(_ReadsLimits):
    """The cache sizes the model places a working set by (bytes, from sysfs)."""

    params = [["L1", "L2", "L3"]]
    param_names = ["level"]

    def track_bytes(self, cache, level):
        """Size of the data cache (L1, L2 per core; L3 shared)."""
        return cache["machine"]["caches"][level]

    track_bytes.unit = "bytes"


class Sync(_ReadsLimits):
    """What threads pay to meet, and the FMA latency (ns), one thread."""

    params = [["fma_latency", "pingpong", "forkjoin"], [1]]
    param_names = ["mode", "threads"]

    def track_ns(self, cache, mode, threads):
        """ns: a dependent FMA; a ping-pong round trip (1 thread: two atomic moves
        on one core; 2: a cache line between cores); a two-thread barrier; the
        fork and join of an empty prange region."""
        m = cache["machine"]
        if mode == "fma_latency":
            return m["fma_latency_ns"]
        return m[f"{mode}_ns"][threads]

    track_ns.unit = "ns"


class SyncThreads(Sync):
    """As ``Sync`` between two threads."""

    params = [["pingpong", "barrier", "forkjoin"], MORE_THREADS]
