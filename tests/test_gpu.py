"""The CUDA backends (``cuda``, ``cuda-persistent``), their runners and kernels.

Without a GPU these run in numba-cuda's simulator (tests/conftest.py sets
NUMBA_ENABLE_CUDASIM=1 when no libcuda is found); with a GPU the very same
tests run on it. The simulator runs every thread as a Python thread and the
blocks one after another, so sizes are tiny, and the persistent kernel runs
with one block (a grid-wide barrier is only correct there with one block),
except with T=1, where no block reads what another wrote. The simulator has
no warp shuffles: there the kernels reduce through shared memory, and the
shuffle path is checked by compiling it to PTX (and on a GPU by running it).
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
from lstm_numba import _cuda_env, _cuda_launch, _cuda_persistent, _cuda_step, gpu
from lstm_numba._cuda_runner import CudaRunnerBase
from lstm_numba.backends import get as get_backend
from lstm_numba.measure import Measurement

ROOT = Path(__file__).resolve().parents[1]
GPU_NAMES = ["cuda", "cuda-persistent"]
SIM = gpu.simulator()


@pytest.fixture(autouse=True)
def _need_backend():
    reason = gpu.unavailable("cuda")
    if reason:
        pytest.skip(f"cuda: {reason}")


def _run(res):
    return ln.ForwardResult(*res)


# (T, B, I, H): H=37 spans 10 step blocks of 4 units (the last partial) and
# two 32-lane k-iterations (the second partial); B=3 a padded batch tile of 4;
# T=1 and B=1 edges; I != H.
SHAPES = [(2, 3, 5, 37), (1, 1, 2, 5)]


@pytest.mark.parametrize("backend", GPU_NAMES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "T{}B{}I{}H{}".format(*s))
def test_matches_oracle(backend, shape, cell, dtype):
    x, w, h0, c0 = make_inputs(cell, *shape, dtype=dtype, seed=sum(shape))
    res = ln.forward(cell, x, w, h0, c0, backend=backend)
    assert_close(res, oracle64(cell, x, w, h0, c0), dtype, cell)


# ---------------------------------------------------------------- step kernel

def test_plan_step_uses_the_whole_gpu():
    """On 132 SMs: K split while the grid is small, batch tiles of up to 8 rows."""
    p = _cuda_step.plan_step(256, 1, 132)
    assert (p["bt"], p["kw"], p["upb"], p["warps"]) == (1, 4, 1, 1024)
    assert p["grid"] == (256, 1) and p["block"] == (128,)
    p = _cuda_step.plan_step(1024, 64, 132)
    assert (p["bt"], p["kw"], p["upb"], p["warps"]) == (8, 1, 4, 8192)
    assert p["grid"] == (256, 8) and p["block"] == (128,)
    assert _cuda_step.plan_step(512, 3, 132)["bt"] == 4
    assert _cuda_step.plan_step(37, 3, 132)["kw"] == 1        # too short to split K
    # every plan has >= 1024 warps (~8 per SM) at the sizes
    for h in (256, 512, 1024):
        for b in (1, 4, 8, 64):
            assert _cuda_step.plan_step(h, b, 132)["warps"] >= 1024
    with pytest.raises(ValueError, match="k_split"):
        _cuda_step.plan_step(64, 1, 132, k_split=3)
    with pytest.raises(ValueError, match="batch_tile"):
        _cuda_step.plan_step(64, 1, 132, batch_tile=16)


@pytest.mark.parametrize("cell,bt,kw,hidden", [("lstm", 2, 2, 36), ("gru", 8, 1, 9),
                                               ("rnn", 1, 1, 9)])
def test_step_kernel_tiles(cell, bt, kw, hidden):
    """Forced tiles against the oracle: K split over 2 warps (the second
    warp's slice partial), batch tiles of 2 (B=3: two tiles, the last
    partial), 8 (B=3 padded) and 1 (three tiles)."""
    x, w, h0, c0 = make_inputs(cell, 1, 3, 3, hidden, np.float64, seed=bt + kw)
    run = gpu.StepRunner(cell, w, batch_tile=bt, k_split=kw)
    res = _run(run(x, h0, c0))
    assert (run.last_launch["bt"], run.last_launch["kw"]) == (bt, kw)
    assert run.last_launch["grid"][1] == -(-3 // bt)
    assert_close(res, oracle64(cell, x, w, h0, c0), np.float64, cell)


def test_zero_state_and_runner_reuse():
    """h0/c0 default to zeros; a runner reused across calls keeps no stale state."""
    cell = "lstm"
    x, w, _, _ = make_inputs(cell, 2, 2, 4, 7, np.float32, seed=3, with_state=False)
    res = ln.forward(cell, x, w, backend="cuda")
    assert_close(res, oracle64(cell, x, w), np.float32, cell)
    run = gpu.CudaRunner(cell, w)
    x2, _, h2, c2 = make_inputs(cell, 2, 2, 4, 7, np.float32, seed=4)
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
        assert_close(_run(out), oracle64(cell, x, w, h0, c0), np.float64, cell)


def test_nan_in_nan_out():
    x, w, h0, c0 = make_inputs("lstm", 3, 2, 3, 5, np.float64, seed=1)
    x[1, 0, 0] = np.nan
    for persistent in (False, True):
        out, h, c = gpu.CudaRunner("lstm", w, persistent=persistent)(x, h0, c0)
        assert not np.isnan(out[0]).any()
        assert np.isnan(out[1:, 0]).all() and np.isnan(c[0]).all()
        assert not np.isnan(out[:, 1]).any()


# ---------------------------------------------------------------- runners

def test_two_runners_one_base():
    """``cuda`` and ``cuda-persistent`` are two classes over one base; the
    one-class factory returns the right one and passes the design's options."""
    _, w, _, _ = make_inputs("gru", 1, 1, 2, 3, np.float32, seed=0)
    step = gpu.CudaRunner("gru", w)
    pers = gpu.CudaRunner("gru", w, persistent=True, blocks=1)
    assert type(step) is gpu.StepRunner and type(pers) is gpu.PersistentRunner
    assert isinstance(step, CudaRunnerBase) and isinstance(pers, CudaRunnerBase)
    assert (step.name, step.persistent) == ("cuda", False)
    assert (pers.name, pers.persistent) == ("cuda-persistent", True)
    assert pers.blocks_requested == 1
    assert type(gpu.make_runner("cuda-persistent", "gru", w)) is gpu.PersistentRunner
    assert type(gpu.make_runner("cuda", "gru", w)) is gpu.StepRunner
    with pytest.raises(TypeError):
        gpu.CudaRunner("gru", w, blocks=2)          # a persistent-only option
    with pytest.raises(TypeError):
        gpu.CudaRunner("gru", w, persistent=True, k_split=2)


