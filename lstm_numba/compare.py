"""Run every available backend on one problem and tabulate time, throughput,
GFLOP/s and error against the float64 oracle (``python -m lstm_numba compare``).

Everything comes from the harness (:mod:`lstm_numba.measure`): the problem is
:func:`~lstm_numba.measure.make_problem`'s, the times
:func:`~lstm_numba.measure.measure`'s -- the first call, which compiles or
loads the JIT cache, is timed apart and never mixed into the steady-state
figure; the steady figure is the median of repeated calls (the table says
which statistic and how many calls), made side by side in one process with
the thread pools set once for every backend.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from .backends import BACKEND_NAMES, get as get_backend
from .cells import flops
from .measure import Measurement, make_problem, max_abs_err, measure
from .threads import get_num_threads, num_threads


@dataclass
class Row:
    backend: str
    first_call_s: float     # runner set-up + first call (compile / cache load included)
    time: Measurement       # steady-state calls after the first
    steps_per_s: float      # T*B / time_s: sample-steps per second
    gflops: float
    max_err: float          # max |result - oracle64| over outputs, h and (LSTM) c

    @property
    def time_s(self) -> float:
        """Seconds per call under the measurement's statistic."""
        return self.time.value

    @property
    def repeats(self) -> int:
        return self.time.n


def run_compare(cell="lstm", hidden=256, batch=16, seq_len=128, input_size=None,
                dtype=np.float32, threads=None, backends=None, seed=0,
                min_repeats=3, max_repeats=50, budget_s=1.0, stat="median"):
    """Time each backend on one problem; returns ``(rows, skipped, threads)``.

    Parameters
    ----------
    cell : str
        A cell name (:data:`lstm_numba.CELLS`).
    hidden, batch, seq_len, input_size : int
        H, B, T, I (I defaults to H).
    dtype : np.float32 or np.float64
    threads : int or None
        Thread count for every pool (None: leave as set).
    backends : list of str or None
        Names to run (None: every registered backend that runs here).
    seed : int
        Seed of :func:`~lstm_numba.measure.make_problem`.
    min_repeats, max_repeats, budget_s, stat
        Passed to :func:`~lstm_numba.measure.measure` (``min_calls``,
        ``max_calls``, ``budget_s``, ``stat``).

    Returns
    -------
    rows : list of Row
    skipped : dict name -> reason
    threads : int
        The thread count the rows were measured with.
    """
    input_size = hidden if input_size is None else input_size
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, input_size, dtype, seed)
    from .reference import oracle64

    ref = oracle64(cell, x, w, h0, c0)
    names = list(backends) if backends else list(BACKEND_NAMES)
    for name in names:
        get_backend(name)                 # an unknown name fails before any timing
    skipped = {}
    rows = []
    fl = flops(cell, seq_len, batch, input_size, hidden)
    ctx = num_threads(threads) if threads else contextlib.nullcontext()
    with ctx:
        used = get_num_threads()
        for name in names:
            entry = get_backend(name)
            reason = entry.unavailable()
            if reason is None and entry.device == "gpu" and _simulated():
                reason = ("numba-cuda's simulator is on (NUMBA_ENABLE_CUDASIM=1): it runs "
                          "kernels in Python on the CPU, so its timings mean nothing")
            if reason:
                skipped[name] = reason
                continue
            t0 = time.perf_counter()
            run = entry.runner(cell, w)
            setup_s = time.perf_counter() - t0
            got = []

            def call(run=run):
                got[:] = run(x, h0, c0)

            m = measure(call, stat=stat, warmup=1, min_calls=min_repeats,
                        max_calls=max_repeats, budget_s=budget_s)
            rows.append(Row(name, setup_s + m.first_s, m, seq_len * batch / m.value,
                            fl / m.value / 1e9, max_abs_err(got, ref)))
    return rows, skipped, used


def _simulated() -> bool:
    import os

    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def format_table(rows, skipped, threads, cell, hidden, batch, seq_len, input_size,
                 dtype) -> str:
    """The compare table as text, fastest first, with ratios to numpy-seed and torch.

    The time column is headed by its statistic (e.g. ``median ms``) and the
    ``calls`` column says over how many calls it was taken.
    """
    by = {r.backend: r for r in rows}
    stat = rows[0].time.stat if rows else "median"
    head = (f"{cell}  H={hidden}  B={batch}  T={seq_len}  I={input_size}  "
            f"{np.dtype(dtype).name}  threads={threads}  "
            f"GFLOP per pass={flops(cell, seq_len, batch, input_size, hidden) / 1e9:.3f}")
    lines = [head]
    cpu = _cpu_line()
    if cpu:
        lines.append(f"cpu: {cpu}")
    cols = ("backend", f"{stat} ms", "calls", "steps/s", "GFLOP/s", "x seed", "/torch",
            "first call ms", "max err")
    lines.append("  ".join(f"{c:>14}" for c in cols))
    seed = by.get("numpy-seed")
    torch = by.get("torch")
    for r in sorted(rows, key=lambda r: r.time_s):
        lines.append("  ".join(f"{v:>14}" for v in (
            r.backend, f"{r.time_s * 1e3:.3f}", f"{r.repeats}", f"{r.steps_per_s:,.0f}",
            f"{r.gflops:.2f}",
            f"{seed.time_s / r.time_s:.1f}" if seed else "-",
            f"{r.time_s / torch.time_s:.2f}" if torch else "-",
            f"{r.first_call_s * 1e3:.1f}", f"{r.max_err:.1e}")))
    lines.append(f"time: {stat} of the calls after the first (calls: how many; "
                 "lstm_numba.measure); first call includes set-up and JIT compile or "
                 "cache load. steps/s = T*B/time. x seed: speedup over numpy-seed; "
                 "/torch: time ratio to torch (<1 is faster). max err: vs the float64 "
                 "numpy oracle.")
    for name, why in skipped.items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)


def _cpu_line() -> str | None:
    """One line naming the CPU (lstm_numba.machine), None if it cannot be read."""
    try:
        from .machine import describe_cpu

        return describe_cpu()
    except Exception:   # naming the CPU must never cost the table
        return None
