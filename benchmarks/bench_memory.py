"""Question: how does memory grow with the sequence length?

The outputs alone are T*B*H values, and every backend that hoists the input
projection out of the time loop (all but ``numpy-seed``) also holds
T*B*G*H of them: memory is linear in T even though the state is only B*H.

- ``peakmem_forward`` is asv's peak RSS of the whole process (a lifetime
  maximum) after setup and one forward call; ``peakmem_baseline`` is the same
  process after the same setup (inputs built, torch imported, kernels compiled
  and warmed up on a 2-step slice of the input, so setup never reaches the
  full-size peak) but no call. Their difference is what the forward pass
  added at its peak: outputs, projections and temporaries.
- ``track_traced_bytes`` is the peak of allocations traced by ``tracemalloc``
  during one forward call: NumPy reports its array buffers to tracemalloc,
  so this is exact for ``numpy``, ``numpy-seed`` and for the NumPy arrays
  the Numba backends allocate in Python; allocations made inside compiled
  Numba code (NRT) and by PyTorch's allocator are invisible to it, so torch
  is skipped there (its peak RSS is still measured above).
  For scale: the (T, B, H) float32 outputs are 4*T*B*H bytes and a hoisted
  input projection 4*T*B*G*H more.

Sizes: LSTM, H=256, B=8, T in {64, 512, 4096} (fast) up to 8192 (full).
"""
import tracemalloc

from lstm_numba.measure import make_problem

from .common import (SUITE_THREADS, Timing, cpu_backends, make_runner, pick, require_backend,
                     require_seed_cap, set_threads, suite_backends)

BACKENDS = suite_backends(cpu_backends())
HIDDEN = pick(fast=256, full=256, smoke=16)
BATCH = pick(fast=8, full=16, smoke=2)


def _setup(bench, cell, backend, seq_len, batch, hidden, threads):
    """Inputs at full size; compile and warm up on the first 2 steps only.

    ``make_problem`` draws the input step by step into float32, so setup never
    holds a full-size float64 temporary (2x the input, which would raise the
    lifetime peak that both benchmarks start from).
    """
    require_backend(backend)
    require_seed_cap(backend, seq_len, batch)
    set_threads(threads)
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, seed=0)
    bench.run = make_runner(backend, cell, w)
    bench.run(x[:2].copy(), h0, c0)
    bench.args = (x, h0, c0)


class Memory(Timing):
    """Memory of one forward pass vs T (LSTM, float32)."""

    params = [["lstm"], BACKENDS,
              pick(fast=[64, 512, 4096], full=[64, 512, 4096, 8192], smoke=[4, 32]),
              [BATCH], [HIDDEN], [SUITE_THREADS]]
    param_names = ["cell", "backend", "seq_len", "batch", "hidden", "threads"]

    def setup(self, cell, backend, seq_len, batch, hidden, threads):
        _setup(self, cell, backend, seq_len, batch, hidden, threads)

    def peakmem_forward(self, cell, backend, seq_len, batch, hidden, threads):
        """Peak RSS of the process: setup plus one forward pass."""
        self.run(*self.args)

    def peakmem_baseline(self, cell, backend, seq_len, batch, hidden, threads):
        """Peak RSS of the process after the same setup, without the timed call."""

class MemoryTraced(Timing):
    """Peak bytes NumPy allocates during one forward pass (tracemalloc)."""

    params = Memory.params
    param_names = Memory.param_names

    def setup(self, cell, backend, seq_len, batch, hidden, threads):
        if backend == "torch":
            raise NotImplementedError("torch's allocator is not visible to tracemalloc")
        _setup(self, cell, backend, seq_len, batch, hidden, threads)

    def track_traced_bytes(self, cell, backend, seq_len, batch, hidden, threads):
        """Peak bytes traced by tracemalloc in one call (NumPy-visible allocations)."""
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            self.run(*self.args)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak

    track_traced_bytes.unit = "bytes"
