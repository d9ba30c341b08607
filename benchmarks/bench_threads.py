"""Question: how much do more cores help, at batch 1 and at batch 64?

At batch 1 a step is one matrix-vector product plus the gates, a few
microseconds of work followed by a dependency on the result: the threads
must meet at a barrier every step, so the speedup is capped by the
sequential critical path. At batch 64 each step carries 64x the work per
barrier and threads can pay off. The thread count is a parameter and is set
explicitly in ``setup`` for all three pools (BLAS, Numba, PyTorch) at once;
``track_threads_in_use`` records what the backend's own pool reports.

Sizes: LSTM, H=256, T=64 (fast) / H=512, T=128 (full), float32.
"""
from .common import Problem, Timing, cpu_backends, is_full, max_threads, pick

BACKENDS = cpu_backends("project", "peer")
HIDDEN = pick(fast=256, full=512, smoke=16)
SEQ_LEN = pick(fast=64, full=128, smoke=8)


def _thread_counts():
    n = max_threads()
    counts = {1, n}
    if is_full():
        counts.update(k for k in (2, 4, 8, 16, 32, 64) if k < n)
    return sorted(counts)


class Threads(Timing):
    """Forward time vs thread count for batch 1 and batch 64."""

    params = [["lstm"], BACKENDS, pick(fast=[1, 64], full=[1, 64], smoke=[1, 4]),
              _thread_counts()]
    param_names = ["cell", "backend", "batch", "threads"]

    def setup(self, cell, backend, batch, threads):
        self.run, self.args = Problem.get(backend, cell, SEQ_LEN, batch, HIDDEN, threads=threads)

    def time_forward(self, cell, backend, batch, threads):
        """Seconds for one forward pass at the given thread count."""
        self.run(*self.args)

    def track_threads_in_use(self, cell, backend, batch, threads):
        """Threads the backend's pool reports after ``setup`` set them."""
        if backend == "torch":
            import torch

            return torch.get_num_threads()
        if backend.startswith("numba"):
            import numba

            return numba.get_num_threads()
        from threadpoolctl import threadpool_info

        blas = [p["num_threads"] for p in threadpool_info() if p.get("user_api") == "blas"]
        return max(blas) if blas else 1

    track_threads_in_use.unit = "threads"
