"""The CUDA backends (``cuda``, ``cuda-persistent``) and their kernels.

Without a GPU these run in numba-cuda's simulator (tests/conftest.py sets
NUMBA_ENABLE_CUDASIM=1 when no libcuda is found); with a GPU the very same
tests run on it. The simulator runs every thread as a Python thread and the
blocks one after another, so sizes are tiny, and the persistent kernel runs
with one block (a grid-wide barrier is only correct there with one block),
except with T=1, where no block reads what another wrote.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lstm_numba as ln
from helpers import assert_close, make_inputs, oracle64
from lstm_numba import BackendUnavailable
from lstm_numba import _cuda_kernels as K
from lstm_numba import gpu
from lstm_numba.backends import get as get_backend

ROOT = Path(__file__).resolve().parents[1]
GPU_NAMES = ["cuda", "cuda-persistent"]
SIM = gpu.simulator()


@pytest.fixture(autouse=True)
def _need_backend():
    reason = gpu.unavailable("cuda")
    if reason:
        pytest.skip(f"cuda: {reason}")


def _persistent_kwargs():
    # One block in the simulator; the default (one per SM) on a GPU.
    return {"blocks": 1} if SIM else {}


# (T, B, I, H): H=37 spans two 32-unit tiles and 2-3 k-tiles; B=3 uses 4 k-slices
# per lane; T=1 and B=1 edges; I != H.
SHAPES = [(3, 3, 5, 37), (1, 1, 2, 5)]


@pytest.mark.parametrize("backend", GPU_NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_matches_oracle(backend, shape, cell, dtype):
    x, w, h0, c0 = make_inputs(cell, *shape, dtype=dtype, seed=sum(shape))
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


@pytest.mark.parametrize("batch", [5, 17])
def test_step_kernel_batch_tiling(batch, cell):
    """B=5: 2 k-slices per lane; B=17: no k-split and two blocks along the batch."""
    x, w, h0, c0 = make_inputs(cell, 2, batch, 3, 9, np.float64, seed=batch)
    run = gpu.CudaRunner(cell, w)
    res = ln.ForwardResult(*run(x, h0, c0))
    assert_close(res, oracle64(cell, x, w, h0, c0), np.float64, cell)
    assert run.last_launch["ks"] == gpu._step_ks(batch)
    assert run.last_launch["launches"] == 2


def test_step_k_slices():
    assert [gpu._step_ks(b) for b in (1, 2, 3, 4, 5, 8, 9, 16, 64)] == [8, 8, 4, 4, 2, 2, 1, 1, 1]


def test_zero_state_and_runner_reuse(cell):
    """h0/c0 default to zeros; a runner reused across calls keeps no stale state."""
    x, w, _, _ = make_inputs(cell, 3, 2, 4, 7, np.float32, seed=3, with_state=False)
    res = ln.forward(cell, x, w, backend="cuda")
    assert_close(res, oracle64(cell, x, w), np.float32, cell)
    run = gpu.CudaRunner(cell, w)
    x2, _, h2, c2 = make_inputs(cell, 3, 2, 4, 7, np.float32, seed=4)
    first = run(x2, h2, c2)
    second = run(x2, h2, c2)
    for a, b in zip(first, second):
        if a is not None:
            np.testing.assert_array_equal(a, b)
    other = run(x, None, None)
    np.testing.assert_array_equal(other[0], res.outputs)


def test_registry_runner(cell):
    """``Backend.runner`` goes through gpu.make_runner (weights uploaded once)."""
    x, w, h0, c0 = make_inputs(cell, 2, 3, 4, 6, np.float64, seed=9)
    for name in GPU_NAMES:   # the persistent default is one block in the simulator
        out = get_backend(name).runner(cell, w)(x, h0, c0)
        assert_close(ln.ForwardResult(*out), oracle64(cell, x, w, h0, c0), np.float64, cell)
    assert gpu.make_runner("cuda-persistent", cell, w).persistent


def test_nan_in_nan_out():
    x, w, h0, c0 = make_inputs("lstm", 3, 2, 3, 5, np.float64, seed=1)
    x[1, 0, 0] = np.nan
    for persistent in (False, True):
        kw = _persistent_kwargs() if persistent else {}
        out, h, c = gpu.CudaRunner("lstm", w, persistent=persistent, **kw)(x, h0, c0)
        assert not np.isnan(out[0]).any()
        assert np.isnan(out[1:, 0]).all() and np.isnan(c[0]).all()
        assert not np.isnan(out[:, 1]).any()


# ---------------------------------------------------------------- persistent

def test_persistent_geometry_in_simulator():
    if not SIM:
        pytest.skip("checks the simulator's one-block default")
    x, w, h0, c0 = make_inputs("gru", 2, 2, 3, 11, np.float32, seed=2)
    run = gpu.CudaRunner("gru", w, persistent=True)
    run(x, h0)
    ll = run.last_launch
    assert ll["blocks"] == 1 and ll["units"] == 11 and ll["launches"] == 1
    assert ll["ks"] == 8                  # 3*11 rows x 1 batch chunk: 33 items
    assert ll["stride"] % 32 == 8 and ll["stride"] >= 11


def test_persistent_k_slices():
    # the most threads per product that still fit every item in one pass of 256
    assert [K.persistent_k_slices(n) for n in (1, 4, 8, 9, 16, 17, 32, 500)] == \
        [32, 32, 32, 16, 16, 8, 8, 8]
    assert K.persistent_row_stride(37, np.float32, 8) % 32 == 8
    assert K.persistent_row_stride(37, np.float64, 16) % 16 == 0


@pytest.mark.parametrize("hidden,batch,ks", [(2, 3, 32), (4, 1, 16), (9, 5, 8)])
def test_persistent_each_k_split(hidden, batch, ks, dtype):
    """32 and 16 threads per dot product (few items) and 8 (many), vs the oracle."""
    x, w, h0, c0 = make_inputs("lstm", 3, batch, 4, hidden, dtype, seed=hidden + batch)
    run = gpu.CudaRunner("lstm", w, persistent=True, blocks=1)   # items = 4*H*ceil(B/4)
    res = ln.ForwardResult(*run(x, h0, c0))
    assert run.last_launch["ks"] == ks
    assert_close(res, oracle64("lstm", x, w, h0, c0), dtype, "lstm")


def test_persistent_without_staging_h(cell, dtype):
    """When h_{t-1} does not fit beside the weights it is read from global memory."""
    t, b, i, h = 3, 6, 4, 13
    x, w, h0, c0 = make_inputs(cell, t, b, i, h, dtype, seed=13)
    probe = gpu.CudaRunner(cell, w, persistent=True, **_persistent_kwargs())
    plan = probe.persistent_plan(b)
    assert plan["stage_h"]
    staged = plan["static_shared"] + plan["dynamic_shared"]
    limit = staged - 1            # one byte short of staging h
    run = gpu.CudaRunner(cell, w, persistent=True, shared_limit=limit, **_persistent_kwargs())
    res = ln.ForwardResult(*run(x, h0, c0))
    assert run.last_launch["stage_h"] is False
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


def test_persistent_many_blocks_one_step(cell, monkeypatch):
    """Several blocks, each owning a slice of units (the last a partial one).

    With T=1 no block reads another's output, so the simulator's one-block-
    at-a-time execution is still correct; its cooperative limit (always 1)
    is lifted for this test only.
    """
    if SIM:
        from numba.cuda.simulator import kernel as simk

        monkeypatch.setattr(simk.FakeOverload, "max_cooperative_grid_blocks",
                            lambda self, blockdim, dynsmemsize=0: 64)
    x, w, h0, c0 = make_inputs(cell, 1, 3, 5, 37, np.float64, seed=21)
    run = gpu.CudaRunner(cell, w, persistent=True, blocks=4)
    res = ln.ForwardResult(*run(x, h0, c0))
    assert run.last_launch["units"] == 10 and run.last_launch["blocks"] == 4
    assert_close(res, oracle64(cell, x, w, h0, c0), np.float64, cell)


def test_persistent_grid_over_cooperative_limit():
    if not SIM:
        pytest.skip("the simulator's cooperative limit is 1 block")
    x, w, h0, c0 = make_inputs("rnn", 2, 1, 3, 8, np.float32, seed=1)
    run = gpu.CudaRunner("rnn", w, persistent=True, blocks=2)
    with pytest.raises(BackendUnavailable, match="max_cooperative_grid_blocks"):
        run(x, h0)


def test_persistent_weights_do_not_fit():
    """H=128 float64 LSTM in one block: 4*128 rows of 128 doubles (512 KiB) > the limit."""
    x, w, h0, c0 = make_inputs("lstm", 1, 1, 2, 128, np.float64, seed=0)
    run = gpu.CudaRunner("lstm", w, persistent=True, blocks=1, shared_limit=48 * 1024)
    with pytest.raises(BackendUnavailable, match=r"do not fit on chip.*49152 bytes"):
        run(x, h0, c0)
    if SIM:   # through the public API too (the simulator's limit is 227 KiB)
        with pytest.raises(BackendUnavailable, match="do not fit on chip"):
            ln.forward("lstm", x, w, h0, c0, backend="cuda-persistent")


def test_runner_arguments():
    x, w, h0, c0 = make_inputs("lstm", 2, 2, 3, 4, np.float32, seed=0)
    with pytest.raises(ValueError, match="blocks"):
        gpu.CudaRunner("lstm", w, persistent=True, blocks=0)
    with pytest.raises(ValueError, match="projection"):
        gpu.CudaRunner("lstm", w, projection="magic")
    with pytest.raises(ValueError, match="launch must be one of"):
        gpu.CudaRunner("lstm", w, launch="warp-speed")
    with pytest.raises(ValueError, match="weights.w_hh"):
        gpu.CudaRunner("gru", w)
    run = gpu.CudaRunner("lstm", w)
    with pytest.raises(ValueError, match="x has shape"):
        run(x[:, :, :2], h0, c0)
    d_x, d_h0, d_c0 = run.upload(x, h0, c0)
    with pytest.raises(ValueError, match="c0 is required"):
        run.forward_device(d_x, d_h0, None)
    with pytest.raises(ValueError, match="h0 has shape"):
        run.forward_device(d_x, d_c0[:1], d_c0)
    with pytest.raises(TypeError, match="dtype"):
        run.forward_device(gpu._to_device(x.astype(np.float64)), d_h0, d_c0)


def test_device_outputs_and_bytes():
    x, w, h0, c0 = make_inputs("lstm", 3, 2, 5, 6, np.float32, seed=5)
    run = gpu.CudaRunner("lstm", w)
    out, h, c = run(x, h0, c0, to_host=False)
    assert not isinstance(out, np.ndarray) and tuple(out.shape) == (3, 2, 6)
    ref = oracle64("lstm", x, w, h0, c0)
    np.testing.assert_allclose(out.copy_to_host(), ref.outputs, atol=2e-5, rtol=0)
    np.testing.assert_allclose(h.copy_to_host(), ref.h, atol=2e-5, rtol=0)
    # weights 4*6*(5+6)+2*24 floats; workspace x, xp, hbuf, h0 + c, c0 copies
    assert run.weight_bytes == 4 * (24 * 11 + 48)
    assert run.workspace_bytes(3, 2) == 4 * (3 * 2 * (5 + 24) + 4 * 2 * 6 + 2 * 6 + 2 * 2 * 6)
    assert run.device_bytes(3, 2) == run.weight_bytes + run.workspace_bytes(3, 2)


def test_timing_helper_returns_positive_times():
    x, w, h0, _ = make_inputs("rnn", 2, 1, 2, 3, np.float32, seed=0)
    run = gpu.CudaRunner("rnn", w)
    times = run.time(*run.upload(x, h0), repeat=2, warmup=1)
    assert len(times) == 2 and all(s > 0 for s in times)


# ---------------------------------------------------------------- projection

@pytest.mark.parametrize("mkn", [(70, 67, 19), (1, 1, 1), (5, 130, 33)],
                         ids=lambda s: "M{}K{}N{}".format(*s))
def test_matmul_kernel_alone(mkn, dtype):
    m, n, k = mkn
    rng = np.random.default_rng(m + n + k)
    a = rng.standard_normal((m, k)).astype(dtype)
    w = rng.standard_normal((n, k)).astype(dtype)
    out = gpu.matmul_nt(a, w).copy_to_host()
    ref = a.astype(np.float64) @ w.astype(np.float64).T
    assert out.shape == (m, n) and out.dtype == dtype
    np.testing.assert_allclose(out, ref, rtol=0, atol=(1e-4 if dtype == np.float32 else 1e-12))


def test_matmul_kernel_checks_shapes():
    a = np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="K=3"):
        gpu.matmul_nt(a, np.ones((5, 2), np.float32))
    with pytest.raises(TypeError, match="dtype"):
        gpu.matmul_nt(a, np.ones((5, 3), np.float64))
    with pytest.raises(ValueError, match="out has shape"):
        gpu.matmul_nt(a, np.ones((5, 3), np.float32), gpu._to_device(np.ones((4, 4), np.float32)))


def test_projection_choice_is_explicit():
    x, w, h0, c0 = make_inputs("lstm", 2, 2, 3, 4, np.float64, seed=0)
    have_cupy = gpu.cupy_or_none() is not None
    assert gpu.CudaRunner("lstm", w).projection == ("cublas" if have_cupy else "kernel")
    assert gpu.CudaRunner("lstm", w, projection="kernel").projection == "kernel"
    if not have_cupy:
        with pytest.raises(BackendUnavailable, match="CuPy"):
            gpu.CudaRunner("lstm", w, projection="cublas")
        return
    # On a GPU with CuPy: both projections give the oracle's answer.
    ref = oracle64("lstm", x, w, h0, c0)
    for proj in ("kernel", "cublas"):
        res = ln.ForwardResult(*gpu.CudaRunner("lstm", w, projection=proj)(x, h0, c0))
        assert_close(res, ref, np.float64, "lstm")


# ---------------------------------------------------------------- availability

def test_unavailable_without_gpu(monkeypatch):
    from numba import cuda

    monkeypatch.setattr(gpu, "simulator", lambda: False)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    for name in GPU_NAMES:
        assert gpu.unavailable(name) == "no CUDA GPU found (numba.cuda.is_available() is False)"
    assert "cuda" in ln.why_unavailable()
    assert "cuda" not in ln.backends()
    x, w, h0, c0 = make_inputs("rnn", 1, 1, 1, 1, np.float32, seed=0)
    with pytest.raises(BackendUnavailable, match="no CUDA GPU found"):
        ln.forward("rnn", x, w, h0, backend="cuda")


def test_unavailable_without_numba_cuda(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda n, *a: None if n == "numba_cuda" else real(n, *a))
    assert gpu.unavailable("cuda") == gpu._NUMBA_CUDA_MISSING
    assert "numba-cuda is not installed" in gpu.unavailable("cuda-persistent")


def test_available_here():
    assert gpu.unavailable("cuda") is None and gpu.unavailable("cuda-persistent") is None
    assert {"cuda", "cuda-persistent"} <= set(ln.backends("gpu"))


def test_launch_paths_agree():
    """``direct`` (compiled kernel, no re-typing) and ``dispatch`` give the same bits."""
    x, w, h0, c0 = make_inputs("gru", 3, 2, 4, 9, np.float32, seed=8)
    a = gpu.CudaRunner("gru", w, launch="direct")
    b = gpu.CudaRunner("gru", w, launch="dispatch")
    np.testing.assert_array_equal(a(x, h0)[0], b(x, h0)[0])
    # the simulator has no compiled kernels and always dispatches
    assert a.last_launch["path"] == ("dispatch" if SIM else "direct")


class _FakeConfig:
    griddim, blockdim, stream, sharedmem = (1, 1, 1), (1, 1, 1), None, 0

    def __init__(self, calls):
        self.calls = calls

    def __call__(self, *args):
        self.calls.append(("dispatch", args))


def _fake_dispatcher(calls, launch_error=None):
    class Kernel:
        def launch(self, args, grid, block, stream, shared):
            if launch_error:
                raise launch_error
            calls.append(("direct", tuple(args)))

    class Dispatcher:
        def typeof_pyval(self, a):
            return type(a)

        def compile(self, types):
            calls.append(("compile", types))
            return Kernel()

        def __getitem__(self, config):
            return _FakeConfig(calls)

    return Dispatcher()


def test_launcher_direct_path_logic(monkeypatch):
    """Off the simulator: compile once, then launch the compiled kernel directly."""
    monkeypatch.setattr(gpu, "simulator", lambda: False)
    calls = []
    launch = gpu._Launcher(_fake_dispatcher(calls), (1, 2.0), "direct")
    launch((2,), (32,), (1, 2.0))
    launch((2,), (32,), (3, 4.0))
    assert calls == [("compile", (int, float)), ("direct", (1, 2.0)), ("direct", (3, 4.0))]
    assert launch.mode == "direct"


def test_launcher_falls_back_to_dispatch(monkeypatch):
    monkeypatch.setattr(gpu, "simulator", lambda: False)
    calls = []
    launch = gpu._Launcher(_fake_dispatcher(calls, TypeError("launch() changed")), (1,), None)
    with pytest.warns(RuntimeWarning, match="falling back to the dispatcher"):
        launch((1,), (1,), (5,))
    launch((1,), (1,), (6,))
    assert launch.mode == "dispatch"
    assert calls[1:] == [("dispatch", (5,)), ("dispatch", (6,))]


_PTX_SCRIPT = """
import re, sys
from lstm_numba import _cuda_kernels as K
out = K.compile_ptx_all((9, 0))
for name, ptx in sorted(out.items()):
    f64 = len(re.findall(r"\\.f64\\b", ptx))
    local = re.findall(r"\\.local \\.align \\d+ \\.b8 \\S+\\[(\\d+)\\]", ptx)
    print(name, f64, ",".join(local) or "-")
