"""The one measuring harness: problem recipe, timing, sgemm yardstick, tolerances.

Every figure the project prints -- ``python -m lstm_numba compare``,
``benchmarks/race.py``, ``benchmarks/gpu_check.py``, the asv ``track_``
benchmarks -- comes from the functions here, so that numbers from different
tools can be set side by side (DESIGN.md, "Measuring honestly"):

* :func:`make_problem`: one seeded recipe for ``(x, weights, h0, c0)``.
* :func:`measure` / :func:`measure_interleaved`: a warm-up call first (JIT
  compile, cache load, cuDNN's algorithm choice: timed apart, never mixed in),
  then repeated calls within a time budget; the result keeps every sample and
  names the statistic it reports.
* :func:`sgemm_gflops`: the same-process float32 GEMM rate, the yardstick of
  every efficiency figure.
* :data:`TOLERANCES` / :func:`tolerance`: the one table of allowed errors
  against the float64 oracle.
* :class:`DeviceRun`: the shape of a GPU runner (``call()`` launches on
  device-resident inputs, ``sync()`` waits, ``result()`` copies back), so a
  timed GPU call always includes its synchronisation.

asv's own ``time_`` benchmarks keep asv's timing (that is asv's job); this
module serves everything that times by itself.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

from ._checks import check_size
from .cells import init_weights, spec

#: Statistics a :class:`Measurement` can report.
STATISTICS = ("median", "min")


# ---------------------------------------------------------------- the problem

class Problem(NamedTuple):
    """One seeded problem: ``x (T,B,I)``, ``w`` (Weights), ``h0 (B,H)``, ``c0``.

    ``c0`` is ``(B, H)`` for cells with a cell state, else None.
    """

    x: np.ndarray
    w: object
    h0: np.ndarray | None
    c0: np.ndarray | None


def make_problem(cell, seq_len, batch, hidden, input_size=None, dtype=np.float32,
                 seed=0) -> Problem:
    """The seeded problem every tool measures.

    Recipe (kept stable so results stay comparable across commits): weights
    from :func:`lstm_numba.init_weights` with ``seed``; then from
    ``default_rng(seed + 1)``: ``x ~ N(0, 1)``, ``h0 = 0.1 N(0, 1)``,
    ``c0 = 0.1 N(0, 1)`` (cells with a cell state only), all drawn in float64
    and cast to ``dtype`` (``x`` one time step at a time, so no float64 copy
    of the whole input is ever held).

    Parameters
    ----------
    cell : str
        A cell name (see :data:`lstm_numba.CELLS`).
    seq_len, batch, hidden : int
        T, B, H.
    input_size : int, optional
        I; defaults to H.
    dtype : np.float32 or np.float64
    seed : int

    Returns
    -------
    Problem
        ``x (T, B, I)``, ``w``, ``h0 (B, H)``, ``c0 (B, H)`` or None.
    """
    s = spec(cell)
    for name, v in (("seq_len", seq_len), ("batch", batch), ("hidden", hidden)):
        check_size(name, v)
    input_size = hidden if input_size is None else input_size
    w = init_weights(cell, input_size, hidden, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    # Drawn step by step into ``dtype``: the same numbers as one (T, B, I)
    # draw, without a full-size float64 temporary (the memory benchmarks
    # build T = 8192 inputs and measure peak RSS).
    x = np.empty((seq_len, batch, input_size), dtype=dtype)
    for t in range(seq_len):
        x[t] = rng.standard_normal((batch, input_size))
    h0 = (0.1 * rng.standard_normal((batch, hidden))).astype(dtype)
    if s.name == "attention":       # no initial state (h0 must be None)
        h0 = None
    c0 = ((0.1 * rng.standard_normal((batch, hidden))).astype(dtype)
          if s.has_cell_state else None)
    return Problem(x, w, h0, c0)


# ------------------------------------------------------------------ timing

@dataclass(frozen=True)
class Measurement:
    """Wall times of repeated calls of one function.

    Attributes
    ----------
    samples : tuple of float
        Seconds per call, every timed call after the warm-up, in order.
    first_s : float or None
        The warm-up call (compile, cache load, set-up), kept apart; None if
        no warm-up was made.
    stat : {"median", "min"}
        The statistic :attr:`value` reports.
    interleaved : bool
        True when the calls alternated with other contenders'
        (:func:`measure_interleaved`); :meth:`describe` says so.
    """

    samples: tuple[float, ...]
    first_s: float | None = None
    stat: str = "median"
    interleaved: bool = False

    def __post_init__(self):
        if self.stat not in STATISTICS:
            raise ValueError(f"stat must be one of {STATISTICS}; got {self.stat!r}")
        if not self.samples:
            raise ValueError("a Measurement needs at least one sample")

    @property
    def value(self) -> float:
        """Seconds per call under :attr:`stat`."""
        return self.median if self.stat == "median" else self.min

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def min(self) -> float:
        return float(min(self.samples))

    @property
    def spread(self) -> float:
        """(max - min) / median of the samples: how noisy the run was."""
        return (max(self.samples) - min(self.samples)) / self.median

    @property
    def n(self) -> int:
        return len(self.samples)

    def describe(self) -> str:
        """E.g. ``"median of 12 calls"``: what a table built from it shows."""
        kind = "interleaved " if self.interleaved else ""
        return f"{self.stat} of {self.n} {kind}call{'s' if self.n != 1 else ''}"


def _check_args(stat, warmup, min_calls, max_calls) -> None:
    if stat not in STATISTICS:
        raise ValueError(f"stat must be one of {STATISTICS}; got {stat!r}")
    if warmup < 0:
        raise ValueError(f"warmup must be >= 0; got {warmup}")
    if not 1 <= min_calls <= max_calls:
        raise ValueError("need 1 <= min_calls <= max_calls; got "
                         f"min_calls={min_calls}, max_calls={max_calls}")


def _clock(fn: Callable, sync: Callable | None) -> float:
    t0 = time.perf_counter()
    fn()
    if sync is not None:
        sync()
    return time.perf_counter() - t0


def measure(fn: Callable, *, stat: str = "median", warmup: int = 1, min_calls: int = 3,
            max_calls: int = 100, budget_s: float = 1.0, sync: Callable | None = None,
            ) -> Measurement:
    """Time ``fn()``: warm-up calls first, then repeats within a budget.

    Parameters
    ----------
    fn : callable
        One call is one unit of work (a forward pass, a training step).
    stat : {"median", "min"}
        What :attr:`Measurement.value` reports. ``median`` for tables of
        steady-state time; ``min`` where a shared, noisy machine makes the
        least-disturbed call the better estimate (race tables).
    warmup : int
        Untimed calls before timing (the first is kept as ``first_s``).
    min_calls, max_calls : int
        Timed calls: at least ``min_calls``; more while ``budget_s`` lasts,
        at most ``max_calls``.
    budget_s : float
        Seconds of timed calls to aim for.
    sync : callable, optional
        Called after each ``fn()`` inside the timed region (a GPU's
        synchronisation), so asynchronous work is counted.

    Returns
    -------
    Measurement
    """
    _check_args(stat, warmup, min_calls, max_calls)
    first = None
    for k in range(warmup):
        dt = _clock(fn, sync)
        if k == 0:
            first = dt
    samples = []
    end = time.perf_counter() + budget_s
    while len(samples) < max_calls and (len(samples) < min_calls
                                        or time.perf_counter() < end):
        samples.append(_clock(fn, sync))
    return Measurement(tuple(samples), first, stat)


def measure_interleaved(fns: dict[str, Callable], *, stat: str = "min", warmup: int = 1,
                        min_calls: int = 3, max_calls: int = 30, budget_s: float = 1.5,
                        settle_s: float = 0.0, sync: Callable | None = None,
                        ) -> dict[str, Measurement]:
    """Time several functions side by side, one call of each in turn.

    Interleaving spreads the machine's slow moments over every contender
    instead of landing them on one (this machine is shared and noisy). The
    number of rounds (``min_calls`` to ``max_calls``) is chosen from the last
    warm-up round to fit ``budget_s``: with ``warmup >= 2`` the estimate no
    longer includes the first call's JIT compile.

    ``settle_s`` pauses before each timed call: OpenMP pools (Numba's,
    PyTorch's) spin-wait a few milliseconds after a parallel region, and
    without a pause the pool of the previous contender steals the cores of
    the next one.

    Returns
    -------
    dict name -> Measurement
    """
    _check_args(stat, warmup, min_calls, max_calls)
    first: dict[str, float | None] = {n: None for n in fns}
    last: dict[str, float] = {}
    for k in range(warmup):
        for n, fn in fns.items():
            if settle_s:
                time.sleep(settle_s)
            last[n] = _clock(fn, sync)
            if k == 0:
                first[n] = last[n]
    per_round = sum(last.values()) or 1e-9
    rounds = int(min(max_calls, max(min_calls, budget_s / per_round)))
    samples: dict[str, list[float]] = {n: [] for n in fns}
    for _ in range(rounds):
        for n, fn in fns.items():
            if settle_s:
                time.sleep(settle_s)
            samples[n].append(_clock(fn, sync))
    return {n: Measurement(tuple(samples[n]), first[n], stat, interleaved=True) for n in fns}


# --------------------------------------------------------- sgemm yardstick

_SGEMM: dict = {}


def sgemm_gflops(n: int = 1024, repeat: int = 5) -> float:
    """This process's float32 GEMM rate now, GFLOP/s: the efficiency yardstick.

    Best of ``repeat`` ``numpy.matmul`` of two seeded ``n x n`` float32
    matrices at the thread count currently set (cached per ``n`` and thread
    count). Efficiency figures divide a kernel's GFLOP/s by this.
    """
    from .threads import get_num_threads

    key = (n, get_num_threads())
    if key not in _SGEMM:
        rng = np.random.default_rng(1234)
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        c = np.empty((n, n), dtype=np.float32)
        m = measure(lambda: np.matmul(a, b, out=c), stat="min", warmup=1,
                    min_calls=repeat, max_calls=repeat, budget_s=0.0)
        _SGEMM[key] = 2.0 * n ** 3 / m.value / 1e9
    return _SGEMM[key]


# ------------------------------------------------------------- tolerances

class Tolerance(NamedTuple):
    """Allowed error against the float64 oracle: ``|got - ref| <= atol + rtol*|ref|``."""

    atol: float
    rtol: float


#: The one tolerance table: (what, dtype name) -> Tolerance.
#: forward: a few hundred float32 ulps of values in (-1, 1) after many steps;
#: float64 is exact to rounding. gradient: float32 sums over T*B terms;
#: float64 to 1e-9 relative. long: T = 2,000-10,000 float32 sequences.
TOLERANCES: dict[tuple[str, str], Tolerance] = {
    ("forward", "float32"): Tolerance(2e-5, 0.0),
    ("forward", "float64"): Tolerance(1e-12, 0.0),
    ("gradient", "float32"): Tolerance(2e-4, 2e-4),
    ("gradient", "float64"): Tolerance(1e-12, 1e-9),
    ("long", "float32"): Tolerance(1e-4, 0.0),
    ("long", "float64"): Tolerance(1e-10, 0.0),
}


def tolerance(dtype, what: str = "forward") -> Tolerance:
    """The :class:`Tolerance` for results of ``dtype`` (``what``: forward, gradient, long)."""
    key = (what, np.dtype(dtype).name)
    try:
        return TOLERANCES[key]
    except KeyError:
        raise ValueError(f"no tolerance for {key}; known: {sorted(TOLERANCES)}") from None


def max_abs_err(got, ref) -> float:
    """max |got - ref| over pairs of arrays (None pairs skipped), in float64.

    A NaN anywhere makes the result NaN (never a silently small error); the
    arrays of a pair must have the same shape (no broadcasting).
    """
    err = 0.0
    for g, r in zip(got, ref, strict=True):
        if g is None and r is None:
            continue
        g, r = np.asarray(g, np.float64), np.asarray(r, np.float64)
        if g.shape != r.shape:
            raise ValueError(f"max_abs_err: shapes differ: {g.shape} vs {r.shape}")
        e = float(np.max(np.abs(g - r))) if g.size else 0.0
        if e != e:
            return float("nan")
        err = max(err, e)
    return err


# ------------------------------------------------------------- device runs

@dataclass
class DeviceRun:
    """A forward pass on device-resident inputs, for timing GPU backends.

    Subclasses (the CUDA runners, torch-cuda) implement :meth:`call`
    (launch, asynchronous), :meth:`sync` (wait for the device) and
    :meth:`result` (``(outputs, h, c)`` copied to the host). Time it as
    ``measure(run.call, sync=run.sync)`` so every timed call includes the
    synchronisation.
    """

    name: str = "device"
    extra: dict = field(default_factory=dict)

    def call(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def sync(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def result(self):  # pragma: no cover - interface
        raise NotImplementedError
