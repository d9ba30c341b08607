"""asv results -> a pandas DataFrame -> plots, ``index.html`` and ``summary.md``.

``python -m lstm_numba report [--results-dir .asv/results] [--machine M]
[--commit HASH] [--out reports] [--html-dir .asv/html]``

The results files are read directly (their format is asv's ``results.py``,
api_version 2): one file per machine, commit and environment, holding per
benchmark a row of columns named by ``result_columns``; the ``result`` column
is a flat list over the product of the benchmark's ``params`` (stored as
``repr`` strings). ``benchmarks.json`` beside the machine folders gives each
benchmark's parameter names, type and unit. asv itself is not imported, so the
report needs only pandas and matplotlib.

What is missing (a benchmark with no results, parameter sets that were
skipped or failed) is said on stderr and in the index; every plot that has
data is still drawn. A file that is not valid JSON, or lacks asv's keys,
stops the report with an error naming it.
"""
from __future__ import annotations

import argparse
import ast
import html
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# One colour per backend name, the same in every plot.
PALETTE = {
    "numpy-seed": "#8c564b",
    "numpy": "#7f7f7f",
    "numba": "#1f77b4",
    "numba-parallel": "#17becf",
    "cuda": "#2ca02c",
    "cuda-persistent": "#9acd32",
    "torch": "#d62728",
    "torch-cuda": "#ff7f0e",
}
_EXTRA = ["#9467bd", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]
MARKERS = {"numpy-seed": "v", "numpy": "s", "numba": "o", "numba-parallel": "D",
           "cuda": "^", "cuda-persistent": "P", "torch": "X", "torch-cuda": "*"}
BACKEND_ORDER = list(PALETTE)

# The benchmarks the report draws from (file.Class.method): a missing one is
# reported as missing; other benchmarks (race, GPU) are listed, not plotted.
EXPECTED = {
    "seq_len": "bench_seq_len.SeqLen.time_forward",
    "throughput": "bench_seq_len.SeqLenRates.track_throughput",
    "seq_gflops": "bench_seq_len.SeqLenRates.track_gflops",
    "seq_eff": "bench_seq_len.SeqLenRates.track_efficiency",
    "bh_time": "bench_batch_hidden.BatchHidden.time_forward",
    "bh_gflops": "bench_batch_hidden.BatchHiddenRates.track_gflops",
    "bh_eff": "bench_batch_hidden.BatchHiddenRates.track_efficiency",
    "threads": "bench_threads.Threads.time_forward",
    "threads_used": "bench_threads.Threads.track_threads_in_use",
    "peak": "bench_memory.Memory.peakmem_forward",
    "peak_base": "bench_memory.Memory.peakmem_baseline",
    "traced": "bench_memory.MemoryTraced.track_traced_bytes",
    "cold": "bench_compile.Compile.track_cold_compile",
    "cached": "bench_compile.Compile.track_cached_first_call",
    "kernels": "bench_compile.CompileKernels.track_kernel_compile",
    "error": "bench_accuracy.Accuracy.track_max_abs_error",
    "sgemm": "bench_batch_hidden.Sgemm.track_sgemm_gflops",
}


class ReportError(Exception):
    """The results cannot be read; the message names the file."""


def color(backend: str) -> str:
    """The backend's colour (unknown names get a stable colour of their own)."""
    if backend in PALETTE:
        return PALETTE[backend]
    return _EXTRA[sum(map(ord, str(backend))) % len(_EXTRA)]


def _order(backends) -> list:
    known = [b for b in BACKEND_ORDER if b in set(backends)]
    return known + sorted(set(backends) - set(known))


# --------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------

def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ReportError(f"corrupt results file {path}: not valid JSON ({e})") from None
    except UnicodeDecodeError as e:
        raise ReportError(f"corrupt results file {path}: not UTF-8 text ({e})") from None
    except OSError as e:
        raise ReportError(f"cannot read results file {path}: {e}") from None


def _param_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _results_rows(path: Path, machine: str, bench_meta: dict) -> list[dict]:
    d = _load_json(path)
    need = ("commit_hash", "results", "result_columns")
    if not isinstance(d, dict) or any(k not in d for k in need):
        missing = [k for k in need if not isinstance(d, dict) or k not in d]
        raise ReportError(f"corrupt results file {path}: not an asv results file "
                          f"(missing keys {missing})")
    cols = d["result_columns"]
    if not isinstance(cols, list) or "result" not in cols or not isinstance(d["results"], dict):
        raise ReportError(f"corrupt results file {path}: bad 'result_columns'/'results'")
    idx = {k: i for i, k in enumerate(cols)}
    rows = []
    for name, row in d["results"].items():
        if not isinstance(row, list):
            raise ReportError(f"corrupt results file {path}: entry {name!r} is not a list")

        def col(key, _row=row):
            i = idx.get(key)
            return _row[i] if i is not None and i < len(_row) else None

        params = col("params") or []
        meta = bench_meta.get(name, {})
        names = meta.get("param_names") or [f"param{i}" for i in range(len(params))]
        combos = list(itertools.product(*params)) if params else [()]
        result = col("result")
        if not isinstance(result, list):
            result = [result] * len(combos)
        if len(result) != len(combos):
            raise ReportError(f"corrupt results file {path}: {name} has {len(result)} "
                              f"results for {len(combos)} parameter sets")
        q25, q75 = col("stats_q_25"), col("stats_q_75")
        module, _, method = name.rpartition(".")
        for k, (combo, value) in enumerate(zip(combos, result)):
            r = {
                "machine": machine,
                "commit": d["commit_hash"],
                "date": d.get("date"),
                "env": d.get("env_name"),
                "python": d.get("python"),
                "file": str(path),
                "mtime": path.stat().st_mtime,
                "benchmark": name,
                "module": module,
                "method": method,
                "type": meta.get("type", method.split("_")[0]),
                "unit": meta.get("unit"),
                "value": float(value) if isinstance(value, (int, float)) else np.nan,
                "q25": q25[k] if isinstance(q25, list) and k < len(q25) else None,
                "q75": q75[k] if isinstance(q75, list) and k < len(q75) else None,
            }
            for pname, ptext in zip(names, combo):
                r[pname] = _param_value(ptext)
            rows.append(r)
    return rows