@pytest.mark.parametrize("backend", GPU_NAMES)
def test_per_shape_work_done_once(backend):
    """A second call of the same (T, B) plans, allocates and prepares nothing;
    a new shape does, and the runner keeps at most two shapes."""
    x, w, h0, c0 = make_inputs("rnn", 2, 2, 3, 4, np.float32, seed=2)
    run = gpu.CudaRunner("rnn", w, persistent=(backend == "cuda-persistent"))
    dev = run.device_run(x, h0)
    dev.call()
    sh = run._shapes[(2, 2)]
    proj = sh.proj
    dev.call()
    dev.sync()
    assert run.plans_made == 1
    assert run._shapes[(2, 2)] is sh and sh.proj is proj     # projection wrappers reused
    x3 = np.concatenate([x, x])[:3]
    run(x3, h0)                                              # T=3: a new shape
    assert run.plans_made == 2
    run(x3[:, :1], h0[:1])                                   # a third: the oldest goes
    assert run.plans_made == 3 and (2, 2) not in run._shapes and len(run._shapes) == 2
    np.testing.assert_allclose(dev.result()[0], oracle64("rnn", x, w, h0).outputs, atol=2e-5)
    assert run.plans_made == 4                               # (2, 2) planned again


def test_runner_arguments():
    x, w, h0, c0 = make_inputs("lstm", 2, 2, 3, 4, np.float32, seed=0)
    with pytest.raises(ValueError, match="blocks"):
        gpu.CudaRunner("lstm", w, persistent=True, blocks=0)
    with pytest.raises(ValueError, match="shared_limit"):
        gpu.CudaRunner("lstm", w, persistent=True, shared_limit=-1)
    with pytest.raises(ValueError, match="projection"):
        gpu.CudaRunner("lstm", w, projection="magic")
    with pytest.raises(ValueError, match="launch must be one of"):
        gpu.CudaRunner("lstm", w, launch="warp-speed")
    with pytest.raises(ValueError, match="weights.w_hh"):
        gpu.CudaRunner("gru", w)
    for persistent in (False, True):
        run = gpu.CudaRunner("lstm", w, persistent=persistent)
        with pytest.raises(ValueError, match="x has shape"):
            run(x[:, :, :2], h0, c0)
        d_x, d_h0, d_c0 = run.upload(x, h0, c0)
        with pytest.raises(ValueError, match="c0 is required"):
            run.forward_device(d_x, d_h0, None)
        with pytest.raises(ValueError, match="h0 has shape"):
            run.forward_device(d_x, d_c0[:1], d_c0)
        with pytest.raises(TypeError, match="dtype"):
            run.forward_device(_cuda_launch.to_device(x.astype(np.float64)), d_h0, d_c0)
        with pytest.raises(ValueError, match="T and B must be >= 1"):
            run.forward_device(d_x[:0], d_h0, d_c0)
        assert run.plans_made == 0 and not run._shapes       # rejected before any work


