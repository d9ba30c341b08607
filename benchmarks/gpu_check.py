#!/usr/bin/env python
"""Check every CUDA backend against the oracle, then race them against cuDNN.

One self-contained run for a GPU machine (no asv needed)::

    PYTHONPATH=. python benchmarks/gpu_check.py --out "$OUT"

1. Environment: GPU, driver, versions, the TF32 setting used for cuDNN.
2. Checks: ``cuda`` (both input projections where CuPy is present),
   ``cuda-persistent`` (default grid: one block per SM, so the grid-wide
   barrier really synchronises many blocks) and ``torch-cuda`` against the
   float64 NumPy oracle, all cells, both dtypes, odd sizes.
3. Timings (float32): ``cuda``, ``cuda-persistent`` and ``torch-cuda`` over
   B in {1, 4, 8, 64}, H in {256, 512, 1024}, T in {128, 1024} (LSTM; add
   ``--cells lstm,gru,rnn``). Inputs already on the device; each call ends
   with a device synchronisation; a warm-up call first (compile excluded);
   the median of the repeats. cuDNN runs with TF32 off (``--tf32`` turns it
   on), so that both sides do float32 arithmetic; a ``torch-cuda+tf32`` row
   shows what tensor cores add.
4. The table, printed last: ms per sequence, us per step, GFLOP/s
   (DeepBench FLOPs), and throughput relative to cuDNN (>1 is faster).

Results go to ``--out`` (default ``$OUT`` or ./gpu_check_out) as
``gpu_check.csv`` and ``gpu_check.json``, rewritten after every row so that
a run cut short still leaves its data, and ``gpu_check.md`` (the summary
and the table with notes) at the end.

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
from lstm_numba.reference import oracle64  # noqa: E402
from benchmarks.common import make_problem  # noqa: E402  (seeded inputs, as the asv suite)

TOL = {np.dtype(np.float32): 5e-5, np.dtype(np.float64): 1e-11}

FULL_GRID = {"batch": [1, 4, 8, 64], "hidden": [256, 512, 1024], "seq_len": [128, 1024]}
SMOKE_GRID = {"batch": [1, 3], "hidden": [6], "seq_len": [2]}


def log(msg=""):
    print(msg, flush=True)


def torch_or_none():
    if ln.why_unavailable().get("torch-cuda"):
        return None
    import torch

    return torch


# ------------------------------------------------------------------ runners

class OursTimed:
    """A CudaRunner with inputs uploaded once: ``call()`` = forward + sync."""

    def __init__(self, cell, w, x, h0, c0, persistent, projection, blocks=None, launch=None):
        self.runner = gpu.CudaRunner(cell, w, persistent=persistent, projection=projection,
                                     blocks=blocks, launch=launch)
        self.args = self.runner.upload(x, h0, c0)

    def call(self):
        self.runner.forward_device(*self.args)
        self.runner.synchronize()

    def result(self):
        out, h, c = self.runner.forward_device(*self.args)
        self.runner.synchronize()
        return out.copy_to_host(), h.copy_to_host(), None if c is None else c.copy_to_host()

    def project_only(self):
        """Time of the input projection alone (same buffers), synchronised."""
        d_x = self.args[0]
        ws = self.runner._workspace(d_x.shape[0], d_x.shape[1])
        self.runner._project(d_x, ws["xp"])
        self.runner.synchronize()


class TorchTimed:
    """``nn.RNN/LSTM/GRU`` on the GPU with device-resident inputs."""

    def __init__(self, torch, cell, w, x, h0, c0, tf32):
        from lstm_numba.peers import to_torch

        self.torch = torch
        torch.backends.cudnn.allow_tf32 = bool(tf32)
        torch.backends.cuda.matmul.allow_tf32 = bool(tf32)
        self.tf32 = bool(tf32)
        self.cell = cell
        self.module = to_torch(cell, w, "cuda")
        dev = "cuda"
        self.x = torch.from_numpy(x).to(dev)
        self.h0 = torch.from_numpy(h0).to(dev)[None]
        self.c0 = None if c0 is None else torch.from_numpy(c0).to(dev)[None]

    def _run(self):
        torch = self.torch
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        with torch.inference_mode():
            if self.cell == "lstm":
                out, (h, c) = self.module(self.x, (self.h0, self.c0))
            else:
                out, h = self.module(self.x, self.h0)
                c = None
        return out, h, c

    def call(self):
        self._run()
        self.torch.cuda.synchronize()

    def result(self):
        out, h, c = self._run()
        self.torch.cuda.synchronize()
        return (out.cpu().numpy(), h[0].cpu().numpy(),
                None if c is None else c[0].cpu().numpy())


def timed(fn, repeat_min, repeat_max, budget_s):
    """Median seconds of ``fn()`` (each call synchronises), after one warm-up."""
    fn()                                   # compile / cuDNN plan: not timed
    times = []
    start = time.perf_counter()
    while len(times) < repeat_min or (len(times) < repeat_max
                                      and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), len(times)


# ------------------------------------------------------------------ checks

def check_cases(smoke):
    """(backend, options, cell, dtype, (T, B, I, H)) to check."""
    cases = []
    if smoke:
        shapes = {np.float32: [(2, 3, 5, 9)], np.float64: [(2, 1, 3, 6)]}
    else:
        shapes = {np.float32: [(5, 3, 45, 37), (16, 4, 256, 256), (8, 3, 64, 1024)],
                  np.float64: [(5, 3, 45, 37), (16, 4, 128, 256)]}
    projections = ["kernel"] + (["cublas"] if gpu.cupy_or_none() is not None else [])
    for n, cell in enumerate(ln.CELLS):
        for dtype, shs in shapes.items():
            if smoke and n % 2 != list(shapes).index(dtype):
                continue   # smoke: one dtype per cell, alternating (the tests do the rest)
            for shape in shs:
                for proj in projections:
                    cases.append(("cuda", {"projection": proj}, cell, dtype, shape))
                cases.append(("cuda-persistent", {"projection": projections[-1]},
                              cell, dtype, shape))
                cases.append(("torch-cuda", {}, cell, dtype, shape))
    return cases


def run_checks(smoke, torch, records):
    log("== checks against the float64 oracle (max |error| over outputs, h, c) ==")
    ok_all = True
    for backend, opts, cell, dtype, shape in check_cases(smoke):
        t, b, i, h = shape
        rec = {"backend": backend, "projection": opts.get("projection", ""), "cell": cell,
               "dtype": np.dtype(dtype).name, "T": t, "B": b, "I": i, "H": h,
               "tol": TOL[np.dtype(dtype)], "max_err": None, "ok": False, "note": ""}
        if backend == "torch-cuda" and torch is None:
            rec.update(ok=True, note="skipped: " + ln.why_unavailable().get("torch-cuda", ""))
            records.append(rec)
            continue
        try:
            x, w, h0, c0 = make_problem(cell, t, b, h, i, dtype, seed=t + b + i + h)
            if backend == "torch-cuda":
                r = TorchTimed(torch, cell, w, x, h0, c0, tf32=False)
            else:
                r = OursTimed(cell, w, x, h0, c0, backend == "cuda-persistent", **opts)
            out, hh, cc = r.result()
            ref = oracle64(cell, x, w, h0, c0)
            err = max(float(np.max(np.abs(out - ref.outputs))),
                      float(np.max(np.abs(hh - ref.h))),
                      0.0 if cc is None else float(np.max(np.abs(cc - ref.c))) / 4)
            rec["max_err"] = err
            rec["ok"] = bool(err <= rec["tol"] and out.dtype == dtype)
            if backend != "torch-cuda":
                ll = r.runner.last_launch
                rec["note"] = (f"grid {ll.get('grid')}" if backend == "cuda-persistent"
                               else f"grid {ll.get('grid')}, ks {ll.get('ks')}")
        except ln.BackendUnavailable as e:
            rec.update(ok=True, note=f"unavailable: {e}")
        except Exception as e:  # record and go on: one failure must not hide the rest
            rec["note"] = f"ERROR {type(e).__name__}: {e}"
            traceback.print_exc()
        ok_all &= rec["ok"]
        records.append(rec)
        err = "-" if rec["max_err"] is None else f"{rec['max_err']:.2e}"
        log(f"  check {backend:16s} {rec['projection']:7s} {cell:4s} {rec['dtype']:7s} "
            f"T{t} B{b} I{i} H{h}: err {err} tol {rec['tol']:.0e} "
            f"{'ok' if rec['ok'] else 'FAIL'} {rec['note']}")
    log(f"== checks: {'all ok' if ok_all else 'SOME FAILED'} ==")
    return ok_all


# ------------------------------------------------------------------ timings

def timing_rows(args, torch, out_dir, results, deadline):
    grid = SMOKE_GRID if args.smoke else FULL_GRID
    cells = args.cells
    have_cupy = gpu.cupy_or_none() is not None
    # (backend, projection or cuDNN math, launch path, batches it runs at)
    every = None
    variants = [("cuda", "auto", "direct", every),
                # the same with Numba's public launch path: its host cost per step
                ("cuda", "auto", "dispatch", {1}),
                ("cuda-persistent", "auto", "direct", every)]
    if have_cupy and not args.no_own_gemm:
        variants.insert(1, ("cuda", "kernel", "direct", every))   # measure both projections
    variants.append(("torch-cuda", "tf32" if args.tf32 else "fp32", "", every))
    if not args.tf32 and not args.smoke:
        variants.append(("torch-cuda", "tf32", "", every))
    rep_min, rep_max, budget = (1, 1, 0.0) if args.smoke else (3, args.repeat, args.per_case_s)
    for cell in cells:
        for t in grid["seq_len"]:
            for h in grid["hidden"]:
                for b in grid["batch"]:
                    x, w, h0, c0 = make_problem(cell, t, b, h, None, np.float32, seed=0)
                    fl = ln.flops(cell, t, b, h, h)
                    for backend, variant, launch, only in variants:
                        if only is not None and (args.smoke or b not in only):
                            continue
                        row = {"cell": cell, "B": b, "H": h, "T": t, "backend": backend,
                               "variant": variant, "ms": None, "us_per_step": None,
                               "gflops": None, "proj_ms": None, "repeats": 0, "note": ""}
                        if time.perf_counter() > deadline:
                            row["note"] = "skipped: time budget spent"
                            results.append(row)
                            continue
                        try:
                            if backend == "torch-cuda":
                                if torch is None:
                                    raise ln.BackendUnavailable(
                                        ln.why_unavailable().get("torch-cuda", "no torch"))
                                r = TorchTimed(torch, cell, w, x, h0, c0, variant == "tf32")
                            else:
                                kw = {"blocks": 1} if gpu.simulator() and \
                                    backend == "cuda-persistent" else {}
                                r = OursTimed(cell, w, x, h0, c0, backend == "cuda-persistent",
                                              variant, launch=launch, **kw)
                                row["variant"] = r.runner.projection
                            sec, n = timed(r.call, rep_min, rep_max, budget)
                            if backend != "torch-cuda":
                                row["variant"] += f",{r.runner.last_launch['path']}"
                            row.update(ms=sec * 1e3, us_per_step=sec * 1e6 / t,
                                       gflops=fl / sec / 1e9, repeats=n)
                            if backend == "cuda-persistent":
                                ll = r.runner.last_launch
                                row["note"] = (f"{ll['blocks']} blocks x {ll['units']} units"
                                               f"{', h staged' if ll['stage_h'] else ''}")
                            elif backend == "cuda":
                                ps, _ = timed(r.project_only, rep_min, rep_max, budget / 4)
                                row["proj_ms"] = ps * 1e3
                            del r
                        except ln.BackendUnavailable as e:
                            row["note"] = f"n/a: {e}"
                        except Exception as e:
                            row["note"] = f"ERROR {type(e).__name__}: {e}"
                            traceback.print_exc()
                        results.append(row)
                        _progress(row)
                    write_outputs(out_dir, results=results)
    return results


def _progress(row):
    ms = "-" if row["ms"] is None else f"{row['ms']:.3f} ms"
    log(f"  time {row['cell']} B{row['B']} H{row['H']} T{row['T']} "
        f"{row['backend']}[{row['variant']}]: {ms} {row['note'][:100]}")


def add_ratios(rows):
    """Throughput relative to cuDNN fp32 (or tf32 when that was the baseline)."""
    base = {}
    for r in rows:
        if r["backend"] == "torch-cuda" and r["ms"] is not None:
            key = (r["cell"], r["B"], r["H"], r["T"])
            if key not in base or r["variant"] == "fp32":
                base[key] = r["ms"]
    for r in rows:
        ref = base.get((r["cell"], r["B"], r["H"], r["T"]))
        r["x_cudnn"] = None if ref is None or r["ms"] is None else ref / r["ms"]
    return rows


# ------------------------------------------------------------------ output

_STATE = {"env": {}, "checks": [], "timings": []}


def write_outputs(out_dir, env=None, checks=None, results=None):
    if env is not None:
        _STATE["env"] = env
    if checks is not None:
        _STATE["checks"] = checks
    if results is not None:
        _STATE["timings"] = results
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "gpu_check.json").write_text(json.dumps(_STATE, indent=1, default=str))
    fields = ["cell", "B", "H", "T", "backend", "variant", "ms", "us_per_step", "gflops",
              "x_cudnn", "proj_ms", "repeats", "note"]
    with open(out_dir / "gpu_check.csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        wr.writeheader()
        for r in _STATE["timings"]:
            wr.writerow({k: r.get(k) for k in fields})


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def summary_lines(rows):
    """The issue's targets, stated from this run's numbers."""
    lines = []
    ours = [r for r in rows if r["backend"] != "torch-cuda" and r.get("x_cudnn") is not None]
    pers = [r for r in ours if r["backend"] == "cuda-persistent" and r["B"] <= 8]
    if pers:
        worst = min(pers, key=lambda r: r["x_cudnn"])
        lines.append(f"cuda-persistent vs cuDNN at B<=8 (where it fits): min "
                     f"{worst['x_cudnn']:.2f}x (B{worst['B']} H{worst['H']} T{worst['T']}), "
                     f"target >= 1.0x")
    for proj in ("cublas", "kernel"):
        big = [r for r in ours if r["backend"] == "cuda" and r["B"] == 64
               and r["variant"] == f"{proj},direct"]
        if big:
            worst = min(big, key=lambda r: r["x_cudnn"])
            lines.append(f"cuda ({proj} projection) vs cuDNN at B=64: min "
                         f"{worst['x_cudnn']:.2f}x (H{worst['H']} T{worst['T']}), target >= 0.5x")
    floors = (("cuda", "direct"), ("cuda", "dispatch"), ("cuda-persistent", "direct"),
              ("torch-cuda", "fp32"))
    for name, tag in floors:
        b1 = [r for r in rows if r["backend"] == name and r["B"] == 1 and r["ms"] is not None
              and tag in r["variant"]]
        if b1:
            floor = min(b1, key=lambda r: r["us_per_step"])
            lines.append(f"per-step floor at B=1, {name} [{floor['variant']}]: "
                         f"{floor['us_per_step']:.2f} us/step (H{floor['H']} T{floor['T']})")
    return lines


def _label(r):
    """``backend[variant]`` with the variant cut to what tells rows apart."""
    v = r["variant"]
    if r["backend"] == "torch-cuda":
        return f"torch-cuda[{v}]"
    proj, _, path = v.partition(",")
    bits = [proj] if r["backend"] == "cuda" else []
    if path == "dispatch":
        bits.append("dispatch")
    return r["backend"] + (f"[{','.join(bits)}]" if bits else "")


def _g(v, spec=".4g"):
    return "-" if v is None else format(v, spec)


def table(rows, full=False):
    """Markdown table, one row per (config, backend variant), ratios to cuDNN fp32.

    The printed one is compact (it must fit the last screen of a remote
    run's output); ``full`` adds the cell, the variant, the projection time
    and the notes.
    """
    cols = ["B", "H", "T", "backend", "ms", "us/step", "GFLOP/s", "x cuDNN"]
    if full:
        cols = ["cell"] + cols + ["variant", "proj ms", "note"]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        vals = [r["B"], r["H"], r["T"], _label(r), _g(r["ms"]), _g(r["us_per_step"]),
                _g(r["gflops"], ".0f" if (r["gflops"] or 0) >= 10 else ".3g"),
                _g(r.get("x_cudnn"), ".2f")]
        if full:
            vals = [r["cell"]] + vals + [r["variant"], _g(r["proj_ms"]), r["note"][:160]]
        elif r["ms"] is None:
            vals[4] = (r["note"] or "-")[:40]
        out.append("| " + " | ".join(str(v) for v in vals) + " |")
    return out


def environment(torch, tf32):
    from numba import config

    env = {"python": platform.python_version(), "numpy": np.__version__,
           "simulator": bool(config.ENABLE_CUDASIM), "tf32_cudnn": bool(tf32)}
    try:
        import numba
        env["numba"] = numba.__version__
        from importlib.metadata import version
        env["numba_cuda"] = version("numba-cuda")
    except Exception as e:
        env["numba_cuda"] = f"? ({e})"
    cp = gpu.cupy_or_none()
    env["cupy"] = None if cp is None else cp.__version__
    env["projection_auto"] = "cublas" if cp is not None else "kernel"
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
                    help="directory for gpu_check.csv/json (default $OUT or ./gpu_check_out)")
    ap.add_argument("--smoke", action="store_true",
                    help="tiny sizes (runs in the simulator with NUMBA_ENABLE_CUDASIM=1)")
    ap.add_argument("--cells", default="lstm",
                    help="comma-separated cells to time (checks always cover all)")
    ap.add_argument("--tf32", action="store_true",
                    help="let cuDNN use TF32 tensor cores in the baseline (default off)")
    ap.add_argument("--no-own-gemm", action="store_true",
                    help="do not also time 'cuda' with the project's own projection kernel")
    ap.add_argument("--no-check", action="store_true", help="skip the correctness checks")
    ap.add_argument("--repeat", type=int, default=15, help="max timed calls per case")
    ap.add_argument("--per-case-s", type=float, default=0.4,
                    help="seconds of timed calls per case once 3 are done")
    ap.add_argument("--budget-s", type=float, default=400.0,
                    help="stop starting new timings after this many seconds")
    args = ap.parse_args(argv)
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

    log("== timings (float32, inputs on the device, median of repeats, sync per call) ==")
    rows = timing_rows(args, torch, out_dir, [], deadline)
    add_ratios(rows)
    write_outputs(out_dir, results=rows)
    log(f"== done in {time.perf_counter() - t_start:.1f} s; files in {out_dir} ==")
    summary = summary_lines(rows)
    (out_dir / "gpu_check.md").write_text(
        "\n".join(summary) + "\n\n" + "\n".join(table(rows, full=True)) + "\n")
    for line in summary:
        log(line)
    if not ok:
        log("SOME CHECKS FAILED (see above)")
    log("")
    for cell in args.cells:
        log(f"{cell}, float32 (x cuDNN: throughput over cuDNN's with TF32 "
            f"{'on' if args.tf32 else 'off'}; > 1 is faster)")
        log("\n".join(table([r for r in rows if r["cell"] == cell])))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