@dataclass
class Results:
    """Everything read from one results folder."""

    df: "object"                       # pandas.DataFrame, one row per value
    machines: dict = field(default_factory=dict)   # name -> machine.json contents
    benchmarks: dict = field(default_factory=dict)  # benchmarks.json contents


def load_results(results_dir) -> Results:
    """Read every machine's results under ``results_dir`` into a DataFrame.

    Columns: machine, commit, date, env, python, file, benchmark, module,
    method, type, unit, value (NaN where skipped or failed), q25, q75, and
    one column per parameter name (cell, backend, seq_len, batch, ...).

    Raises
    ------
    ReportError
        The folder does not exist, or a file in it is not asv JSON (the
        message names the file).
    """
    import pandas as pd

    root = Path(results_dir)
    if not root.is_dir():
        raise ReportError(f"no results folder {root} (run the benchmarks first: make bench)")
    bench_meta = {}
    bj = root / "benchmarks.json"
    if bj.exists():
        bench_meta = _load_json(bj)
        if not isinstance(bench_meta, dict):
            raise ReportError(f"corrupt results file {bj}: expected a JSON object")
        bench_meta = {k: v for k, v in bench_meta.items() if isinstance(v, dict)}
    rows, machines = [], {}
    for mdir in sorted(p for p in root.iterdir() if p.is_dir()):
        mj = mdir / "machine.json"
        machines[mdir.name] = _load_json(mj) if mj.exists() else {"machine": mdir.name}
        for f in sorted(mdir.glob("*.json")):
            if f.name != "machine.json":
                rows.extend(_results_rows(f, mdir.name, bench_meta))
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["machine", "commit", "date", "benchmark", "value"])
    return Results(df, machines, bench_meta)


def select(res: Results, machine=None, commit=None):
    """The rows of one commit per machine: ``commit`` (a prefix) or the latest.

    Returns ``(df, notes)`` where notes are lines about what was chosen.
    """
    df, notes = res.df, []
    if df.empty:
        return df, notes
    if machine is not None:
        if machine not in set(df["machine"]):
            raise ReportError(f"no results for machine {machine!r}; have "
                              f"{sorted(set(df['machine']))}")
        df = df[df["machine"] == machine]
    parts = []
    for m, g in df.groupby("machine", sort=True):
        if commit is not None:
            pick = [c for c in g["commit"].unique() if str(c).startswith(commit)]
            if not pick:
                notes.append(f"machine {m}: no results for commit {commit}")
                continue
            chosen = pick[0]
        else:
            latest = g.groupby("commit")["date"].max().sort_values()
            chosen = latest.index[-1]
        g = g[g["commit"] == chosen]
        env_note = ""
        if g["env"].nunique() > 1:
            # e.g. `asv run` (virtualenv) and `--python=same` for one commit: the newest file
            newest = g.groupby("env")["mtime"].max().sort_values().index[-1]
            env_note = (f" (results of {g['env'].nunique()} environments; using the newest, "
                        f"{newest})")
            g = g[g["env"] == newest]
        parts.append(g)
        notes.append(f"machine {m}: commit {str(chosen)[:10]}{env_note}")
    if not parts:
        raise ReportError(f"no results for commit {commit!r}")
    import pandas as pd

    return pd.concat(parts, ignore_index=True), notes


def missing_report(df, res: Results) -> list[str]:
    """Lines saying which expected benchmarks or parameter sets have no value."""
    lines = []
    for m, g in df.groupby("machine"):
        have = set(g["benchmark"])
        known = list(EXPECTED.values()) + sorted(set(res.benchmarks) - set(EXPECTED.values()))
        for name in known:
            if name not in have:
                lines.append(f"{m}: {name}: no results")
        for name, b in g.groupby("benchmark"):
            n_nan = int(b["value"].isna().sum())
            if n_nan:
                lines.append(f"{m}: {name}: {n_nan} of {len(b)} parameter sets have no "
                             "value (skipped or failed)")
    if df.empty:
        lines.append("no results at all")
    return lines


# --------------------------------------------------------------------------
# Plotting
# --------------------------------------------------------------------------

def _versions() -> str:
    from importlib import metadata

    out = []
    for pkg in ("numpy", "numba", "torch"):
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def footnote(df, res: Results) -> str:
    """'machine ... · commit ... · versions' for the bottom of every figure."""
    bits = []
    for m, g in df.groupby("machine"):
        info = res.machines.get(m, {})
        hw = ", ".join(str(info[k]) for k in ("cpu", "num_cpu", "os") if info.get(k))
        if info.get("num_cpu"):
            hw = hw.replace(f", {info['num_cpu']},", f", {info['num_cpu']} cpus,")
        commit = str(g["commit"].iloc[0])[:8]
        py = g["python"].dropna().iloc[0] if g["python"].notna().any() else "?"
        bits.append(f"machine {m} ({hw}) · commit {commit} · Python {py}")
    return " | ".join(bits) + f" · {_versions()} (report env)"