def test_device_outputs_bytes_and_timing():
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
    m = run.time(*run.upload(x, h0, c0), repeat=2, warmup=1)
    assert isinstance(m, Measurement) and m.n == 2 and m.min > 0 and m.first_s > 0
    run.record_events = True                 # the split gpu_check reports
    run.forward_device(*run.upload(x, h0, c0))
    run.synchronize()
    parts = run.read_events()
    assert set(parts) == {"projection_ms", "copy_ms", "recurrence_ms"}
    assert run.read_events() == {}           # read once


# ---------------------------------------------------------------- launch paths

class _FakePrepared:
    stream = "legacy-stream"

    def __init__(self, kern, args, grid, block, shared=0):
        self.calls = []
        self.args, self.grid, self.block = list(args), grid, block
        self.params = list(args)

    def params_with_last(self, v):
        return self.params[:-1] + [v]

    def launch(self, params=None, stream=None):
        self.calls.append((params[-1] if params else None, stream))


class _FakeGraph:
    def __init__(self):
        self.launched = []

    def launch(self, stream):
        self.launched.append(stream)


@pytest.mark.parametrize("capture_ok", [True, False])
def test_step_graph_logic(monkeypatch, capture_ok):
    """Off the simulator: the T launches are prepared once and captured into a
    graph replayed by one call; if capture fails, ``direct`` runs them and
    the reason is kept (launch objects faked: only the logic is checked)."""
    x, w, h0, _ = make_inputs("rnn", 3, 1, 2, 4, np.float32, seed=6)
    run = gpu.StepRunner("rnn", w)
    built = []

    def fake_build(prep, params):
        built.append([p[-1] for p in params])
        if not capture_ok:
            raise RuntimeError("capture refused")
        return _FakeGraph()

    monkeypatch.setattr(_cuda_step, "simulator", lambda: False)
    monkeypatch.setattr(_cuda_launch, "PreparedLaunch", _FakePrepared)
    monkeypatch.setattr(_cuda_launch, "build_graph", fake_build)
    d = run.device_run(x, h0)
    d.call()
    d.call()
    la = run._shapes[(3, 1)].launch
    assert built == [[0, 1, 2]]                       # captured once, steps in order
    if capture_ok:
        assert run.last_launch["path"] == "graph" and la["graph"].launched == ["legacy-stream"] * 2
        assert la["prepared"].calls == []
    else:
        assert run.last_launch["path"] == "direct"
        assert "capture refused" in run.last_launch["graph_error"]
        assert la["prepared"].calls == [(0, None), (1, None), (2, None)] * 2


def test_graph_builder_recipe(monkeypatch):
    """build_graph follows numba-cuda's recipe: begin_building, one launch per
    step onto the builder, end_building().complete()."""
    import cuda.core as core

    log = []

    class GB:
        def begin_building(self):
            log.append("begin")

        def end_building(self):
            log.append("end")
            return self

        def complete(self):
            log.append("complete")
            return "graph"

    class Device:
        def set_current(self):
            log.append("current")

        def create_graph_builder(self):
            return gb

    gb = GB()
    monkeypatch.setattr(core, "Device", Device, raising=False)
    prep = _FakePrepared(None, [1, 2, 0], (1,), (32,))
    graph = _cuda_launch.build_graph(prep, [prep.params_with_last(t) for t in range(3)])
    assert graph == "graph"
    assert log == ["current", "begin", "end", "complete"]
    assert prep.calls == [(0, gb), (1, gb), (2, gb)]


