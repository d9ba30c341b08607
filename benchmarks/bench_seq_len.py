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
from lstm_numba.measure import sgemm_gflops

from .common import SUITE_THREADS, Problem, Timing, best_time, flops, pick, suite_backends

BACKENDS = suite_backends(["numpy-seed", "numpy", "numba", "numba-parallel", "torch"])
HIDDEN = pick(fast=256, full=512, smoke=16)
BATCH = pick(fast=8, full=16, smoke=2)
_NAMES = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]


class SeqLen(Timing):
    """Forward time of one layer vs sequence length T (float32)."""

    params = [list(ln.CELLS), BACKENDS,
              pick(fast=[16, 128, 1024], full=[16, 64, 256, 1024, 4096, 8192], smoke=[4, 16]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = _NAMES

    def setup(self, cell, backend, seq_len, batch, hidden, threads):
        self.run, self.args = Problem.get(backend, cell, seq_len, batch, hidden, threads=threads)

    def time_forward(self, cell, backend, seq_len, batch, hidden, threads):
        """Seconds for one forward pass over T steps."""
        self.run(*self.args)


class SeqLenRates(Timing):
    """Throughput, GFLOP/s and sgemm efficiency vs T, measured in one process.

    Each value is from the best of >= 3 calls, timed in the process that
    measured its sgemm rate at the same thread count.
    """

    params = [list(ln.CELLS), BACKENDS,
              pick(fast=[128, 1024], full=[64, 1024, 8192], smoke=[16]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = _NAMES

    def setup(self, cell, backend, seq_len, batch, hidden, threads):
        self.run, self.args = Problem.get(backend, cell, seq_len, batch, hidden, threads=threads)
        self.flops = flops(cell, seq_len, batch, hidden)

    def _best(self):
        return best_time(lambda: self.run(*self.args))

    def track_throughput(self, cell, backend, seq_len, batch, hidden, threads):
        """Timesteps x batch processed per second (best of >= 3 calls)."""
        return seq_len * batch / self._best()

    track_throughput.unit = "steps*batch/s"

    def track_gflops(self, cell, backend, seq_len, batch, hidden, threads):
        """GFLOP/s, DeepBench's count 2*B*G*H*(I+H) per step."""
        return self.flops / self._best() / 1e9

    track_gflops.unit = "GFLOP/s"

    def track_efficiency(self, cell, backend, seq_len, batch, hidden, threads):
        """GFLOP/s over this process's 1024^3 sgemm GFLOP/s (same thread count)."""
        peak = sgemm_gflops()
        return self.flops / self._best() / 1e9 / peak

    track_efficiency.unit = "fraction of sgemm"