def _plain_log_labels(fig):
    """Tick labels like 0.5, 16, 2000 on log axes instead of 2^4 or 5x10^-1."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def fmt(v, _pos=None):
        if v <= 0 or not np.isfinite(v):
            return ""
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:g}"
        return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")

    from matplotlib.ticker import FixedLocator

    for ax in fig.axes:
        if ax.get_xscale() == "log":
            # x is a size (T, B, threads): tick exactly the measured values
            xs = sorted({float(v) for line in ax.lines for v in np.atleast_1d(line.get_xdata())
                         if np.isfinite(float(v)) and float(v) > 0})
            if 0 < len(xs) <= 12:
                ax.xaxis.set_major_locator(FixedLocator(xs))
                ax.xaxis.set_major_formatter(FuncFormatter(fmt))
                ax.xaxis.set_minor_formatter(NullFormatter())
                if len(xs) == 1:
                    ax.set_xlim(xs[0] / 2, xs[0] * 2)
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if axis is ax.xaxis and isinstance(axis.get_major_locator(), FixedLocator):
                continue
            if scale == "log":
                axis.set_major_formatter(FuncFormatter(fmt))
                lo, hi = (ax.get_xlim() if axis is ax.xaxis else ax.get_ylim())
                if hi / max(lo, 1e-300) < 100:  # short range: label a few minor ticks
                    axis.set_minor_locator(LogLocator(subs=(2, 5)))
                    axis.set_minor_formatter(FuncFormatter(fmt))
                else:
                    axis.set_minor_formatter(NullFormatter())


@dataclass
class Figures:
    out: Path
    foot: str
    suffix: str = ""     # "-<machine>" when several machines are reported
    written: list = field(default_factory=list)   # (stem, title, caption)
    skipped: list = field(default_factory=list)   # lines: plot not drawn, why

    def save(self, fig, stem, title, caption):
        stem, title = stem + self.suffix, title + (f" [{self.suffix[1:]}]" if self.suffix else "")
        w, h = fig.get_size_inches()
        if w < 8:  # room for the title and the footnote
            fig.set_size_inches(8, h)
        _plain_log_labels(fig)
        fig.suptitle(title, fontsize=12, fontweight="bold")
        fig.text(0.01, 0.005, self.foot, fontsize=6.5, color="#555555", ha="left",
                 va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.04, 1, 0.95))
        for ext in ("png", "svg"):
            fig.savefig(self.out / f"{stem}.{ext}", dpi=110)
        import matplotlib.pyplot as plt

        plt.close(fig)
        self.written.append((stem, title, caption))


PARAM_INT_COLUMNS = ("seq_len", "batch", "hidden", "threads", "input_size")


def _rows(df, key):
    """The rows of one benchmark that have a value; integer parameters as int."""
    sub = df[(df["benchmark"] == EXPECTED[key]) & df["value"].notna()].copy()
    for col in PARAM_INT_COLUMNS:
        if col in sub.columns and len(sub) and sub[col].notna().all():
            vals = sub[col].astype(float)
            if (vals == vals.round()).all():
                sub[col] = vals.astype(int)
    return sub


def _line(ax, g, x, y, backend, label_suffix="", style="-"):
    g = g.sort_values(x)
    ax.plot(g[x], g[y], style, marker=MARKERS.get(backend, "o"), color=color(backend),
            label=f"{backend}{label_suffix}", linewidth=1.6, markersize=5)


def plot_seq_len(df, figs: Figures):
    import matplotlib.pyplot as plt

    d = _rows(df, "seq_len").copy()
    if d.empty:
        figs.skipped.append("time per step vs T: no bench_seq_len.SeqLen results")
        return
    d["us_per_step"] = d["value"] / d["seq_len"] * 1e6
    cells = [c for c in ("rnn", "lstm", "gru") if c in set(d["cell"])]
    fig, axes = plt.subplots(1, len(cells), figsize=(4.6 * len(cells), 4.2), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        for b, g in d[d["cell"] == cell].groupby("backend"):
            _line(ax, g, "seq_len", "us_per_step", b)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel("time per step (µs/step)")
        ax.set_title(cell.upper())
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[0][-1])
    shape = _shape_note(d, ("batch", "hidden", "threads"), default="")
    figs.save(fig, "seq_len_time_per_step", "Forward time per step vs sequence length",
              "Median forward time divided by T. A flat line means the cost per step "
              f"does not depend on T; lower is better. {shape}")

    thr = _rows(df, "throughput")
    if thr.empty:
        figs.skipped.append("throughput vs T: no bench_seq_len.SeqLenRates.track_throughput "
                            "results")
        return
    fig, axes = plt.subplots(1, len(cells), figsize=(4.6 * len(cells), 4.2), squeeze=False)
    for ax, cell in zip(axes[0], cells):
        for b, g in thr[thr["cell"] == cell].groupby("backend"):
            _line(ax, g, "seq_len", "value", b)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel("throughput (timesteps × batch / s)")
        ax.set_title(cell.upper())
        ax.grid(True, which="both", alpha=0.3)
    _legend(axes[0][-1])
    figs.save(fig, "seq_len_throughput", "Throughput vs sequence length",
              "Timesteps × batch processed per second, from track_throughput (best of >= 3 "
              "calls); higher is better. "
              + _shape_note(thr, ("batch", "hidden", "threads")))


def _shape_note(d, cols, default=""):
    """'B=8, H=256, 1 thread' from single-valued parameter columns of ``d``."""
    names = {"batch": "B", "hidden": "H", "seq_len": "T", "threads": "threads"}
    bits = []
    for c in cols:
        if c in d.columns and d[c].notna().all() and d[c].nunique() == 1:
            v = _num(d[c].iloc[0])
            bits.append(f"{v} thread{'s' if v != '1' else ''}" if c == "threads"
                        else f"{names.get(c, c)}={v}")
    return (", ".join(bits) + ", float32.") if bits else default


def _legend(ax):
    h, labels = ax.get_legend_handles_labels()
    if h:
        order = sorted(range(len(labels)), key=lambda i: (
            BACKEND_ORDER.index(labels[i].split(" ")[0])
            if labels[i].split(" ")[0] in BACKEND_ORDER else 99, labels[i]))
        ax.legend([h[i] for i in order], [labels[i] for i in order], fontsize=8,
                  loc="best", framealpha=0.85)


def plot_memory(df, figs: Figures):
    import matplotlib.pyplot as plt

    peak, base = _rows(df, "peak"), _rows(df, "peak_base")
    traced = _rows(df, "traced")
    if peak.empty and traced.empty:
        figs.skipped.append("memory vs T: no bench_memory results")
        return
    keys = ["machine", "cell", "backend", "seq_len"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4))
    ax = axes[0]
    if not peak.empty and not base.empty:
        m = peak.merge(base[keys + ["value"]], on=keys, suffixes=("", "_base"))
        m["mib"] = (m["value"] - m["value_base"]) / 2 ** 20
        for b, g in m.groupby("backend"):
            _line(ax, g, "seq_len", "mib", b)
        ax.set_title("peak RSS of forward − baseline")
    elif not peak.empty:
        p = peak.assign(mib=peak["value"] / 2 ** 20)
        for b, g in p.groupby("backend"):
            _line(ax, g, "seq_len", "mib", b)
        ax.set_title("peak RSS (no baseline to subtract)")
        figs.skipped.append("memory: peakmem_baseline missing, raw peak RSS plotted")
    else:
        ax.text(0.5, 0.5, "no peakmem results", ha="center", transform=ax.transAxes)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("MiB")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    ax = axes[1]
    for b, g in traced.groupby("backend"):
        _line(ax, g.assign(mib=g["value"] / 2 ** 20), "seq_len", "mib", b)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("MiB allocated in one forward call")
    ax.set_title("tracemalloc peak (NumPy-visible allocations)")
    ax.grid(True, which="both", alpha=0.3)
    _legend(ax)
    figs.save(fig, "memory_vs_seq_len", "Memory vs sequence length (LSTM, float32)",
              _shape_note(peak if not peak.empty else traced, ("batch", "hidden")) + " Left: whole-process peak RSS of one forward call minus the same process "
              "after setup (asv peakmem). Right: bytes NumPy allocated during the call "
              "(tracemalloc; Numba-internal and torch allocations are invisible to it, so "
              "torch is absent there). Memory is linear in T.")


def plot_roofline(df, figs: Figures):
    import matplotlib.pyplot as plt

    gf, eff = _rows(df, "bh_gflops"), _rows(df, "bh_eff")
    if gf.empty and eff.empty:
        figs.skipped.append("GFLOP/s vs batch: no bench_batch_hidden.BatchHiddenRates results")
        return
    src = gf if not gf.empty else eff
    sg = _rows(df, "sgemm")
    if "threads" in src.columns and not sg.empty:
        sg = sg[sg["threads"].isin(set(src["threads"]))]
    sgemm = float(sg["value"].median()) if not sg.empty else np.nan
    hiddens = sorted(set(src["hidden"]))
    cells = sorted(set(src["cell"]))
    nrow = 2 if not eff.empty and not gf.empty else 1
    fig, axes = plt.subplots(nrow, len(hiddens), figsize=(4.4 * len(hiddens), 3.6 * nrow + 0.6),
                             squeeze=False)
    for j, hid in enumerate(hiddens):
        rows = [("GFLOP/s", gf)] if not gf.empty else []
        rows += [("fraction of sgemm 1024³", eff)] if not eff.empty else []
        for i, (ylabel, data) in enumerate(rows):
            ax = axes[i][j]
            sub = data[data["hidden"] == hid]
            for (c, b), g in sub.groupby(["cell", "backend"]):
                _line(ax, g, "batch", "value", b, f" {c}" if len(cells) > 1 else "")
            if ylabel == "GFLOP/s" and np.isfinite(sgemm):
                ax.axhline(sgemm, color="black", linestyle="--", linewidth=1,
                           label=f"sgemm 1024³ ({sgemm:.0f})")
            if ylabel != "GFLOP/s":
                ax.axhline(1.0, color="black", linestyle="--", linewidth=1)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("batch B (samples)")
            ax.set_ylabel(ylabel)
            ax.set_title(f"H = {hid}")
            ax.grid(True, which="both", alpha=0.3)
    _legend(axes[0][0])
    figs.save(fig, "gflops_vs_batch", "GFLOP/s and sgemm efficiency vs batch (roofline view)",
              _shape_note(src, ("seq_len", "threads")) + " "
              "DeepBench FLOPs (2·B·G·H·(I+H) per step) per second, best of >= 3 calls. "
              "At batch 1 a step is a matrix-vector product: weights are streamed from "
              "memory for few FLOPs (memory-bound, far below sgemm). The rate climbs with B "
              "until the arithmetic units are busy. Dashed: the machine's 1024³ sgemm rate "
              "(top, Sgemm benchmark) and efficiency 1.0 (bottom: each efficiency divides by "
              "the sgemm rate measured in that same process; above 1 means faster than "
              "OpenBLAS's 1024³ sgemm, which is a yardstick, not the hardware's peak).")


def _heat(ax, table, title, cmap, norm, fmt):
    im = ax.imshow(table.values, cmap=cmap, norm=norm, aspect="auto", origin="lower")
    ax.set_xticks(range(table.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(table.shape[0]), [str(r) for r in table.index])
    ax.set_xlabel("batch B")
    ax.set_ylabel("hidden H")
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(table.values):
        if np.isfinite(v):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=8,
                    color="black", bbox=dict(facecolor="white", alpha=0.6, lw=0, pad=1))
    return im


def plot_heatmaps(df, figs: Figures):
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    d = _rows(df, "bh_time")
    if d.empty:
        figs.skipped.append("heatmaps: no bench_batch_hidden.BatchHidden results")
        return
    piv = d.pivot_table(index=["cell", "hidden", "batch"], columns="backend", values="value")
    project = [b for b in ("numba", "numba-parallel", "cuda", "cuda-persistent")
               if b in piv.columns]
    cells = sorted(set(d["cell"]))
    for ref, stem, title, invert in (
            ("numpy-seed", "heatmap_speedup_vs_numpy_seed",
             "Speedup over numpy-seed (the notes' per-sample LSTM)", True),
            ("torch", "heatmap_ratio_to_torch", "Time ratio to torch (< 1: faster than torch)",
             False)):
        if ref not in piv.columns or not project:
            figs.skipped.append(f"heatmap vs {ref}: no {ref} or project backend results")
            continue
        fig, axes = plt.subplots(len(cells), len(project),
                                 figsize=(4.3 * len(project), 3.4 * len(cells) + 0.6),
                                 squeeze=False)
        for i, cell in enumerate(cells):
            for j, b in enumerate(project):
                t = piv.loc[cell]
                val = (t[ref] / t[b]) if invert else (t[b] / t[ref])
                table = val.unstack("batch").sort_index()
                finite = table.values[np.isfinite(table.values)]
                if invert:
                    norm = LogNorm(vmin=max(finite.min(), 1e-3) if finite.size else 1,
                                   vmax=finite.max() if finite.size else 10)
                    im = _heat(axes[i][j], table, f"{cell.upper()}: {b}", "viridis", norm,
                               "{:.0f}×" if finite.size and finite.min() >= 10 else "{:.1f}×")
                else:
                    r = max(finite.max(), 1 / finite.min(), 1.1) if finite.size else 2.0
                    im = _heat(axes[i][j], table, f"{cell.upper()}: {b} / torch", "RdYlGn_r",
                               LogNorm(vmin=1 / r, vmax=r), "{:.2f}")
                fig.colorbar(im, ax=axes[i][j],
                             label="speedup (×)" if invert else "time ratio (backend / torch)")
        caption = ("numpy-seed's time divided by the backend's (higher is better)" if invert
                   else "backend's time divided by torch's in the same run; green < 1 means "
                   "faster than torch")
        figs.save(fig, stem, title, f"Median forward times from BatchHidden.time_forward "
                  f"({_shape_note(d, ('seq_len', 'threads'))[:-1]}): {caption}.")


def plot_threads(df, figs: Figures):
    import matplotlib.pyplot as plt

    d = _rows(df, "threads")
    if d.empty:
        figs.skipped.append("thread scaling: no bench_threads.Threads results")
        return
    batches = sorted(set(d["batch"]))
    fig, axes = plt.subplots(1, len(batches), figsize=(4.8 * len(batches), 4.2), squeeze=False)
    nmax = int(d["threads"].max())
    for ax, bsz in zip(axes[0], batches):
        sub = d[d["batch"] == bsz]
        for b, g in sub.groupby("backend"):
            t1 = g[g["threads"] == g["threads"].min()]["value"]
            if t1.empty:
                continue
            g = g.assign(speedup=float(t1.iloc[0]) / g["value"])
            _line(ax, g, "threads", "speedup", b)
            worst = g["speedup"].min()
            if worst < 1 / 3:
                figs.skipped.append(
                    f"suspect: thread scaling, {b} at batch {bsz} is {1 / worst:.0f}x slower on "
                    f"{int(g.loc[g['speedup'].idxmin(), 'threads'])} threads than on 1: the "
                    "machine was probably busy (a pool's per-step barrier then waits a "
                    "scheduler time slice); rerun bench_threads on a quiet machine")
        ax.plot([1, nmax], [1, nmax], ":", color="black", linewidth=1, label="ideal")
        ax.set_xlabel("threads (all pools set together)")
        ax.set_ylabel("speedup over 1 thread (×)")
        if sub["value"].notna().any() and ax.get_ylim()[0] < 0.2:
            ax.set_yscale("log")
        ax.set_title(f"batch {bsz}" + (" (sequential critical path)" if bsz == 1 else ""))
        ax.set_xticks(sorted(set(d["threads"])))
        ax.grid(True, alpha=0.3)
        _legend(ax)
    title = "Thread scaling at batch " + " and ".join(map(str, batches))
    figs.save(fig, "thread_scaling", title,
              "Time at 1 thread divided by time at n threads, same process settings for "
              "BLAS, Numba and torch. At batch 1 each step is too little work to share "
              "between cores before the next step must wait for it.")


def plot_compile(df, figs: Figures):
    import matplotlib.pyplot as plt

    cold, cached = _rows(df, "cold"), _rows(df, "cached")
    if cold.empty and cached.empty:
        figs.skipped.append("compile time: no bench_compile results")
        return
    keys = ["cell", "backend", "dtype"]
    m = cold.merge(cached[keys + ["value"]], on=keys, how="outer", suffixes=("_cold", "_cached"))
    m = m.sort_values(keys)
    kern = _rows(df, "kernels").sort_values("value")
    labels = [f"{r.cell}\n{r.backend}\n{r.dtype}" for r in m.itertuples()]
    x = np.arange(len(m))
    ncol = 2 if not kern.empty else 1
    fig, axes = plt.subplots(1, ncol, figsize=(max(6, 1.1 * len(m) + 2) + 5 * (ncol - 1), 4.6),
                             squeeze=False,
                             gridspec_kw={"width_ratios": [max(1.0, len(m) / 4), 1][:ncol]})
    ax = axes[0][0]
    cols = [color(b) for b in m["backend"]]
    ax.bar(x - 0.2, m["value_cold"], 0.4, color=cols, label="cold JIT compile (empty cache)")
    ax.bar(x + 0.2, m["value_cached"], 0.4, color=cols, alpha=0.45, hatch="//",
           label="first call, cache filled")
    ax.set_yscale("log")
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylabel("seconds")
    ax.set_title("per entry point (cell, backend, dtype)", fontsize=10)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    top = np.nanmax(m[["value_cold", "value_cached"]].to_numpy(dtype=float))
    if np.isfinite(top):
        ax.set_ylim(top=top * 6)   # room for the legend above the bars
    ax.legend(fontsize=8, loc="upper right", ncol=2)
    if not kern.empty:
        ax = axes[0][1]
        y = np.arange(len(kern))
        ax.barh(y, kern["value"], color=color("numba"))
        ax.set_yticks(y, kern["kernel"], fontsize=8)
        ax.set_xscale("log")
        ax.set_xlabel("seconds compiling (all signatures, callees included)")
        ax.set_title("per @njit kernel", fontsize=10)
        ax.grid(True, axis="x", which="both", alpha=0.3)
    figs.save(fig, "compile_time", "Numba JIT: cold compile vs cached first call",
              "Left: each pair of bars is a fresh Python process with NUMBA_CACHE_DIR set to a "
              "new folder (cold: first call minus a warm call), then a second process with the "
              "same folder (cached: the whole first call). Colour: backend. Right: compile "
              "seconds per kernel from Numba's compile events in the cold processes (nested: "
              "a kernel's time includes the callees it compiled).")


def plot_accuracy(df, figs: Figures):
    import matplotlib.pyplot as plt

    d = _rows(df, "error")
    if d.empty:
        figs.skipped.append("accuracy: no bench_accuracy results")
        return
    dtypes = sorted(set(d["dtype"]))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(5.2 * len(dtypes), 4.2), squeeze=False)
    cells = [c for c in ("rnn", "lstm", "gru") if c in set(d["cell"])]
    for ax, dt in zip(axes[0], dtypes):
        sub = d[d["dtype"] == dt]
        backends = _order(set(sub["backend"]))
        width = 0.8 / max(len(backends), 1)
        for k, b in enumerate(backends):
            g = sub[sub["backend"] == b].set_index("cell").reindex(cells)
            vals = g["value"].clip(lower=1e-18)
            # markers, not bars: a bar's length on a log axis depends on where the axis starts
            ax.plot(np.arange(len(cells)) + (k - len(backends) / 2 + 0.5) * width, vals,
                    linestyle="none", marker=MARKERS.get(b, "o"), markersize=9,
                    color=color(b), label=b)
        ax.set_yscale("log")
        ax.set_xticks(range(len(cells)), [c.upper() for c in cells])
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_ylabel("max |backend − float64 oracle|")
        ax.set_title(dt)
        ax.grid(True, which="both", alpha=0.3)
    h, labels = axes[0][-1].get_legend_handles_labels()
    axes[0][-1].legend(h, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figs.save(fig, "accuracy", "Max absolute error against the float64 NumPy oracle",
              "Outputs, last h and last c compared with the oracle on the same inputs "
              "(exact zeros drawn at 1e-18). float32 results sit near 1e-7; a rise marks a "
              "kernel that rounds more.")


PLOTS = (plot_seq_len, plot_memory, plot_roofline, plot_heatmaps, plot_threads,
         plot_compile, plot_accuracy)


# --------------------------------------------------------------------------
# Key numbers, index.html, summary.md
# --------------------------------------------------------------------------

def _fmt_time(s):
    if not np.isfinite(s):
        return "–"
    for unit, f in (("s", 1), ("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
        if s * f >= 1:
            return f"{s * f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def key_numbers(df) -> list[tuple[str, str, str]]:
    """``(what, value, where from)`` rows for the index and the summary."""
    out = []
    d = _rows(df, "seq_len")
    if not d.empty:
        tmax = d["seq_len"].max()
        big = d[d["seq_len"] == tmax].pivot_table(index="cell", columns="backend",
                                                  values="value")
        if "torch" in big.columns:
            for cell in big.index:
                for b in ("numba", "numba-parallel", "numpy"):
                    if b in big.columns and np.isfinite(big.loc[cell, b]):
                        out.append((f"{cell.upper()} {b} / torch time, T={tmax}",
                                    f"{big.loc[cell, b] / big.loc[cell, 'torch']:.2f}",
                                    "SeqLen.time_forward, same run"))
    sg = _rows(df, "sgemm")
    for r in sg.sort_values("threads").itertuples(index=False):
        d = r._asdict()
        n = _num(d["threads"])
        out.append((f"sgemm 1024³ rate, {n} thread{'s' if n != '1' else ''}",
                     f"{d['value']:.0f} GFLOP/s", "Sgemm.track_sgemm_gflops"))
    g = _rows(df, "bh_gflops")
    e = _rows(df, "bh_eff")
    for b in ("numba", "numba-parallel", "torch"):
        sub = g[g["backend"] == b]
        if not sub.empty:
            best = sub.loc[sub["value"].idxmax()]
            eff_txt = ""
            k = e[(e["backend"] == b) & (e["hidden"] == best["hidden"])
                  & (e["batch"] == best["batch"]) & (e["cell"] == best["cell"])]
            if not k.empty:
                eff_txt = f" ({k['value'].iloc[0]:.0%} of sgemm)"
            out.append((f"best GFLOP/s, {b} ({best['cell']})",
                        f"{best['value']:.1f}{eff_txt} at H={int(best['hidden'])}, "
                        f"B={int(best['batch'])}", "BatchHiddenRates"))
    t = _rows(df, "threads")
    if not t.empty:
        for bsz in sorted(set(t["batch"])):
            for b in _order(set(t["backend"])):
                g2 = t[(t["batch"] == bsz) & (t["backend"] == b)].sort_values("threads")
                if len(g2) >= 2:
                    s = g2["value"].iloc[0] / g2["value"].iloc[-1]
                    out.append((f"thread speedup {int(g2['threads'].iloc[0])}→"
                                f"{int(g2['threads'].iloc[-1])}, batch {bsz}, {b}",
                                f"{s:.2f}×", "Threads.time_forward"))
    race = df[(df["benchmark"] == "bench_race.Race.track_ratio_to_torch") & df["value"].notna()]
    for r in race.itertuples(index=False):
        d = r._asdict()
        out.append((f"race: best Numba / torch time, {d.get('cell')}, H={_num(d.get('hidden'))}, "
                    f"B={_num(d.get('batch'))}, T={_num(d.get('seq_len'))}, "
                    f"{_num(d.get('threads'))} thr", f"{d['value']:.2f}",
                    "bench_race.Race.track_ratio_to_torch"))
    c = _rows(df, "cold")
    if not c.empty:
        out.append(("cold JIT compile (median over entry points)",
                    _fmt_time(c["value"].median()), "Compile.track_cold_compile"))
    c = _rows(df, "cached")
    if not c.empty:
        out.append(("first call with JIT cache (median)", _fmt_time(c["value"].median()),
                    "Compile.track_cached_first_call"))
    a = _rows(df, "error")
    if not a.empty:
        f32 = a[a["dtype"] == "float32"]
        if not f32.empty:
            worst = f32.loc[f32["value"].idxmax()]
            out.append(("worst float32 error vs oracle", f"{worst['value']:.2g} "
                        f"({worst['backend']}, {worst['cell']})", "Accuracy"))
    return out


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}.missing{background:#fff4e5;border:1px solid #f0c36d;
padding:.6em 1em}.note{color:#666;font-size:.85em}code{background:#f5f5f5;padding:0 .2em}
"""