# ---------------------------------------------------------------- persistent

def test_plan_persistent():
    """One block per SM; K split over warps when a block has few items;
    weights from L2 when they do not fit in shared memory."""
    p = _cuda_persistent.plan_persistent(4, 256, 1, 4, 132, 227 * 1024)
    assert (p["units"], p["blocks"], p["bt"], p["items"], p["kw"]) == (2, 128, 1, 2, 4)
    assert (p["weights"], p["nk"], p["dynamic_shared"]) == ("registers", 2, 0)
    p = _cuda_persistent.plan_persistent(4, 512, 8, 4, 132, 227 * 1024)
    assert (p["units"], p["items"], p["kw"], p["weights"], p["nk"]) == (4, 4, 2, "registers", 8)
    p = _cuda_persistent.plan_persistent(4, 256, 1, 4, 132, 227 * 1024, registers=False)
    assert p["weights"] == "shared" and p["dynamic_shared"] == 4 * 2 * 256 * 4
    p = _cuda_persistent.plan_persistent(4, 1024, 1, 4, 132, 227 * 1024)   # 4*32 words
    assert (p["weights"], p["nk"]) == ("shared", 0)
    p = _cuda_persistent.plan_persistent(4, 1024, 64, 4, 132, 227 * 1024)
    assert (p["units"], p["blocks"], p["bt"], p["items"], p["kw"]) == (8, 128, 8, 64, 1)
    assert p["weights"] == "shared" and p["dynamic_shared"] == 128 * 1024
    p = _cuda_persistent.plan_persistent(4, 1024, 1, 8, 132, 227 * 1024)    # float64
    assert p["weights"] == "global" and p["dynamic_shared"] == 0


def test_persistent_geometry_in_simulator():
    if not SIM:
        pytest.skip("checks the simulator's one-block default")
    x, w, h0, c0 = make_inputs("gru", 2, 2, 3, 11, np.float32, seed=2)
    run = gpu.PersistentRunner("gru", w)
    run(x, h0)
    ll = run.last_launch
    assert ll["blocks"] == 1 and ll["units"] == 11 and ll["launches"] == 1
    assert (ll["bt"], ll["items"], ll["kw"], ll["weights"]) == (2, 11, 1, "shared")
    assert ll["path"] == "dispatch" and ll["max_cooperative_blocks"] == 1


@pytest.mark.parametrize("hidden,batch,kw", [(1, 1, 8), (3, 2, 2), (9, 5, 1)])
def test_persistent_each_k_split(hidden, batch, kw, dtype):
    """8, 2 and 1 warps per item (1, 3 and 9 items per block), vs the oracle."""
    x, w, h0, c0 = make_inputs("lstm", 3, batch, 4, hidden, dtype, seed=hidden + batch)
    run = gpu.PersistentRunner("lstm", w, blocks=1)
    res = _run(run(x, h0, c0))
    assert run.last_launch["kw"] == kw
    assert_close(res, oracle64("lstm", x, w, h0, c0), dtype, "lstm")


def test_persistent_weights_from_l2(cell):
    """When the weight slice does not fit in shared memory it is read from L2."""
    x, w, h0, c0 = make_inputs(cell, 3, 3, 4, 13, np.float64, seed=13)
    run = gpu.PersistentRunner(cell, w, blocks=1, shared_limit=1024)
    res = _run(run(x, h0, c0))
    assert run.last_launch["weights"] == "global" and run.last_launch["dynamic_shared"] == 0
    assert_close(res, oracle64(cell, x, w, h0, c0), np.float64, cell)


def _lift_cooperative_limit(monkeypatch):
    if SIM:
        from numba.cuda.simulator import kernel as simk

        monkeypatch.setattr(simk.FakeOverload, "max_cooperative_grid_blocks",
                            lambda self, blockdim, dynsmemsize=0: 64)


