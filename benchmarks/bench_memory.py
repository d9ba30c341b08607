"""Question: how does memory grow with the sequence length?

The outputs alone are T*B*H values, and every backend that hoists the input
projection out of the time loop (all but ``numpy-seed``) also holds
T*B*G*H of them: memory is linear in T even though the state is only B*H.

- ``peakmem_forward`` is asv's whole-process peak RSS after setup and one
  forward call; ``peakmem_baseline`` is the same process after the same
  setup (inputs built, backend compiled and warmed up, torch imported) but no
  further call. Their difference is what the forward pass added at its peak.
  Caveat: the warm-up call in setup already touched the same sizes, and the
  allocator may keep those pages, so the difference can understate the peak;
  the ``track_`` figure below does not have that problem.
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

from .common import Problem, Timing, max_threads, pick

BACKENDS = ["numpy-seed", "numpy", "numba", "numba-parallel", "torch"]
HIDDEN = pick(fast=256, full=256, smoke=16)
BATCH = pick(fast=8, full=16, smoke=2)


class Memory(Timing):
    """Memory of one forward pass vs T (LSTM, float32)."""

    params = [["lstm"], BACKENDS,
              pick(fast=[64, 512, 4096], full=[64, 512, 4096, 8192], smoke=[4, 32]),
              [max_threads()]]
    param_names = ["cell", "backend", "seq_len", "threads"]

    def setup(self, cell, backend, seq_len, threads):
        self.run, self.args = Problem.get(backend, cell, seq_len, BATCH, HIDDEN, threads=threads)

    def peakmem_forward(self, cell, backend, seq_len, threads):
        """Peak RSS of the process: setup plus one forward pass."""
        self.run(*self.args)

    def peakmem_baseline(self, cell, backend, seq_len, threads):
        """Peak RSS of the process after the same setup, without the timed call."""

class MemoryTraced(Timing):
    """Peak bytes NumPy allocates during one forward pass (tracemalloc)."""

    params = Memory.params
    param_names = Memory.param_names

    def setup(self, cell, backend, seq_len, threads):
        if backend == "torch":
            raise NotImplementedError("torch's allocator is not visible to tracemalloc")
        self.run, self.args = Problem.get(backend, cell, seq_len, BATCH, HIDDEN, threads=threads)

    def track_traced_bytes(self, cell, backend, seq_len, threads):
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