def step_tables(df) -> dict:
    """``{cell: DataFrame}`` of time per step (µs), backends as rows, T as columns."""
    d = _rows(df, "seq_len")
    out = {}
    if d.empty:
        return out
    d = d.assign(us=d["value"] / d["seq_len"] * 1e6)
    for cell in [c for c in ("rnn", "lstm", "gru") if c in set(d["cell"])]:
        t = d[d["cell"] == cell].pivot_table(index="backend", columns="seq_len", values="us")
        out[cell] = t.reindex(_order(t.index))
    return out


def _step_rows(table):
    head = ["backend"] + [f"T={_num(c)}" for c in table.columns]
    rows = [[b] + [f"{v:.3g}" if np.isfinite(v) else "–" for v in table.loc[b]]
            for b in table.index]
    return head, rows


def other_results(df, limit=60) -> dict:
    """``{benchmark: [(params text, value text)]}`` for benchmarks not plotted here
    (the CPU race, the GPU benchmarks): shown as tables in the index."""
    out = {}
    rest = df[~df["benchmark"].isin(EXPECTED.values()) & df["value"].notna()]
    skip = {"machine", "commit", "date", "env", "python", "file", "benchmark", "module",
            "method", "type", "unit", "value", "q25", "q75"}
    for name, g in rest.groupby("benchmark", sort=True):
        g = g.dropna(axis=1, how="all")
        pcols = [c for c in g.columns if c not in skip]
        rows = []
        for r in g.head(limit).itertuples(index=False):
            d = r._asdict()
            ptxt = ", ".join(f"{c}={_num(d[c])}" for c in pcols)
            unit = d.get("unit") or ""
            val = _fmt_time(d["value"]) if unit == "seconds" else f"{d['value']:.4g} {unit}"
            rows.append((ptxt, val))
        out[name] = rows
    return out


