"""Question: what does a recurrent layer cost as the sequence grows?

Each step depends on the previous one, so time grows linearly in T whatever
the hardware; what differs between backends is the cost of one step. The
``time_`` benchmark gives the forward time (the report divides it by T: time
per step). The ``track_`` benchmarks give throughput, GFLOP/s and the fraction
of the machine's sgemm rate, measured in one process with its own sgemm.

Sizes: fast H=256, B=8, T in {16, 128, 1024}, one thread; full (DeepBench-like)
H=512, B=16, T from 16 to 8192, all cores. B, H and the thread count are
parameters with one value each, so the results say what they measured.
"""
import lstm_numba as ln

from .common import SUITE_THREADS, _ForwardRates, _ForwardTime, cpu_backends, pick, suite_backends

BACKENDS = suite_backends(cpu_backends())
HIDDEN = pick(fast=256, full=512, smoke=16)
BATCH = pick(fast=8, full=16, smoke=2)
_NAMES = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]


class SeqLen(_ForwardTime):
    """Forward time of one layer vs sequence length T (float32)."""

    params = [list(ln.CELLS), BACKENDS,
              pick(fast=[16, 128, 1024], full=[16, 64, 256, 1024, 4096, 8192], smoke=[4, 16]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = _NAMES


class SeqLenRates(_ForwardRates):
    """Throughput, GFLOP/s and sgemm efficiency vs T, measured in one process.

    Each value is from the best of >= 3 calls, timed in the process that
    measured its sgemm rate at the same thread count.
    """

    params = [list(ln.CELLS), BACKENDS,
              pick(fast=[128, 1024], full=[64, 1024, 8192], smoke=[16]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = _NAMES

    def track_throughput(self, *params):
        """Timesteps x batch processed per second (best of >= 3 calls)."""
        return self.sample_steps / self._seconds()

    track_throughput.unit = "steps*batch/s"