"""


def test_kernels_compile_for_a_real_gpu():
    """Numba's real CUDA pipeline (NVVM -> PTX for sm_90) accepts every kernel.

    The simulator runs kernels as Python and cannot see what only the
    compiler rejects. This needs libnvvm (the nvidia-cuda-nvcc wheel), not a
    GPU; where it cannot be found the test is skipped, saying so.
    """
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
    proc = subprocess.run([sys.executable, "-c", _PTX_SCRIPT], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
        if any(s in proc.stderr for s in ("libnvvm", "NVVM", "nvrtc", "DynamicLibNotFound")):
            pytest.skip(f"no libnvvm/NVRTC here to compile PTX: {err[:200]}")
        raise AssertionError(proc.stdout[-2000:] + proc.stderr[-4000:])
    rows = [line.split() for line in proc.stdout.strip().splitlines()]
    assert len(rows) == 26            # (matmul + 3 cells x 4 kernels) x 2 dtypes
    for name, f64, local in rows:
        if name.endswith("float32"):
            # float32 kernels must not compute in float64 (a stray literal would)
            assert int(f64) == 0, name
        # accumulators stay in registers: no local-memory arrays
        assert local == "-", name


# ---------------------------------------------------------------- benchmarks

def test_gpu_check_smoke(tmp_path):
    """benchmarks/gpu_check.py --smoke: checks and timings on tiny sizes, files written."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    if SIM:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"),
                           "--smoke", "--out", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    assert "check" in out and "FAIL" not in out
    import json

    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["checks"] and all(c["ok"] for c in data["checks"])
    backends = {r["backend"] for r in data["timings"]}
    assert {"cuda", "cuda-persistent"} <= backends
    for r in data["timings"]:
        if r["ms"] is not None:
            assert r["ms"] > 0 and r["us_per_step"] > 0 and r["gflops"] > 0
    assert (tmp_path / "gpu_check.csv").read_text().startswith("cell,")
    # the table is printed last
    assert out.rstrip().splitlines()[-1].startswith("|")


def test_asv_gpu_benchmarks_skip_without_real_gpu():
    if not SIM:
        pytest.skip("on a real GPU the benchmarks run")
    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import bench_gpu
    finally:
        sys.path.remove(str(ROOT))
    for cls in (bench_gpu.GpuForward, bench_gpu.GpuMemory):
        bench = cls()
        args = [p[0] for p in cls.params]
        with pytest.raises(NotImplementedError, match="simulator"):
            bench.setup(*args)
