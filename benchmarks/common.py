"""Shared pieces of the asv suite and the benchmark scripts.

Measuring itself is the harness's (:mod:`lstm_numba.measure`): the problem
recipe, the timing function and the sgemm yardstick are imported from there,
never rewritten here. What is asv-specific lives here: the profile, the
parameter grids' helpers, the per-process problem cache, the skips.

The profile is read in one place: ``LSTM_NUMBA_PROFILE=fast`` (the default,
the whole suite in about 20 minutes on a 2-core machine), ``full``
(DeepBench-sized problems, long sequences) or ``smoke`` (tests only).
"""
from __future__ import annotations

import os

import numpy as np

import lstm_numba as ln
from lstm_numba.measure import measure
# Re-exported for the files that still import them from here (bench_gpu, gpu_check);
# new code imports them from lstm_numba.measure.
from lstm_numba.measure import make_problem, sgemm_gflops  # noqa: F401

PROFILE_ENV = "LSTM_NUMBA_PROFILE"
# "smoke" is not a user profile: the tests and the committed report fixture
# use it to run every benchmark once on tiny sizes in a few seconds.
PROFILES = ("fast", "full", "smoke")


def profile() -> str:
    """The active profile name; ValueError for an unknown value."""
    p = os.environ.get(PROFILE_ENV, "fast").strip().lower() or "fast"
    if p not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={p!r}; expected one of {PROFILES}")
    return p


def is_full() -> bool:
    return profile() == "full"


def cpu_backends(*kinds: str) -> list[str]:
    """CPU backends in registry order (the order of every table and legend),
    only those of the given kinds (oracle, baseline, project, peer) if any are named."""
    from lstm_numba.backends import REGISTRY

    return [n for n, b in REGISTRY.items() if b.device == "cpu" and (not kinds or b.kind in kinds)]


def require_backend(name: str) -> None:
    """Raise NotImplementedError (asv's "skip this parameter") if unavailable."""
    from lstm_numba.backends import get

    reason = get(name).unavailable()
    if reason:
        raise NotImplementedError(f"{name}: {reason}")


# --------------------------------------------------------------------------
# Harness helpers shared by the bench_*.py files.
# --------------------------------------------------------------------------


def pick(fast, full, smoke=None):
    """The value for the active profile (``smoke`` falls back to ``fast``)."""
    p = profile()
    if p == "full":
        return full
    if p == "smoke" and smoke is not None:
        return smoke
    return fast


def max_threads() -> int:
    """Cores this process may use (the thread-count ceiling of every pool)."""
    from lstm_numba.threads import max_threads as _m

    return _m()


# Thread count of the size-sweep benchmarks (seq_len, batch_hidden, memory).
# fast: one thread, so that a shared 2-core machine's other load does not
# turn a pool's barrier spin-waits into 10-100x outliers; bench_threads
# measures scaling. full: all cores, what a user gets by default.
SUITE_THREADS = pick(fast=1, full=max_threads(), smoke=1)


def suite_backends(backends):
    """``backends`` less ``numba-parallel`` when the sweeps run on one thread."""
    return [b for b in backends if SUITE_THREADS > 1 or b != "numba-parallel"]


class Timing:
    """asv timing attributes per profile, inherited by every benchmark class.

    Each parameter combination runs in its own process (launch method
    ``spawn``), and asv re-runs ``setup`` before each sample, so the classes
    cache their problem per process and compile/warm up only once. A warm-up
    call is made in ``setup``, hence ``warmup_time = 0``; one call per sample
    (``number = 1``) because the calls are milliseconds to seconds long.
    """

    number = 1
    warmup_time = 0.0
    sample_time = 0.01
    rounds = pick(fast=1, full=2, smoke=1)
    # (min samples, max samples, seconds after which to stop once min is met)
    repeat = pick(fast=(2, 10, 0.5), full=(3, 20, 10.0), smoke=(1, 2, 0.05))
    min_run_count = pick(fast=2, full=3, smoke=1)
    timeout = pick(fast=180.0, full=3600.0, smoke=120.0)


# numpy-seed (the notes' per-sample loop) costs ~30-60 us per sample per step;
# beyond this many sample-steps (T*B) a call takes longer than a few seconds.
SEED_CAP = pick(fast=4096, full=65536, smoke=256)


def require_seed_cap(backend: str, seq_len: int, batch: int) -> None:
    """NotImplementedError (asv's skip) when ``numpy-seed`` would be too slow."""
    if backend == "numpy-seed" and seq_len * batch > SEED_CAP:
        raise NotImplementedError(
            f"numpy-seed capped at T*B <= {SEED_CAP} in the {profile()} profile "
            f"(asked T*B = {seq_len * batch})")


