#!/usr/bin/env python
"""Check every CUDA backend against the oracle, then race them against cuDNN.

One self-contained run for a GPU machine (no asv needed)::

    PYTHONPATH=. python benchmarks/gpu_check.py --out "$OUT" --budget-s 420

1. Environment: GPU, driver, versions, the TF32 setting used for cuDNN.
2. Checks (first, so a wrong kernel is never timed unnoticed): ``cuda``
   (both input projections where CuPy is present, graph/direct/dispatch
   launch paths), ``cuda-persistent`` (default grid: one block per SM, so
   the grid-wide barrier really synchronises many blocks over many steps;
   weights in shared memory and from L2) and ``torch-cuda`` against the
   float64 NumPy oracle, all cells, both dtypes, odd sizes; NaN in -> NaN
   out only where it entered; a grid too large for a cooperative launch
   raises the clear error.
3. The grid barrier alone: an empty persistent loop (one
   ``this_grid().sync()`` per step) at the persistent kernel's grid sizes.
4. Timings (float32), every cell: ``cuda`` (step kernel from a CUDA graph;
   ``direct`` prepared launches and numba-cuda's ``dispatch`` at B=1 for
   the launch cost), ``cuda-persistent`` (at B=1 also with the weights in
   shared memory instead of registers), ``torch-cuda`` with TF32 off and
   on, over B in {1, 4, 8, 64}, H in {256, 512, 1024}, T in {128, 1024};
   every timed row's result is compared with cuDNN's (``err_vs_cudnn``), so
   every tile the timings use is checked on the GPU too.
   Inputs already on the device; the harness's ``measure`` (a warm-up call
   first: compile, graph capture and cuDNN's plan are never timed; then
   repeats within a budget, each ended by a device synchronisation; the
   median). Then the fixed host cost per call: ``issue_us``, the host time
   to issue a call (it returns before the GPU is done), and a pass with
   CUDA events that splits a call into the input projection, the copies of
   h0/c0, the recurrence (kernels / graph / persistent kernel: the
   in-kernel us/step) and ``host_us``, the wall time minus those GPU parts
   (the host cost the GPU did not hide).
5. The summary against the issue's targets and the table, printed last.

``--budget-s`` bounds the whole run (compile included): no new timing
starts after it, and rows left out say so. Results go to ``--out``
(default ``$OUT`` or ./gpu_check_out) as ``gpu_check.json`` and
``gpu_check.csv``, rewritten after every configuration so that a run cut
short still leaves its data, and ``gpu_check.md`` (summary and table).

``--smoke`` runs the same code on tiny sizes; with NUMBA_ENABLE_CUDASIM=1 it
runs in numba-cuda's simulator (the tests do that). Simulator timings mean
nothing; the smoke run checks that the script works end to end.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:      # run as a file: make the package importable
    sys.path.insert(0, str(ROOT))

import lstm_numba as ln  # noqa: E402
from lstm_numba import gpu  # noqa: E402
from lstm_numba._cuda_runner import TorchCudaRun  # noqa: E402
from lstm_numba.measure import make_problem, max_abs_err, measure, tolerance  # noqa: E402
from lstm_numba.reference import oracle64  # noqa: E402

FULL_GRID = {"batch": [1, 4, 8, 64], "hidden": [256, 512, 1024], "seq_len": [128, 1024]}
SMOKE_GRID = {"batch": [1], "hidden": [6], "seq_len": [2]}
EVENT_CALLS = 3          # calls with CUDA events per timed configuration
SLOW_CALL_S = 0.25       # a call this long is timed once (budget guard)


def log(msg=""):
    print(msg, flush=True)


def torch_or_none():
    if ln.why_unavailable().get("torch-cuda"):
        return None
    import torch

    return torch


def _simulated() -> bool:
    return gpu.simulator()


def _runner(backend, cell, w, **kw):
    if backend == "cuda-persistent" and _simulated():
        kw.setdefault("blocks", 1)
    return gpu.CudaRunner(cell, w, persistent=(backend == "cuda-persistent"), **kw)


def _tol(dtype) -> float:
    return tolerance(dtype).atol


# ------------------------------------------------------------------ checks

def check_cases(smoke):
    """(backend, runner options, cell, dtype, (T, B, I, H)) to check."""
    if smoke:
        shapes = {np.float32: [(2, 3, 5, 9)], np.float64: [(2, 1, 3, 6)]}
    else:
        # odd sizes; many steps over a multi-block persistent grid; B=64 with
        # an H that is no multiple of any tile; H=1024 with I != H
        shapes = {np.float32: [(5, 3, 45, 37), (64, 4, 256, 256), (33, 64, 100, 300),
                               (8, 3, 64, 1024)],
                  np.float64: [(5, 3, 45, 37), (16, 4, 128, 256)]}
    projections = ["kernel"] + (["cublas"] if gpu.cupy_or_none() is not None else [])
    cases = []
    for n, cell in enumerate(ln.CELLS):
        for dtype, shs in shapes.items():
            if smoke and n % 2 != list(shapes).index(dtype):
                continue   # smoke: one dtype per cell, alternating (the tests do the rest)
            for s, shape in enumerate(shs):
                for proj in projections:
                    cases.append(("cuda", {"projection": proj}, cell, dtype, shape))
                cases.append(("cuda-persistent", {"projection": projections[-1]},
                              cell, dtype, shape))
                cases.append(("torch-cuda", {}, cell, dtype, shape))
                if s == 0 and (not smoke or n == 0):
                    # the other launch paths, and weights read from L2
                    for launch in ("direct", "dispatch"):
                        cases.append(("cuda", {"launch": launch}, cell, dtype, shape))
                    cases.append(("cuda-persistent", {"shared_limit": 1, "registers": False},
                                  cell, dtype, shape))
    return cases


def _note(backend, ll):
    if backend == "cuda":
        note = (f"grid {ll.get('grid')} bt {ll.get('bt')} kw {ll.get('kw')} "
                f"path {ll.get('path')}")
        if ll.get("graph_error"):
            note += f" (graph failed: {ll['graph_error'][:200]})"
        return note
    return (f"{ll.get('blocks')} blocks x {ll.get('units')} units, bt {ll.get('bt')} "
            f"kw {ll.get('kw')}, weights {ll.get('weights')}")


def run_checks(smoke, torch, records):
    log("== checks against the float64 oracle (max |error| over outputs, h, c) ==")
    ok_all = True
    for backend, opts, cell, dtype, shape in check_cases(smoke):
        t, b, i, h = shape
        tag = ",".join(f"{k}={v}" for k, v in opts.items())
        rec = {"backend": backend, "projection": opts.get("projection", ""), "options": tag,
               "cell": cell, "dtype": np.dtype(dtype).name, "T": t, "B": b, "I": i, "H": h,
               "tol": _tol(dtype), "max_err": None, "ok": False, "note": ""}
        if backend == "torch-cuda" and torch is None:
            rec.update(ok=True, note="skipped: " + ln.why_unavailable().get("torch-cuda", ""))
            records.append(rec)
            continue
        try:
            x, w, h0, c0 = make_problem(cell, t, b, h, i, dtype, seed=t + b + i + h)
            if backend == "torch-cuda":
                run = TorchCudaRun(cell, w, x, h0, c0, tf32=False)
            else:
                run = _runner(backend, cell, w, **opts).device_run(x, h0, c0)
            got = run.result()
            ref = oracle64(cell, x, w, h0, c0)
            # c is an LSTM's unsquashed state: its error counts a quarter
            err = max(max_abs_err(got[:2], (ref.outputs, ref.h)),
                      0.0 if got[2] is None else max_abs_err(got[2:], (ref.c,)) / 4)
            rec["max_err"] = err
            rec["ok"] = bool(err <= rec["tol"] and got[0].dtype == dtype)
            if backend != "torch-cuda":
                rec["note"] = _note(backend, run.runner.last_launch)
        except ln.BackendUnavailable as e:
            rec.update(ok=True, note=f"unavailable: {e}")
        except Exception as e:  # record and go on: one failure must not hide the rest
            rec["note"] = f"ERROR {type(e).__name__}: {e}"
            traceback.print_exc()
        ok_all &= rec["ok"]
        records.append(rec)
        err = "-" if rec["max_err"] is None else f"{rec['max_err']:.2e}"
        log(f"  check {backend:16s} {tag:22s} {cell:4s} {rec['dtype']:7s} "
            f"T{t} B{b} I{i} H{h}: err {err} tol {rec['tol']:.0e} "
            f"{'ok' if rec['ok'] else 'FAIL'} {rec['note']}")
    ok_all &= _check_nan(records) & _check_too_big(smoke, records)
    log(f"== checks: {'all ok' if ok_all else 'SOME FAILED'} ==")
    return ok_all


def _check_nan(records):
    """NaN in x[1, 0, 0]: batch row 0 is NaN from step 1 on, row 1 never."""
    ok_all = True
    for backend in ("cuda", "cuda-persistent"):
        rec = {"backend": backend, "cell": "lstm", "dtype": "float32", "check": "nan",
               "ok": False, "note": ""}
        try:
            h = 5 if _simulated() else 40
            x, w, h0, c0 = make_problem("lstm", 4, 2, h, None, np.float32, seed=3)
            x[1, 0, 0] = np.nan
            out, h, c = _runner(backend, "lstm", w)(x, h0, c0)
            rec["ok"] = bool(not np.isnan(out[0]).any() and np.isnan(out[1:, 0]).all()
                             and np.isnan(c[0]).all() and not np.isnan(out[:, 1]).any())
        except Exception as e:
            rec["note"] = f"ERROR {type(e).__name__}: {e}"
        log(f"  check {backend:16s} NaN in x[1,0,0] -> NaN only in row 0 from step 1: "
            f"{'ok' if rec['ok'] else 'FAIL'} {rec['note']}")
        records.append(rec)
        ok_all &= rec["ok"]
    return ok_all


def _check_too_big(smoke, records):
    """A persistent grid over the cooperative limit raises BackendUnavailable, naming it."""
    h, blocks = (8, 2) if _simulated() else (4096, 4096)
    rec = {"backend": "cuda-persistent", "cell": "rnn", "dtype": "float32",
           "check": "too-big", "ok": False, "note": ""}
    x, w, h0, _ = make_problem("rnn", 2, 1, h, 3, np.float32, seed=1)
    try:
        gpu.CudaRunner("rnn", w, persistent=True, blocks=blocks)(x, h0)
        rec["note"] = f"no error with {blocks} blocks"
    except ln.BackendUnavailable as e:
        rec["ok"] = "max_cooperative_grid_blocks" in str(e)
        rec["note"] = str(e)[:200]
    except Exception as e:
        rec["note"] = f"ERROR {type(e).__name__}: {e}"
    log(f"  check cuda-persistent    {blocks} blocks at H={h} -> BackendUnavailable: "
        f"{'ok' if rec['ok'] else 'FAIL'} {rec['note']}")
    records.append(rec)
    return rec["ok"]


# ------------------------------------------------------------------ barrier

def barrier_probe(hiddens, results):
    """us per grid barrier at the persistent kernel's grid sizes (real GPU only)."""
    log("== the grid barrier alone (empty persistent loop, CUDA events) ==")
    if _simulated():
        log("  skipped: simulator")
        return results
    from numba import cuda

    from lstm_numba import _cuda_persistent as P

    sms = int(cuda.get_current_device().MULTIPROCESSOR_COUNT)
    for blocks in sorted({1, sms} | {P.plan_persistent(4, h, 1, 4, sms, 1 << 30)["blocks"]
                                     for h in hiddens}):
        try:
            r = P.time_barrier(blocks)
            results.append(r)
            log(f"  {blocks} blocks x {r['threads']} threads: {r['us_per_barrier']:.3f} us")
        except Exception as e:
            results.append({"blocks": blocks, "error": f"{type(e).__name__}: {e}"})
            log(f"  {blocks} blocks: ERROR {type(e).__name__}: {e}")
    return results


