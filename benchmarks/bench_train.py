"""Question: what does a training step (forward + backward through time) cost?

A user who asks what an LSTM costs usually means training: the forward pass
keeps a tape (what the backward needs) and the backward walks the sequence
in reverse, two products with ``w_hh`` per step plus products over all T
steps at once. Peers in the same classes: ``numba`` (and ``numba-parallel``
above one thread), ``torch`` autograd (module built once, as a torch user
has it) and the ``numpy`` oracle at small sizes.

- ``TrainSeqLen.time_train_step`` / ``TrainBatchHidden.time_train_step``:
  seconds of ``backward(forward(..., train=True), grad_outputs)`` vs T and
  vs (H, B). The report sets them beside the inference times of
  ``bench_seq_len`` (same H, B and T in each profile).
- ``TrainRates.track_gflops``/``track_efficiency``: 3x the forward's
  DeepBench FLOPs over the best of >= 3 steps, and that over this process's
  sgemm rate (``lstm_numba.measure.sgemm_gflops``).
- ``TrainMemory.peakmem_train_step`` minus ``peakmem_baseline``: what a step
  adds to the process's peak RSS vs T, for numba with and without
  ``checkpoint="sqrt"`` and for torch (setup warms up on 2 steps only).
- ``TrainTape.track_tape_bytes_per_step``: ``fw.tape.nbytes / T``, bytes
  kept for the backward per time step (torch: its saved tensors, measured
  with ``saved_tensors_hooks``).

Sizes: fast LSTM only, H=256, B=8, one thread (T in {16, 128, 1024} for
time, {512, 4096} for memory; ~3 minutes, each parameter set being its own
process); full: all cells, DeepBench-like sizes, all cores.
"""
import numpy as np

import lstm_numba as ln
from lstm_numba.measure import make_problem, sgemm_gflops
from lstm_numba.training import train_runner

from .common import (SUITE_THREADS, Timing, best_time, pick, require_backend, set_threads,
                     suite_backends)

BACKENDS = suite_backends(["numpy", "numba", "numba-parallel", "torch"])
FAST_BACKENDS = [b for b in BACKENDS if b != "numpy"]
HIDDEN = pick(fast=256, full=512, smoke=16)
BATCH = pick(fast=8, full=16, smoke=2)
# The numpy oracle is readable, not fast (~1.5 ms per step at H=256 B=8):
# beyond this many sample-steps (T*B) it is skipped.
NUMPY_CAP = pick(fast=1024, full=8192, smoke=64)


def require_trainer(backend, seq_len=0, batch=0, checkpoint=None):
    """NotImplementedError (asv's skip) when ``backend`` cannot run this step here."""
    from lstm_numba import training
    from lstm_numba.backends import BackendUnavailable, get

    require_backend(backend)
    try:
        training._train_module(get(backend))
    except BackendUnavailable as e:            # e.g. lstm_numba.cpu_train not there yet
        raise NotImplementedError(f"{backend}: {e}") from None
    if backend == "numpy" and seq_len * batch > NUMPY_CAP:
        raise NotImplementedError(f"numpy capped at T*B <= {NUMPY_CAP} in the "
                                  f"training benchmarks (asked {seq_len * batch})")


class Step:
    """One seeded training problem and a warmed-up step, cached per process."""

    _cache: dict = {}

    @classmethod
    def get(cls, backend, cell, seq_len, batch, hidden, threads, checkpoint=None):
        """``step()``: one forward + backward on the cached problem."""
        require_trainer(backend, seq_len, batch, checkpoint)
        threads = set_threads(threads)
        key = (backend, cell, seq_len, batch, hidden, threads, checkpoint)
        if cls._cache.get("key") != key:
            cls._cache.clear()
            x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden)
            go = np.random.default_rng(7).standard_normal(
                (seq_len, batch, hidden)).astype(np.float32)
            run = train_runner(backend, cell, w, checkpoint=checkpoint)

            def step():
                return run(x, h0, c0, go)

            step()  # compile (or load the JIT cache) and warm up, untimed
            cls._cache.update(key=key, step=step)
        return cls._cache["step"]


def _checkpoint(name):
    return None if name == "none" else name


class _TrainStep(Timing):
    """Base of the step sweeps: one cached, warmed-up training step per parameter set.

    ``setup`` reads cell, backend, seq_len, batch, hidden and threads by name from
    the subclass's ``param_names``, whatever their order (as ``common._Forward``
    does for the forward pass). The leading underscore keeps asv from listing
    this base as a benchmark.
    """

    def setup(self, *params):
        p = dict(zip(self.param_names, params))
        self.step = Step.get(p["backend"], p["cell"], p["seq_len"], p["batch"], p["hidden"],
                             p["threads"])
        self.flops = 3 * ln.flops(p["cell"], p["seq_len"], p["batch"], p["hidden"], p["hidden"])


class _TrainStepTime(_TrainStep):
    """The step sweeps' one timed benchmark (asv keeps the median of its samples)."""

    def time_train_step(self, *params):
        """Seconds for one forward (keeping the tape) and one backward over T steps."""
        self.step()


