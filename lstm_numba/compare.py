"""Run every available backend on one problem and tabulate time, throughput,
GFLOP/s and error against the float64 oracle (``python -m lstm_numba compare``).

Timing rules (DESIGN.md, "Measuring honestly"): the first call, which compiles
or loads the JIT cache, is timed apart and never mixed into the steady-state
figure; the steady figure is the median of repeated calls made side by side
in one process, with the thread pools set once for every backend.
"""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .backends import BACKEND_NAMES, get as get_backend
from .cells import flops, init_weights
from .threads import get_num_threads, num_threads

#  Backends slower than this per call get fewer repeats (at least ``min_repeats``).
_TARGET_SECONDS = 1.0


@dataclass
class Row:
    backend: str
    first_call_s: float     # compile / cache load / set-up included
    median_s: float         # steady state
    repeats: int
    steps_per_s: float      # T*B / median_s: sample-steps per second
    gflops: float
    max_err: float          # max |outputs - oracle64| (and |c - c_ref| for the LSTM)


def _problem(cell, seq_len, batch, hidden, input_size, dtype, seed):
    rng = np.random.default_rng(seed)
    w = init_weights(cell, input_size, hidden, dtype=dtype, seed=seed)
    x = rng.standard_normal((seq_len, batch, input_size)).astype(dtype)
    h0 = rng.uniform(-0.5, 0.5, (batch, hidden)).astype(dtype)
    c0 = rng.uniform(-0.5, 0.5, (batch, hidden)).astype(dtype) if cell == "lstm" else None
    return x, w, h0, c0


def _max_err(res, ref):
    err = float(np.max(np.abs(res[0].astype(np.float64) - ref[0])))
    if ref[2] is not None:
        err = max(err, float(np.max(np.abs(res[2].astype(np.float64) - ref[2]))))
    return err


def run_compare(cell="lstm", hidden=256, batch=16, seq_len=128, input_size=None,
                dtype=np.float32, threads=None, backends=None, seed=0,
                min_repeats=3, max_repeats=50):
    """Time each backend on one problem; returns ``(rows, skipped, threads)``.

    Parameters
    ----------
    cell : {"rnn", "lstm", "gru"}
    hidden, batch, seq_len, input_size : int
        H, B, T, I (I defaults to H).
    dtype : np.float32 or np.float64
    threads : int or None
        Thread count for every pool (None: leave as set).
    backends : list of str or None
        Names to run (None: every backend available here).
    Returns
    -------
    rows : list of Row
    skipped : dict name -> reason
    threads : int
        The thread count the rows were measured with.
    """
    input_size = hidden if input_size is None else input_size
    x, w, h0, c0 = _problem(cell, seq_len, batch, hidden, input_size, dtype, seed)
    from .reference import oracle64

    ref = oracle64(cell, x, w, h0, c0)
    names = list(backends) if backends else BACKEND_NAMES
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
            res = run(x, h0, c0)
            first = time.perf_counter() - t0
            times = []
            budget = time.perf_counter() + _TARGET_SECONDS
            while len(times) < max_repeats and (len(times) < min_repeats
                                                or time.perf_counter() < budget):
                t0 = time.perf_counter()
                run(x, h0, c0)
                times.append(time.perf_counter() - t0)
            med = statistics.median(times)
            rows.append(Row(name, first, med, len(times), seq_len * batch / med,
                            fl / med / 1e9, _max_err(res, ref)))
    return rows, skipped, used


def _simulated() -> bool:
    import os

    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0")


def format_table(rows, skipped, threads, cell, hidden, batch, seq_len, input_size,
                 dtype) -> str:
    """The compare table as text, fastest first, with ratios to numpy-seed and torch."""
    by = {r.backend: r for r in rows}
    head = (f"{cell}  H={hidden}  B={batch}  T={seq_len}  I={input_size}  "
            f"{np.dtype(dtype).name}  threads={threads}  "
            f"GFLOP per pass={flops(cell, seq_len, batch, input_size, hidden) / 1e9:.3f}")
    cols = ("backend", "time ms", "steps/s", "GFLOP/s", "x seed", "/torch", "first call ms",
            "max err")
    lines = [head, "  ".join(f"{c:>14}" for c in cols)]
    seed = by.get("numpy-seed")
    torch = by.get("torch")
    for r in sorted(rows, key=lambda r: r.median_s):
        lines.append("  ".join(f"{v:>14}" for v in (
            r.backend, f"{r.median_s * 1e3:.3f}", f"{r.steps_per_s:,.0f}", f"{r.gflops:.2f}",
            f"{seed.median_s / r.median_s:.1f}" if seed else "-",
            f"{r.median_s / torch.median_s:.2f}" if torch else "-",
            f"{r.first_call_s * 1e3:.1f}", f"{r.max_err:.1e}")))
    lines.append("time: median of repeated calls after the first; first call includes "
                 "JIT compile or cache load and set-up. steps/s = T*B/time. "
                 "x seed: speedup over numpy-seed; /torch: time ratio to torch (<1 is faster). "
                 "max err: vs the float64 numpy oracle.")
    for name, why in skipped.items():
        lines.append(f"skipped {name}: {why}")
    return "\n".join(lines)