# ------------------------------------------------------------------ timings

def _issue_us(run, calls=EVENT_CALLS):
    """Host microseconds to issue one call (returns before the GPU is done;
    median of a few calls, each then synchronised)."""
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        run.call()
        out.append((time.perf_counter() - t0) * 1e6)
        run.sync()
    return statistics.median(out)


def _event_split(run, backend, torch, t_len, calls=EVENT_CALLS):
    """GPU ms of a call's parts from CUDA events (median of a few calls)."""
    parts = []
    if backend == "torch-cuda":
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        for _ in range(calls):
            e0.record()
            run.call()
            e1.record()
            run.sync()
            parts.append({"recurrence_ms": e0.elapsed_time(e1), "projection_ms": 0.0,
                          "copy_ms": 0.0})
    else:
        r = run.runner
        r.record_events = True
        try:
            for _ in range(calls):
                run.call()
                run.sync()
                parts.append(r.read_events())
        finally:
            r.record_events = False
    return {k: statistics.median(p[k] for p in parts) for k in parts[0]}


def _variants(args, b, h):
    """(backend, variant, runner options) timed at batch ``b``, hidden ``h``."""
    # cuDNN first: its outputs are the reference every other row of this
    # configuration is compared with (each timed tile checked on the GPU)
    out = [("torch-cuda", "fp32", {}), ("cuda", "graph", {"launch": "graph"})]
    if b == 1:
        out.append(("cuda", "direct", {"launch": "direct"}))
        if h == min(SMOKE_GRID["hidden"] if args.smoke else FULL_GRID["hidden"]):
            out.append(("cuda", "dispatch", {"launch": "dispatch"}))
    if gpu.cupy_or_none() is not None and (b == 1 or args.own_gemm):
        # the project's projection kernel: prepared, so its host cost is a
        # launch (CuPy's matmul costs more host time; at B=1 that shows)
        out.append(("cuda", "graph,kernel-proj", {"launch": "graph", "projection": "kernel"}))
        out.append(("cuda-persistent", "direct,kernel-proj", {"projection": "kernel"}))
    out.append(("cuda-persistent", "direct", {}))
    if b == 1 and h < 1024:   # where the weights go to registers: shared memory beside
        out.append(("cuda-persistent", "direct,shared-w", {"registers": False}))
    if not args.smoke:
        out.append(("torch-cuda", "tf32", {}))
    return out