class TrainSeqLen(_TrainStepTime):
    """Training-step time (forward + backward) vs sequence length T (float32)."""

    params = [pick(fast=["lstm"], full=list(ln.CELLS), smoke=["lstm", "gru"]), BACKENDS,
              pick(fast=[16, 128, 1024], full=[16, 64, 256, 1024, 4096], smoke=[4, 16]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]


class TrainBatchHidden(_TrainStepTime):
    """Training-step time over (hidden, batch) at fixed T (float32)."""

    params = [pick(fast=["lstm"], full=list(ln.CELLS), smoke=["lstm"]), FAST_BACKENDS,
              pick(fast=[64, 256], full=[256, 512, 1024], smoke=[8, 16]),
              pick(fast=[1, 16], full=[1, 4, 16, 64], smoke=[1, 4]),
              [pick(fast=64, full=128, smoke=8)], [SUITE_THREADS]]
    param_names = ["cell", "backend", "hidden", "batch", "seq_len", "threads"]


class TrainRates(_TrainStep):
    """GFLOP/s of a training step (3x the forward's FLOPs) and its fraction of sgemm."""

    params = [pick(fast=["lstm"], full=list(ln.CELLS), smoke=["lstm"]), FAST_BACKENDS,
              [pick(fast=128, full=1024, smoke=8)], [pick(fast=16, full=64, smoke=2)],
              [HIDDEN], [SUITE_THREADS]]
    param_names = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]

    def track_gflops(self, cell, backend, seq_len, batch, hidden, threads):
        """3 x DeepBench FLOPs of the forward over the best of >= 3 steps, GFLOP/s."""
        return self.flops / best_time(self.step) / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_efficiency(self, cell, backend, seq_len, batch, hidden, threads):
        """GFLOP/s over this process's 1024^3 sgemm rate at the same thread count."""
        return self.flops / best_time(self.step) / 1e9 / sgemm_gflops()

    track_efficiency.unit = "fraction of sgemm"


class TrainMemory(Timing):
    """Peak RSS a training step adds vs T (subtract ``peakmem_baseline``), LSTM float32."""

    params = [["lstm"], [b for b in FAST_BACKENDS if b != "numba-parallel"], ["none", "sqrt"],
              pick(fast=[512, 4096], full=[64, 512, 4096, 8192], smoke=[4, 32]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = ["cell", "backend", "checkpoint", "seq_len", "batch", "hidden", "threads"]

    def setup(self, cell, backend, checkpoint, seq_len, batch, hidden, threads):
        """Inputs at full size, drawn step by step in float32; warm-up on 2 steps."""
        ck = _checkpoint(checkpoint)
        require_trainer(backend, seq_len, batch, ck)
        set_threads(threads)
        _, w, h0, c0 = make_problem(cell, 1, batch, hidden)
        rng = np.random.default_rng(1)
        x = np.empty((seq_len, batch, hidden), dtype=np.float32)
        go = np.empty_like(x)
        for t in range(seq_len):
            x[t] = rng.standard_normal((batch, hidden), dtype=np.float32)
            go[t] = rng.standard_normal((batch, hidden), dtype=np.float32)
        self.run = train_runner(backend, cell, w, checkpoint=ck)
        self.run(x[:2].copy(), h0, c0, go[:2].copy())
        self.args = (x, h0, c0, go)

    def peakmem_train_step(self, cell, backend, checkpoint, seq_len, batch, hidden, threads):
        """Peak RSS of the process: setup plus one training step."""
        self.run(*self.args)

    def peakmem_baseline(self, cell, backend, checkpoint, seq_len, batch, hidden, threads):
        """Peak RSS of the process after the same setup, without the step."""


class TrainTape(Timing):
    """Bytes the training forward keeps for the backward, per time step."""

    params = [pick(fast=["lstm"], full=list(ln.CELLS), smoke=["lstm", "rnn"]),
              [b for b in BACKENDS if b != "numba-parallel"], ["none", "sqrt"],
              [pick(fast=128, full=1024, smoke=16)], [pick(fast=16, full=16, smoke=2)],
              [HIDDEN]]
    param_names = ["cell", "backend", "checkpoint", "seq_len", "batch", "hidden"]

    def setup(self, cell, backend, checkpoint, seq_len, batch, hidden):
        ck = _checkpoint(checkpoint)
        require_trainer(backend, seq_len if backend != "numpy" else 0, batch, ck)
        self.problem = make_problem(cell, seq_len, batch, hidden)
        self.checkpoint = ck

    def track_tape_bytes_per_step(self, cell, backend, checkpoint, seq_len, batch, hidden):
        """``fw.tape.nbytes / T`` of ``forward(..., train=True, checkpoint=...)``."""
        x, w, h0, c0 = self.problem
        fw = ln.forward(cell, x, w, h0, c0, backend=backend, train=True,
                        checkpoint=self.checkpoint)
        return fw.tape.nbytes / seq_len

    track_tape_bytes_per_step.unit = "bytes"
