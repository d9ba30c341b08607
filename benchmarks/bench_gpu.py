"""Question: on a GPU, is a step a launch (or a barrier) or arithmetic?

``cuda`` launches one kernel per step, ``cuda-persistent`` one cooperative
kernel per sequence with a grid-wide barrier per step, ``torch-cuda`` is
cuDNN. At batch 1 the arithmetic of a step is tiny, so the time per step is
the launch (or barrier) latency; as B grows the step becomes a real matrix
product. ``benchmarks/gpu_check.py`` is the one-call version of this race
(with checks and a table) for machines without asv.

- ``time_forward``: one forward pass, inputs already on the device, ended
  by a device synchronisation inside the timed call (asv times the host, and
  GPU work is asynchronous). The warm-up call in ``setup`` compiles.
- ``track_device_bytes``: device memory of one forward pass (unit "bytes"):
  for the project's backends the weights plus every buffer the runner holds
  (x, the T*B*G*H input projections, h for all T+1 steps, c); for
  ``torch-cuda`` the peak of PyTorch's allocator during one call plus the
  weights and inputs it holds.

Skipped (NotImplementedError) without a GPU, and under numba-cuda's
simulator, where a timing would measure Python threads, not a GPU.
CUDA cannot be used in a forked process: asv must use the ``spawn`` launch
method (asv.conf.json).

Sizes (float32, LSTM): fast H in {256, 1024}, B in {1, 8, 64}, T=128;
full H in {256, 512, 1024}, B in {1, 4, 8, 64}, T in {128, 1024}.
"""
import numpy as np

from .common import Timing, make_problem, pick, require_backend

BACKENDS = ["cuda", "cuda-persistent", "torch-cuda"]


def _require_real_gpu(backend):
    require_backend(backend)
    from lstm_numba import gpu

    if gpu.simulator():
        raise NotImplementedError(
            f"{backend}: unavailable for timing: numba-cuda simulator "
            "(NUMBA_ENABLE_CUDASIM=1, no GPU) -- timing a simulator is meaningless")


class _GpuRun:
    """A warmed-up forward pass on device-resident inputs; ``call()`` syncs."""

    def __init__(self, backend, cell, seq_len, batch, hidden):
        x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, dtype=np.float32)
        self.backend = backend
        if backend == "torch-cuda":
            import torch

            from lstm_numba.peers import to_torch

            self.torch = torch
            self.module = to_torch(cell, w, "cuda")
            self.x = torch.from_numpy(x).cuda()
            self.state = torch.from_numpy(h0).cuda()[None]
            if c0 is not None:
                self.state = (self.state, torch.from_numpy(c0).cuda()[None])
            self.weight_bytes = sum(a.nbytes for a in w)
            self.input_bytes = x.nbytes + h0.nbytes + (0 if c0 is None else c0.nbytes)
        else:
            from lstm_numba.gpu import CudaRunner

            self.runner = CudaRunner(cell, w, persistent=(backend == "cuda-persistent"))
            self.args = self.runner.upload(x, h0, c0)
        self.shape = (seq_len, batch)
        self.call()                                   # compile, cuDNN plan: untimed

    def call(self):
        if self.backend == "torch-cuda":
            with self.torch.inference_mode():
                self.module(self.x, self.state)
            self.torch.cuda.synchronize()
        else:
            self.runner.forward_device(*self.args)
            self.runner.synchronize()

    def device_bytes(self):
        if self.backend != "torch-cuda":
            return self.runner.device_bytes(*self.shape)
        torch = self.torch
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        self.call()
        # peak of what the call allocated on top of what was held before it
        # (weights and inputs, counted from their sizes)
        return (torch.cuda.max_memory_allocated() - base
                + self.weight_bytes + self.input_bytes)


_GRID = [["lstm"], BACKENDS,
         pick(fast=[256, 1024], full=[256, 512, 1024], smoke=[16]),
         pick(fast=[1, 8, 64], full=[1, 4, 8, 64], smoke=[1, 3]),
         pick(fast=[128], full=[128, 1024], smoke=[4])]
_NAMES = ["cell", "backend", "hidden", "batch", "seq_len"]

_CACHE = {}


def _get(backend, cell, seq_len, batch, hidden):
    """One warmed-up run per process (asv re-runs setup before every sample)."""
    key = (backend, cell, seq_len, batch, hidden)
    if _CACHE.get("key") != key:
        _CACHE.clear()
        _CACHE.update(key=key, run=_GpuRun(backend, cell, seq_len, batch, hidden))
    return _CACHE["run"]


class GpuForward(Timing):
    """Forward time of the GPU backends (float32), sync inside the timed call."""

    params = _GRID
    param_names = _NAMES

    def setup(self, cell, backend, hidden, batch, seq_len):
        _require_real_gpu(backend)
        try:
            self.run = _get(backend, cell, seq_len, batch, hidden)
        except Exception as e:
            from lstm_numba import BackendUnavailable

            if isinstance(e, BackendUnavailable):   # e.g. weights do not fit on chip
                raise NotImplementedError(f"{backend}: unavailable here: {e}") from e
            raise

    def time_forward(self, cell, backend, hidden, batch, seq_len):
        """Seconds per forward pass (T steps), device synchronised."""
        self.run.call()


class GpuMemory(Timing):
    """Device memory of one forward pass (float32)."""

    params = _GRID
    param_names = _NAMES

    def setup(self, cell, backend, hidden, batch, seq_len):
        GpuForward.setup(self, cell, backend, hidden, batch, seq_len)

    def track_device_bytes(self, cell, backend, hidden, batch, seq_len):
        """Device bytes: weights + inputs + every buffer of one forward pass."""
        return self.run.device_bytes()

    track_device_bytes.unit = "bytes"