def reads_cache(setup_cache) -> type:
    """A base class for benchmark classes whose benchmarks read ``setup_cache``'s result.

    asv runs a ``setup_cache`` once per function (it keys the result by the
    function's file and line) and pickles the result to every parameter
    process, so all the classes built on one function share one run, and each
    of their benchmarks costs a process start only. The classes take the
    function's ``timeout`` attribute as theirs: the cache is what takes time.
    Name the base with a leading underscore (``_Limits = reads_cache(...)``)
    so that asv does not list it.
    """
    return type(f"_Reads{setup_cache.__name__}", (), {
        "__doc__": f"Benchmarks reading the result of ``{setup_cache.__name__}``.",
        "setup_cache": setup_cache, "timeout": setup_cache.timeout})


def set_threads(n: int) -> int:
    """Set BLAS, Numba and PyTorch pools to ``n`` threads; returns ``n``."""
    n = min(int(n), max_threads())
    ln.set_num_threads(n)
    return n


def make_runner(backend: str, cell: str, weights):
    """A ``run(x, h0, c0) -> (outputs, h, c)`` callable with set-up done once
    (the registry's ``Backend.runner``: torch module built once, weights uploaded once)."""
    from lstm_numba.backends import get

    return get(backend).runner(cell, weights)


def best_time(fn, budget: float | None = None, min_calls: int = 3) -> float:
    """Seconds of ``fn()``: the harness's ``measure``, minimum of >= ``min_calls`` calls.

    For the ``track_`` rate benchmarks, which time inside the process that also
    measured the sgemm rate (``setup`` has warmed up, so no warm-up call here);
    asv's own ``time_`` benchmarks report the median of their samples.
    """
    budget = pick(fast=0.3, full=3.0, smoke=0.0) if budget is None else budget
    return measure(fn, stat="min", warmup=0, min_calls=min_calls, max_calls=100,
                   budget_s=budget).value


class Problem:
    """One seeded problem and a warmed-up runner, cached per process.

    asv re-runs ``setup`` before every sample; rebuilding inputs and torch
    modules each time would dominate short benchmarks, so the last problem
    is kept and reused while the key matches.
    """

    _cache: dict = {}

    @classmethod
    def get(cls, backend, cell, seq_len, batch, hidden, input_size=None,
            dtype=np.float32, threads=None, seed=0):
        """``(run, args)``: call ``run(*args)`` to do one forward pass."""
        require_backend(backend)
        require_seed_cap(backend, seq_len, batch)
        threads = set_threads(max_threads() if threads is None else threads)
        key = (backend, cell, seq_len, batch, hidden, input_size, np.dtype(dtype).str,
               threads, seed)
        hit = cls._cache.get("key") == key
        if not hit:
            cls._cache.clear()
            x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, input_size, dtype, seed)
            run = make_runner(backend, cell, w)
            args = (x, h0, c0)
            run(*args)  # compile (or load the JIT cache) and warm up, untimed
            cls._cache.update(key=key, run=run, args=args)
        return cls._cache["run"], cls._cache["args"]

    @classmethod
    def forget(cls) -> None:
        """Drop the cached problem and runner (frees their memory)."""
        cls._cache.clear()


def flops(cell, seq_len, batch, hidden, input_size=None):
    """DeepBench FLOPs of one forward pass (``ln.flops``), I defaulting to H."""
    return ln.flops(cell, seq_len, batch, hidden if input_size is None else input_size, hidden)


class _Forward(Timing):
    """Base of the size sweeps: one cached problem per parameter set, one forward pass.

    ``setup`` reads cell, backend, seq_len, batch, hidden and threads by name from
    the subclass's ``param_names``, whatever their order. The leading underscore
    keeps asv from listing this base as a benchmark of every module importing it.
    """

    def setup(self, *params):
        p = dict(zip(self.param_names, params))
        self.run, self.args = Problem.get(p["backend"], p["cell"], p["seq_len"], p["batch"],
                                          p["hidden"], threads=p["threads"])
        self.flops = flops(p["cell"], p["seq_len"], p["batch"], p["hidden"])
        self.sample_steps = p["seq_len"] * p["batch"]

    def _seconds(self) -> float:
        return best_time(lambda: self.run(*self.args))


class _ForwardTime(_Forward):
    def time_forward(self, *params):
        """Seconds for one forward pass over T steps."""
        self.run(*self.args)


class _ForwardRates(_Forward):
    """GFLOP/s and the fraction of sgemm, each from the harness's minimum of >= 3 calls,
    timed in the process that measured its sgemm rate at the same thread count."""

    def track_gflops(self, *params):
        """GFLOP/s (best of >= 3 calls), DeepBench's count 2*B*G*H*(I+H) per step."""
        return self.flops / self._seconds() / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_efficiency(self, *params):
        """GFLOP/s over this process's 1024^3 sgemm GFLOP/s (same thread count)."""
        peak = sgemm_gflops()
        return self.flops / self._seconds() / 1e9 / peak

    track_efficiency.unit = "fraction of sgemm"