def _num(v):
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def write_index(out: Path, figs: Figures, keys, missing, notes, foot, html_link, others=None,
                steps=None, step_note=""):
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>lstm-numba benchmark report</title><style>{_CSS}</style></head><body>",
             "<h1>lstm-numba: what recurrent cells cost</h1>",
             f"<p class='note'>{e(foot)}<br>{e('; '.join(notes))}</p>",
             f"<p>asv's own HTML report (every benchmark's graph over commits): "
             f"<a href='{e(html_link)}'>{e(html_link)}</a> "
             "(or run <code>asv preview</code> and open the address it prints).</p>"]
    if missing:
        parts.append("<div class='missing'><b>Missing, partial or suspect results</b><ul>"
                     + "".join(f"<li>{e(m)}</li>" for m in missing) + "</ul></div>")
    if steps:
        parts.append("<h2>Time per step (µs), forward pass / T</h2>"
                     f"<p class='note'>{e(step_note)}</p>")
        for cell, table in steps.items():
            head, rows = _step_rows(table)
            parts.append(f"<h3>{cell.upper()}</h3><table><tr>"
                         + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
                         + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                                   for r in rows) + "</table>")
    parts.append("<h2>Key numbers</h2>")
    if keys:
        parts.append("<table><tr><th>what</th><th>value</th><th>from</th></tr>"
                     + "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td><td>{e(c)}</td></tr>"
                               for a, b, c in keys) + "</table>")
    else:
        parts.append("<p>No key numbers: the results hold none of the benchmarks used.</p>")
    parts.append("<h2>Plots</h2><ul>" + "".join(
        f"<li><a href='#{e(s)}'>{e(t)}</a></li>" for s, t, _ in figs.written) + "</ul>")
    for stem, title, caption in figs.written:
        parts.append(f"<figure id='{e(stem)}'><a href='{e(stem)}.svg'><img src='{e(stem)}.png' "
                     f"alt='{e(title)}'></a><figcaption><b>{e(title)}.</b> {e(caption)} "
                     f"(<a href='{e(stem)}.svg'>SVG</a>)</figcaption></figure>")
    if others:
        parts.append("<h2>Other benchmarks in this run</h2><p>Not plotted here; "
                     "see asv's HTML for their graphs.</p>")
        for name, rows in others.items():
            parts.append(f"<h3>{e(name)}</h3><table><tr><th>parameters</th><th>value</th>"
                         "</tr>" + "".join(f"<tr><td>{e(a)}</td><td>{e(b)}</td></tr>"
                                           for a, b in rows) + "</table>")
    parts.append("</body></html>")
    (out / "index.html").write_text("\n".join(parts), encoding="utf-8")