def timing_rows(args, torch, out_dir, results, barriers, deadline):
    grid = SMOKE_GRID if args.smoke else FULL_GRID
    m_kw = (dict(min_calls=1, max_calls=1, budget_s=0.0) if args.smoke
            else dict(min_calls=3, max_calls=args.repeat, budget_s=args.per_case_s))
    # The issue's headline sizes first, cells innermost: a run cut short by
    # the budget still has them, for every cell. One runner per (cell,
    # backend, variant, H), reused over T and B (per-shape state cached, as
    # a user would).
    runners = {}
    for h, t, b in _configs(grid):
        for cell in args.cells:
            x, w, h0, c0 = make_problem(cell, t, b, h, None, np.float32, seed=0)
            fl = ln.flops(cell, t, b, h, h)
            ref = None             # cuDNN's (outputs, h, c) for this configuration
            for backend, variant, opts in _variants(args, b, h):
                row = {"cell": cell, "B": b, "H": h, "T": t, "backend": backend,
                       "variant": variant, "ms": None, "us_per_step": None,
                       "gflops": None, "proj_ms": None, "repeats": 0, "note": "",
                       "stat": None, "kernel_us_per_step": None, "host_us": None,
                       "copy_ms": None, "launch_path": None, "first_s": None,
                       "issue_us": None}
                if time.perf_counter() > deadline:
                    row["note"] = "skipped: time budget spent"
                    results.append(row)
                    continue
                try:
                    if backend == "torch-cuda":
                        if torch is None:
                            raise ln.BackendUnavailable(
                                ln.why_unavailable().get("torch-cuda", "no torch"))
                        run = TorchCudaRun(cell, w, x, h0, c0, tf32=(variant == "tf32"))
                    else:
                        key = (cell, backend, variant, h)
                        if key not in runners:
                            runners[key] = _runner(backend, cell, w, **opts)
                        run = runners[key].device_run(x, h0, c0)
                    # a warm-up call (compile, graph capture, cuDNN's plan)
                    # and one timed call; repeats only where a call is
                    # short, so one slow design cannot eat the budget
                    m = measure(run.call, sync=run.sync, warmup=1, min_calls=1,
                                max_calls=1, budget_s=0.0)
                    first_s = m.first_s
                    n_extra = 1
                    if m.value < SLOW_CALL_S:
                        m = measure(run.call, sync=run.sync, warmup=0, **m_kw)
                        n_extra = EVENT_CALLS
                    sec = m.value
                    row.update(ms=sec * 1e3, us_per_step=sec * 1e6 / t,
                               gflops=fl / sec / 1e9, repeats=m.n, stat=m.describe(),
                               first_s=first_s)
                    row["issue_us"] = _issue_us(run, n_extra)
                    split = _event_split(run, backend, torch, t, n_extra)
                    if _simulated():     # the simulator's events time nothing
                        split = dict.fromkeys(split, 0.0)
                    gpu_ms = split["projection_ms"] + split["copy_ms"] + \
                        split["recurrence_ms"]
                    row.update(kernel_us_per_step=split["recurrence_ms"] * 1e3 / t,
                               proj_ms=split["projection_ms"],
                               copy_ms=split["copy_ms"],
                               host_us=max(0.0, (sec * 1e3 - gpu_ms) * 1e3))
                    if backend == "torch-cuda" and variant == "fp32":
                        ref = run.result()
                    elif ref is not None and backend != "torch-cuda":
                        got = run.result()
                        row["err_vs_cudnn"] = max_abs_err(got, ref)
                    if backend != "torch-cuda":
                        ll = run.runner.last_launch
                        row["launch_path"] = ll.get("path")
                        row["note"] = _note(backend, ll)
                        if backend == "cuda-persistent":
                            row["barrier_us"] = _barrier_for(barriers, ll.get("blocks"))
                    del run
                except ln.BackendUnavailable as e:
                    row["note"] = f"n/a: {e}"
                except Exception as e:
                    row["note"] = f"ERROR {type(e).__name__}: {e}"
                    traceback.print_exc()
                results.append(row)
                _progress(row)
            write_outputs(out_dir, results=results)
    runners.clear()
    return results