def test_persistent_weights_in_registers(cell, monkeypatch):
    """Registers (two k-iterations per lane at H=40: nk=2; one block per 5
    units, the last partial) and shared memory give the oracle's answer.
    T=1: several blocks are correct in the simulator (see below)."""
    _lift_cooperative_limit(monkeypatch)
    x, w, h0, c0 = make_inputs(cell, 1, 3, 4, 40, np.float32, seed=40)
    ref = oracle64(cell, x, w, h0, c0)
    for registers, where in ((True, "registers"), (False, "shared")):
        run = gpu.PersistentRunner(cell, w, blocks=9, registers=registers)
        res = _run(run(x, h0, c0))
        ll = run.last_launch
        assert (ll["weights"], ll["units"], ll["blocks"]) == (where, 5, 8)
        assert ll["nk"] == (2 if registers else 0)
        assert_close(res, ref, np.float32, cell)


def test_persistent_many_blocks_one_step(cell, monkeypatch):
    """Several blocks, each owning a slice of units (the last a partial one).

    With T=1 no block reads another's output, so the simulator's one-block-
    at-a-time execution is still correct; its cooperative limit (always 1)
    is lifted for this test only.
    """
    _lift_cooperative_limit(monkeypatch)
    x, w, h0, c0 = make_inputs(cell, 1, 3, 5, 37, np.float64, seed=21)
    run = gpu.PersistentRunner(cell, w, blocks=4)
    res = _run(run(x, h0, c0))
    assert run.last_launch["units"] == 10 and run.last_launch["blocks"] == 4
    assert_close(res, oracle64(cell, x, w, h0, c0), np.float64, cell)


def test_persistent_grid_over_cooperative_limit():
    if not SIM:
        pytest.skip("the simulator's cooperative limit is 1 block")
    x, w, h0, c0 = make_inputs("rnn", 2, 1, 3, 8, np.float32, seed=1)
    run = gpu.PersistentRunner("rnn", w, blocks=2)
    with pytest.raises(BackendUnavailable, match="max_cooperative_grid_blocks"):
        run(x, h0)
    assert not run._shapes                   # nothing half-built is kept


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
        gpu.matmul_nt(a, np.ones((5, 3), np.float32),
                      _cuda_launch.to_device(np.ones((4, 4), np.float32)))


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

    monkeypatch.setattr(_cuda_env, "simulator", lambda: False)
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
    """``graph``/``direct`` and ``dispatch`` give the same bits (the simulator
    has no compiled kernels and always dispatches)."""
    x, w, h0, c0 = make_inputs("gru", 3, 2, 4, 9, np.float32, seed=8)
    a = gpu.StepRunner("gru", w)
    b = gpu.StepRunner("gru", w, launch="dispatch")
    np.testing.assert_array_equal(a(x, h0)[0], b(x, h0)[0])
    assert a.last_launch["path"] == ("dispatch" if SIM else "graph")
    assert a.last_launch["graph_error"] is None


_PTX_SCRIPT = """
import re, sys
from lstm_numba import _cuda_ptx
out = _cuda_ptx.compile_ptx_all((9, 0))
for name, ptx in sorted(out.items()):
    f64 = len(re.findall(r"\\.f64\\b", ptx))
    local = re.findall(r"\\.local \\.align \\d+ \\.b8 \\S+\\[(\\d+)\\]", ptx)
    shfl = len(re.findall(r"shfl\\.sync", ptx))
    print(name, f64, ",".join(local) or "-", shfl)
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
    # float32: matmul + 3 cells x (2 step + 2 persistent tiles) + the barrier
    # probe; float64: matmul + 3 cells x (1 step + 1 persistent)
    assert len(rows) == 14 + 7
    for name, f64, local, shfl in rows:
        if name.endswith("float32"):
            # float32 kernels must not compute in float64 (a stray literal would)
            assert int(f64) == 0, name
        # accumulators and tiles stay in registers: no local-memory arrays
        assert local == "-", name
        if name.startswith(("step", "persistent")):
            assert int(shfl) > 0, name     # reductions by warp shuffles on a GPU


# ---------------------------------------------------------------- benchmarks

def test_gpu_check_smoke(tmp_path):
    """benchmarks/gpu_check.py --smoke: checks and timings on tiny sizes, files written."""
    env = dict(os.environ)
    # keep what PYTHONPATH holds (a carried numpy on the GPU machine)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]]
                                                       if env.get("PYTHONPATH") else []))
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
