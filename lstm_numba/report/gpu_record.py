"""Reading ``benchmarks/gpu_check.py``'s records: the newest committed
``gpu_check-*.json`` (or ``.csv``) -> a DataFrame of timing rows with labels
and ratios to cuDNN. The GPU section (:mod:`.section_gpu`) draws from it.

A record is ``{"env": {...}, "checks": [...], "timings": [row, ...]}`` (and,
from the reworked script, ``"barrier": [...]``); a timing row has ``cell, B,
H, T, backend, variant, ms, us_per_step, gflops, x_cudnn, proj_ms, repeats,
note`` and, when the script measured them, more numeric fields
(``kernel_us_per_step``, ``host_us``, ...). Absent fields are not an error.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

PATTERN = "gpu_check-*"
COMMAND = ("PYTHONPATH=. python benchmarks/gpu_check.py --out OUT on a CUDA machine, then "
           "commit OUT/gpu_check.json as benchmarks/results/gpu_check-YYYY-MM-DD.json")
KNOWN = {"cell", "B", "H", "T", "backend", "variant", "ms", "us_per_step", "gflops",
         "x_cudnn", "repeats", "note", "label"}
BASELINE = "torch-cuda"
KERNEL_US = "kernel_us_per_step"
#: Readable headers for the extra fields gpu_check writes (others keep their own name).
EXTRA_NAMES = {KERNEL_US: "in-kernel µs/step", "host_us": "host µs/call",
               "proj_ms": "projection ms", "copy_ms": "copy ms",
               "barrier_us": "grid barrier µs", "barrier_fraction": "barrier / step",
               "first_s": "first call s"}


@dataclass
class Record:
    """One gpu_check record (CSV files hold timings only)."""

    path: Path
    env: dict = field(default_factory=dict)
    checks: list = field(default_factory=list)
    timings: list = field(default_factory=list)
    barrier: list = field(default_factory=list)


def newest_record(folder: Path) -> Path | None:
    """The newest ``gpu_check-*.json``/``.csv`` in ``folder``: by the date in its
    name (``gpu_check-2026-11-26...``), then by name; JSON before CSV."""
    files = [f for f in Path(folder).glob(PATTERN) if f.suffix in (".json", ".csv")]
    if not files:
        return None

    def key(f):
        m = re.search(r"\d{4}-\d{2}-\d{2}", f.name)
        return (m.group(0) if m else "", f.stem, f.suffix == ".json")

    return max(files, key=key)


def _number(v):
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return v


def read_record(path: Path) -> Record:
    """One record; ValueError naming the file if it is not one."""
    path = Path(path)
    if path.suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            timings = [{k: v if k in ("cell", "backend", "variant", "note", "stat",
                                      "launch_path") else _number(v) for k, v in r.items()}
                       for r in csv.DictReader(f)]
        return Record(path, timings=timings)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(d, dict) or not isinstance(d.get("timings"), list):
        raise ValueError(f"{path}: not a gpu_check record (no 'timings' list)")
    return Record(path, d.get("env") or {}, d.get("checks") or [], d["timings"],
                  d.get("barrier") or [])


def _label(backend: str, variant: str, constant: set) -> str:
    """``cuda[graph]``, ``torch-cuda[tf32]``: the variant parts that tell a backend's
    rows apart (a part every row of the backend has says nothing)."""
    parts = [p for p in str(variant or "").split(",")
             if p and (backend == BASELINE or p not in constant)]
    return backend + (f"[{','.join(parts)}]" if parts else "")


def frame(timings, env):
    """``(df, baseline label)``: the timing rows with a value, ``label`` and
    ``x_cudnn`` filled (ratios computed where the record has none)."""
    import pandas as pd

    base_variant = "tf32" if env.get("tf32_cudnn") else "fp32"
    base_label = f"{BASELINE}[{base_variant}]"
    df = pd.DataFrame(timings)
    if df.empty or "us_per_step" not in df.columns:
        return df, base_label
    df = df[pd.to_numeric(df["us_per_step"], errors="coerce").notna()].copy()
    for c in ("B", "H", "T"):
        df[c] = df[c].astype(float).astype(int)
    df["us_per_step"] = df["us_per_step"].astype(float)
    df["variant"] = df.get("variant", pd.Series("", index=df.index)).fillna("").astype(str)
    labels = []
    for r in df.itertuples():
        mine = df[df["backend"] == r.backend]["variant"].str.split(",")
        parts = [set(p) for p in mine]
        constant = set.intersection(*parts) if parts else set()
        labels.append(_label(r.backend, r.variant, constant))
    df["label"] = labels
    base = df[(df["backend"] == BASELINE) & (df["variant"] == base_variant)]
    ref = base.set_index(["cell", "B", "H", "T"])["us_per_step"].to_dict()
    calc = [ref.get((r.cell, r.B, r.H, r.T), np.nan) / r.us_per_step for r in df.itertuples()]
    have = pd.to_numeric(df["x_cudnn"], errors="coerce") if "x_cudnn" in df.columns else None
    df["x_cudnn"] = have.fillna(pd.Series(calc, index=df.index)) if have is not None else calc
    return df, base_label


def record_date(path: Path, env: dict) -> str:
    """The run's date: the record's own, else the one in its name, else the file's."""
    if env.get("date"):
        return str(env["date"])
    m = re.search(r"\d{4}-\d{2}-\d{2}", path.name)
    if m:
        return m.group(0)
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d")


def device(env: dict) -> str:
    """'NVIDIA H100 80GB HBM3 (132 SMs, torch 2.11.0, cuDNN 91900, ...)'."""
    name = env.get("gpu") or env.get("torch_device") or (
        "numba-cuda's simulator (no GPU)" if env.get("simulator") else "an unnamed GPU")
    bits = [f"{int(env['sm_count'])} SMs"] if env.get("sm_count") else []
    for k, label in (("torch", "torch"), ("cudnn", "cuDNN"), ("numba_cuda", "numba-cuda"),
                     ("cupy", "CuPy")):
        if env.get(k):
            bits.append(f"{label} {env[k]}")
    return name + (f" ({', '.join(bits)})" if bits else "")