HEADLINE = [(256, 1024, 1), (1024, 1024, 1), (512, 1024, 8), (256, 1024, 64),
            (1024, 1024, 64)]
"""(H, T, B) of the issue's compact table: timed first."""


def _configs(grid):
    every = [(h, t, b) for t in grid["seq_len"] for h in grid["hidden"]
             for b in grid["batch"]]
    return [c for c in HEADLINE if c in every] + [c for c in every if c not in HEADLINE]


def _barrier_for(barriers, blocks):
    for r in barriers:
        if r.get("blocks") == blocks and "us_per_barrier" in r:
            return r["us_per_barrier"]
    return None


def _progress(row):
    ms = "-" if row["ms"] is None else f"{row['ms']:.3f} ms"
    k = row.get("kernel_us_per_step")
    k = "" if k is None else (f" kernel {k:.2f} us/step, issue {row['issue_us']:.0f} us, "
                              f"wall-GPU {row['host_us']:.0f} us")
    log(f"  time {row['cell']} B{row['B']} H{row['H']} T{row['T']} "
        f"{row['backend']}[{row['variant']}]: {ms}{k} {row['note'][:100]}")


def add_ratios(rows, prefer="fp32"):
    """Throughput relative to cuDNN (``prefer``: its fp32 or tf32 row, else the
    other); the barrier's share of a persistent step."""
    base = {}
    for r in rows:
        if r["backend"] == "torch-cuda" and r["ms"] is not None:
            key = (r["cell"], r["B"], r["H"], r["T"])
            if key not in base or r["variant"] == prefer:
                base[key] = r["ms"]
    for r in rows:
        ref = base.get((r["cell"], r["B"], r["H"], r["T"]))
        r["x_cudnn"] = None if ref is None or r["ms"] is None else ref / r["ms"]
        if r.get("barrier_us") and r.get("kernel_us_per_step"):
            r["barrier_fraction"] = r["barrier_us"] / r["kernel_us_per_step"]
    return rows


