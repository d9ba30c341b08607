"""Question: do the Numba kernels run at PyTorch's speed (issue 4's race)?

The asv twin of ``benchmarks/race.py``: for each (cell, H, B, T, threads),
``numba``, ``numba-parallel`` and ``torch`` are run side by side in one
process (``race.race_cell``: the harness's ``measure_interleaved``, minimum
of the interleaved calls kept, compile in ``setup``), and the
``track_`` benchmarks record the time ratio best-Numba/torch, the GFLOP/s of
both, and the best Numba's fraction of the same process's sgemm rate.
Targets (float32): ratio <= 1.0 for the LSTM, <= 0.67 for GRU and RNN; >= 90%
of sgemm at B >= 16, H >= 256.

Sizes: fast: H=256, B in {1, 64}, T=128, 1 and all threads; full: issue 4's
grid, H in {128, 256, 512} x B in {1, 16, 64} x T in {128, 1024}.
"""
import lstm_numba as ln

from lstm_numba.measure import sgemm_gflops

from .common import Timing, flops, max_threads, pick, require_backend, set_threads
from .race import CONTENDERS, NUMBA, PEERS, race_cell

HIDDEN = pick(fast=[256], full=[128, 256, 512], smoke=[16])
BATCH = pick(fast=[1, 64], full=[1, 16, 64], smoke=[1, 4])
SEQ = pick(fast=[128], full=[128, 1024], smoke=[8])
THREADS = sorted({1, max_threads()}) if pick(fast=True, full=True, smoke=False) else [1]
BUDGET = pick(fast=0.5, full=2.0, smoke=0.0)


class Race(Timing):
    """Best Numba backend vs torch, one interleaved measurement per parameter set."""

    params = [list(ln.CELLS), HIDDEN, BATCH, SEQ, THREADS]
    param_names = ["cell", "hidden", "batch", "seq_len", "threads"]
    _done: dict = {}

    def setup(self, cell, hidden, batch, seq_len, threads):
        for name in CONTENDERS:
            require_backend(name)
        key = (cell, hidden, batch, seq_len, threads)
        if key not in self._done:
            set_threads(threads)
            gemm = sgemm_gflops()
            res = race_cell(cell, hidden, batch, seq_len, budget_s=BUDGET, min_rep=2,
                            settle_s=0.03 if threads > 1 else 0.0)
            best = {n: m.value for n, m in res.items()}
            self._done.clear()
            self._done[key] = (best, gemm, flops(cell, seq_len, batch, hidden))
        self.best, self.gemm, self.flops = self._done[key]
        self.numba = min(self.best[n] for n in NUMBA)
        self.peer = self.best[PEERS[0]]

    def track_ratio_to_torch(self, *args):
        """Time of the better Numba backend over torch's (lower is better)."""
        return self.numba / self.peer

    track_ratio_to_torch.unit = "ratio"

    def track_numba_gflops(self, *args):
        """GFLOP/s of the better of numba and numba-parallel."""
        return self.flops / self.numba / 1e9

    track_numba_gflops.unit = "GFLOP/s"

    def track_torch_gflops(self, *args):
        """GFLOP/s of torch.nn.RNN/LSTM/GRU."""
        return self.flops / self.peer / 1e9

    track_torch_gflops.unit = "GFLOP/s"

    def track_numba_fraction_of_sgemm(self, *args):
        """Best Numba GFLOP/s over this process's sgemm 1024^3 GFLOP/s."""
        return self.flops / self.numba / 1e9 / self.gemm

    track_numba_fraction_of_sgemm.unit = "fraction"
