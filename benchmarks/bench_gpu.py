"""Question: on a GPU, is a step a launch (or a barrier) or arithmetic?

``cuda`` launches one kernel per step (replayed from a CUDA graph),
``cuda-persistent`` one cooperative kernel per sequence with a grid-wide
barrier per step, ``torch-cuda`` is cuDNN. At batch 1 the arithmetic of a
step is tiny, so the time per step is the launch (or barrier) latency; as B
grows the step becomes a real matrix product. ``benchmarks/gpu_check.py``
is the one-call version of this race (with checks and a table) for machines
without asv.

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

from lstm_numba.measure import make_problem

from .common import Timing, pick, require_backend

BACKENDS = ["cuda", "cuda-persistent", "torch-cuda"]


def _require_real_gpu(backend):
    require_backend(backend)
    from lstm_numba import gpu

    if gpu.simulator():
        raise NotImplementedError(
            f"{backend}: unavailable for timing: numba-cuda simulator "
            "(NUMBA_ENABLE_CUDASIM=1, no GPU) -- timing a simulator is meaningless")


def _device_run(backend, cell, seq_len, batch, hidden):
    """A warmed-up :class:`~lstm_numba.measure.DeviceRun` on device-resident inputs."""
    x, w, h0, c0 = make_problem(cell, seq_len, batch, hidden, dtype=np.float32)
    if backend == "torch-cuda":
        from lstm_numba._cuda_runner import TorchCudaRun

        run = TorchCudaRun(cell, w, x, h0, c0, tf32=False)
    else:
        from lstm_numba.gpu import CudaRunner

        run = CudaRunner(cell, w, persistent=(backend == "cuda-persistent")).device_run(
            x, h0, c0)
    run.shape = (seq_len, batch)
    run.call()                                    # compile, graph capture, cuDNN plan
    run.sync()
    return run


def _device_bytes(run):
    if hasattr(run, "runner"):
        return run.runner.device_bytes(*run.shape)
    return run.device_bytes()


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
        _CACHE.update(key=key, run=_device_run(backend, cell, seq_len, batch, hidden))
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
        self.run.sync()


class GpuMemory(Timing):
    """Device memory of one forward pass (float32)."""

    params = _GRID
    param_names = _NAMES

    def setup(self, cell, backend, hidden, batch, seq_len):
        GpuForward.setup(self, cell, backend, hidden, batch, seq_len)

    def track_device_bytes(self, cell, backend, hidden, batch, seq_len):
        """Device bytes: weights + inputs + every buffer of one forward pass."""
        return _device_bytes(self.run)

    track_device_bytes.unit = "bytes"