# ------------------------------------------------------------------ output

_STATE = {"env": {}, "checks": [], "barrier": [], "timings": []}
FIELDS = ["cell", "B", "H", "T", "backend", "variant", "ms", "us_per_step", "gflops",
          "x_cudnn", "proj_ms", "repeats", "note", "stat", "kernel_us_per_step", "host_us",
          "copy_ms", "launch_path", "barrier_us", "barrier_fraction", "first_s", "issue_us",
          "err_vs_cudnn"]


def write_outputs(out_dir, env=None, checks=None, results=None, barrier=None):
    for k, v in (("env", env), ("checks", checks), ("timings", results), ("barrier", barrier)):
        if v is not None:
            _STATE[k] = v
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(_STATE, indent=1, default=str))
    with open(out_dir / "gpu_check.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=FIELDS, extrasaction="ignore")
        wr.writeheader()
        for r in _STATE["timings"]:
            wr.writerow({k: r.get(k) for k in FIELDS})


def _worst(rows, key="x_cudnn"):
    rows = [r for r in rows if r.get(key) is not None]
    return min(rows, key=lambda r: r[key]) if rows else None


def summary_lines(rows, barriers):
    """The issue's targets, stated from this run's numbers."""
    lines = []
    ok = [r for r in rows if r.get("ms") is not None]
    pers = [r for r in ok if r["backend"] == "cuda-persistent" and r["variant"] == "direct"]
    step = [r for r in ok if r["backend"] == "cuda" and r["variant"] == "graph"]
    own = {v: [r for r in ok if r["variant"] == v]
           for v in ("graph,kernel-proj", "direct,kernel-proj")}

    def at(r):
        return f"{r['cell']} B{r['B']} H{r['H']} T{r['T']}"

    for label, sel, target in (
            ("cuda-persistent / cuDNN, B<=8", [r for r in pers if r["B"] <= 8], ">= 1.0"),
            ("cuda-persistent / cuDNN, B=64", [r for r in pers if r["B"] == 64], ">= 0.5"),
            ("cuda[graph] / cuDNN, every B, H", step, ">= 0.5")):
        w = _worst(sel)
        if w:
            lines.append(f"{label}: min {w['x_cudnn']:.2f}x ({at(w)}), target {target}")
    for name, sel in (("cuda[graph]", step), ("cuda-persistent", pers),
                      ("cuda[graph,kernel-proj]", own["graph,kernel-proj"]),
                      ("cuda-persistent[direct,kernel-proj]", own["direct,kernel-proj"])):
        for key, what in (("issue_us", "host time to issue a call"),
                          ("host_us", "wall minus GPU time per call")):
            hs = [r for r in sel if r.get(key) is not None]
            if hs:
                worst = max(hs, key=lambda r: r[key])
                lines.append(f"{what}, {name}: median over configs "
                             f"{statistics.median(r[key] for r in hs):.1f} us, max "
                             f"{worst[key]:.1f} us ({at(worst)}), target <= 30 us")
    for name, sel, target in (("cuda-persistent", pers, 2.5), ("cuda[graph]", step, 4.0)):
        b1 = [r for r in sel if r["cell"] == "lstm" and r["B"] == 1 and r["H"] == 256]
        for r in b1:
            lines.append(f"LSTM B=1 H=256 T{r['T']} {name}: {r['us_per_step']:.2f} us/step "
                         f"wall, {r['kernel_us_per_step']:.2f} in-kernel, target <= {target}")
    for r in barriers:
        if "us_per_barrier" in r:
            lines.append(f"grid barrier alone, {r['blocks']} blocks x {r['threads']}: "
                         f"{r['us_per_barrier']:.2f} us")
    fr = [r["barrier_fraction"] for r in pers if r.get("barrier_fraction")]
    if fr:
        lines.append(f"barrier / persistent in-kernel step: {min(fr):.0%} to {max(fr):.0%} "
                     f"(median {statistics.median(fr):.0%})")
    errs = [r for r in ok if r.get("err_vs_cudnn") is not None]
    if errs:
        worst = max(errs, key=lambda r: r["err_vs_cudnn"])
        lines.append(f"max |ours - cuDNN fp32| over every timed row: {worst['err_vs_cudnn']:.1e} "
                     f"({_label(worst)} {at(worst)}; float32 both, T steps)")
    paths = sorted({r["launch_path"] for r in step if r.get("launch_path")})
    if paths:
        lines.append(f"cuda launch path used: {', '.join(paths)}")
    return lines


def _label(r):
    return f"{r['backend']}[{r['variant']}]"


def _g(v, spec=".4g"):
    return "-" if v is None else format(v, spec)


def table(rows, full=False):
    """Markdown table, one row per (config, backend variant), ratios to cuDNN fp32.

    The printed one is compact (it must fit the last screen of a remote
    run's output); ``full`` adds the cell, the split and the notes.
    """
    cols = ["B", "H", "T", "backend", "us/step", "kernel us/step", "issue us", "x cuDNN"]
    if full:
        cols = ["cell"] + cols + ["ms", "GFLOP/s", "proj ms", "wall-GPU us", "barrier %",
                                  "stat", "note"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        vals = [r["B"], r["H"], r["T"], _label(r), _g(r["us_per_step"]),
                _g(r.get("kernel_us_per_step")), _g(r.get("issue_us"), ".0f"),
                _g(r.get("x_cudnn"), ".2f")]
        if full:
            bf = r.get("barrier_fraction")
            vals = [r["cell"]] + vals + [
                _g(r["ms"]), _g(r["gflops"], ".0f" if (r["gflops"] or 0) >= 10 else ".3g"),
                _g(r["proj_ms"]), _g(r.get("host_us"), ".0f"),
                "-" if bf is None else f"{bf:.0%}", r.get("stat") or "-",
                r["note"][:160]]
        elif r["ms"] is None:
            vals[4] = (r["note"] or "-")[:40]
        out.append("| " + " | ".join(str(v) for v in vals) + " |")
    return out


def environment(torch, tf32):
    from numba import config

    env = {"python": platform.python_version(), "numpy": np.__version__,
           "simulator": bool(config.ENABLE_CUDASIM), "tf32_cudnn": bool(tf32),
           "statistic": "median of repeated calls, each ended by a device synchronisation"}
    from importlib.metadata import version

    for mod, dist in (("numba", "numba"), ("numba_cuda", "numba-cuda"),
                      ("cuda_core", "cuda-core")):
        try:
            env[mod] = version(dist)
        except Exception as e:
            env[mod] = f"? ({e})"
    cp = gpu.cupy_or_none()
    env["cupy"] = None if cp is None else cp.__version__
    env["projection_auto"] = "cublas" if cp is not None else "kernel"
    env["cpu"] = platform.processor() or platform.machine()
    if torch is not None:
        env["torch"] = torch.__version__
        env["cudnn"] = torch.backends.cudnn.version()
        env["torch_device"] = torch.cuda.get_device_name(0)
    if not env["simulator"]:
        from numba import cuda

        dev = cuda.get_current_device()
        env["gpu"] = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
        env["compute_capability"] = dev.compute_capability
        env["sm_count"] = int(dev.MULTIPROCESSOR_COUNT)
        env["shared_per_block_optin"] = int(dev.MAX_SHARED_MEMORY_PER_BLOCK_OPTIN)
        env["cooperative_launch"] = bool(dev.COOPERATIVE_LAUNCH)
    return env


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.environ.get("OUT") or "gpu_check_out",
                    help="directory for gpu_check.csv/json/md (default $OUT or ./gpu_check_out)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (runs in the simulator with NUMBA_ENABLE_CUDASIM=1)")
    ap.add_argument("--cells", default=None,
                    help="comma-separated cells to time (default all; lstm with --smoke); "
                         "the checks always cover all")
    ap.add_argument("--tf32", action="store_true",
                    help="let cuDNN use TF32 in the baseline row (a tf32 row is added anyway)")
    ap.add_argument("--own-gemm", action="store_true",
                    help="time the project's own projection kernel at every B (default B=1)")
    ap.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    ap.add_argument("--repeat", type=int, default=20, help="max timed calls per case")
    ap.add_argument("--per-case-s", type=float, default=0.12,
                    help="seconds of timed calls per case once 3 are done")
    ap.add_argument("--budget-s", type=float, default=420.0,
                    help="no new timing starts after this many seconds of the whole run")
    args = ap.parse_args(argv)
    if args.cells is None:
        args.cells = "lstm" if args.smoke else ",".join(ln.CELLS)
    args.cells = [c.strip() for c in args.cells.split(",") if c.strip()]
    for c in args.cells:
        if c not in ln.CELLS:
            ap.error(f"unknown cell {c!r}; valid cells are {ln.CELLS}")
    t_start = time.perf_counter()
    deadline = t_start + args.budget_s
    out_dir = Path(args.out)

    reason = gpu.unavailable("cuda")
    if reason:
        log(f"cuda backends unavailable: {reason}")
        return 2
    torch = torch_or_none()
    env = environment(torch, args.tf32)
    log("== environment ==")
    for k, v in env.items():
        log(f"  {k}: {v}")
    if env["simulator"]:
        log("  NOTE: numba-cuda simulator: timings below are meaningless")
    write_outputs(out_dir, env=env)

    checks = []
    ok = True
    if not args.no_check:
        ok = run_checks(args.smoke, torch, checks)
        write_outputs(out_dir, checks=checks)

    grid = SMOKE_GRID if args.smoke else FULL_GRID
    barriers = barrier_probe(grid["hidden"], [])
    write_outputs(out_dir, barrier=barriers)

    log("== timings (float32, inputs on the device, median of repeats, sync per call) ==")
    rows = timing_rows(args, torch, out_dir, [], barriers, deadline)
    rows.sort(key=lambda r: (r["T"], r["H"], r["B"]))     # stable: backends keep their order
    add_ratios(rows, prefer="tf32" if args.tf32 else "fp32")
    env["elapsed_s"] = round(time.perf_counter() - t_start, 1)
    write_outputs(out_dir, env=env, results=rows)
    log(f"== done in {env['elapsed_s']} s; files in {out_dir} ==")
    summary = summary_lines(rows, barriers)
    (out_dir / "gpu_check.md").write_text(
        "\n".join(summary) + "\n\n" + "\n".join(table(rows, full=True)) + "\n")
    for line in summary:
        log(line)
    if not ok:
        log("SOME CHECKS FAILED (see above)")
    log("")
    for cell in args.cells:
        log(f"{cell}, float32 (median; x cuDNN: throughput over cuDNN's with TF32 "
            f"{'on' if args.tf32 else 'off'}; > 1 is faster)")
        log("\n".join(table([r for r in rows if r["cell"] == cell])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