def write_summary(out: Path, figs: Figures, keys, missing, notes, foot, html_link, steps=None,
                  step_note=""):
    lines = ["# lstm-numba benchmark summary", "", f"_{foot}_", "",
             "; ".join(notes), "", f"asv HTML: `{html_link}` (or `asv preview`)", ""]
    if missing:
        lines += ["## Missing, partial or suspect results", ""] + [f"- {m}" for m in missing] + [""]
    if steps:
        lines += ["## Time per step (µs), forward pass / T", "", step_note, ""]
        for cell, table in steps.items():
            head, rows = _step_rows(table)
            lines += [f"**{cell.upper()}**", "", "| " + " | ".join(head) + " |",
                      "|" + " --- |" * len(head)]
            lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["## Key numbers", "", "| what | value | from |", "| --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in keys]
    lines += ["", "## Plots", ""] + [f"- [{t}]({s}.png) ([svg]({s}.svg)): {c}"
                                     for s, t, c in figs.written]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


def build_report(results_dir, out, machine=None, commit=None, html_dir=".asv/html",
                 stderr=None) -> Figures:
    """Read the results, draw every plot that has data, write index and summary."""
    import matplotlib

    matplotlib.use("Agg")
    res = load_results(results_dir)
    df, notes = select(res, machine, commit)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    machines = sorted(df["machine"].unique()) if not df.empty else []
    many = len(machines) > 1
    figs = Figures(out, footnote(df, res) if not df.empty else "no results")
    keys, steps, others, skipped, step_note = [], {}, {}, [], ""
    for m in machines:
        sub = df[df["machine"] == m]
        fm = Figures(out, footnote(sub, res), suffix=f"-{m}" if many else "")
        for plot in PLOTS:
            plot(sub, fm)
        tag = f"{m}: " if many else ""
        figs.written += fm.written
        skipped += [tag + x for x in fm.skipped]
        keys += [(tag + a, b, c) for a, b, c in key_numbers(sub)]
        steps.update({(f"{m} · " if many else "") + k: v for k, v in step_tables(sub).items()})
        others.update({tag + k: v for k, v in other_results(sub).items()})
        seq = _rows(sub, "seq_len")
        step_note = ("Median of asv's samples (bench_seq_len.SeqLen.time_forward), "
                     + _shape_note(seq, ("batch", "hidden", "threads")))
    missing = missing_report(df, res) + skipped
    for line in missing:
        tag = "" if line.startswith("suspect:") else "missing: "
        print(f"report: {tag}{line}", file=stderr or sys.stderr)
    html_link = os.path.relpath(Path(html_dir) / "index.html", out)
    write_index(out, figs, keys, missing, notes, figs.foot, html_link, others, steps, step_note)
    write_summary(out, figs, keys, missing, notes, figs.foot, html_link, steps, step_note)
    figs.missing = missing
    figs.keys = keys
    return figs


def main(argv=None) -> int:
    """``python -m lstm_numba report``; returns the exit status."""
    ap = argparse.ArgumentParser(
        prog="python -m lstm_numba report",
        description="Read asv's results and write plots, index.html and summary.md.")
    ap.add_argument("--results-dir", default=".asv/results",
                    help="asv results folder (default .asv/results)")
    ap.add_argument("--machine", default=None, help="only this machine (default: all)")
    ap.add_argument("--commit", default=None,
                    help="commit hash or prefix (default: the latest per machine)")
    ap.add_argument("--out", default="reports", help="output folder (default reports)")
    ap.add_argument("--html-dir", default=".asv/html",
                    help="asv publish's folder, linked from the index (default .asv/html)")
    args = ap.parse_args(argv)
    try:
        figs = build_report(args.results_dir, args.out, args.machine, args.commit,
                            args.html_dir)
    except ReportError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"report: {len(figs.written)} plots (PNG + SVG) in {out}/")
    print(f"report: open {out / 'index.html'} (summary: {out / 'summary.md'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
