"""Question: where is batching nearly free, and where does it stop being free?

At batch 1 a step is a matrix-vector product: the weights are streamed from
memory for very few FLOPs (memory-bound), so adding samples costs almost
nothing per step. As B grows the step becomes a matrix-matrix product and
time grows with B once the arithmetic units are busy (compute-bound). The
report plots GFLOP/s and the fraction of sgemm vs batch (a roofline-style
view) and, from the ``time_`` results, the speedup over ``numpy-seed`` and
the time ratio to ``torch`` as heatmaps over (hidden, batch).

Sizes: fast LSTM, H in {64, 256}, B in {1, 4, 16, 64}, T=64, one thread;
full: all three cells, DeepBench's H in {256, 512, 1024}, B in {1, 4, 16, 64},
T=128, all cores.
"""
import lstm_numba as ln
from lstm_numba.measure import sgemm_gflops

from .common import (SUITE_THREADS, _ForwardRates, _ForwardTime, cpu_backends, max_threads, pick,
                     set_threads, suite_backends)

BACKENDS = suite_backends(cpu_backends())
SEQ_LEN = pick(fast=64, full=128, smoke=8)

_GRID = [pick(fast=["lstm"], full=list(ln.CELLS), smoke=["lstm"]),
         BACKENDS,
         pick(fast=[64, 256], full=[256, 512, 1024], smoke=[8, 16]),
         pick(fast=[1, 4, 16, 64], full=[1, 4, 16, 64], smoke=[1, 4]),
         [SEQ_LEN], [SUITE_THREADS]]
_NAMES = ["cell", "backend", "hidden", "batch", "seq_len", "threads"]


class BatchHidden(_ForwardTime):
    """Forward time over (hidden, batch) at fixed T (float32)."""

    params = _GRID
    param_names = _NAMES


class BatchHiddenRates(_ForwardRates):
    """GFLOP/s and efficiency vs sgemm over (hidden, batch), one process each.

    numpy-seed is left out here (its speedup is in the heatmap from the times).
    """

    params = [_GRID[0], [b for b in BACKENDS if b != "numpy-seed"]] + _GRID[2:]
    param_names = _NAMES


class Sgemm:
    """The machine's yardstick: float32 1024^3 matmul GFLOP/s (best of 5)."""

    params = [sorted({1, SUITE_THREADS, max_threads()})]
    param_names = ["threads"]

    def setup(self, threads):
        set_threads(threads)

    def track_sgemm_gflops(self, threads):
        """numpy.matmul of two 1024x1024 float32 matrices, GFLOP/s."""
        return sgemm_gflops()

    track_sgemm_gflops.unit = "GFLOP/s"
