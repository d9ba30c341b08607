"""The plots of the asv suite's size sweeps: time per step and throughput vs T,
memory vs T, the roofline view over batch, and the speedup heatmaps.

Each plot function reads the benchmarks it names (constants of :mod:`.bench_names`) and
appends its :class:`~.page.Figure` (or an :class:`~.page.Issue` saying why it
was not drawn) to a :class:`~.page.SectionResult`.
"""
from __future__ import annotations

import numpy as np

from ..backends import REGISTRY
from ..cells import CELLS
from .bench_names import (BH_EFF, BH_GFLOPS, BH_TIME, PEAK, PEAK_BASE, SEQ_THROUGHPUT, SEQ_TIME,
                          SGEMM, TRACED)
from .page import Issue
from .style import legend, line, panel_row, shape_note


def cells_in(d) -> list:
    """The cells present in ``d``, in ``CELLS`` order."""
    have = set(d["cell"]) if "cell" in d.columns else set()
    return [c for c in CELLS if c in have]


def _per_cell(ctx, d, y, ylabel):
    cells = cells_in(d)
    fig, axes = panel_row(len(cells), 4.6)
    for ax, cell in zip(axes, cells):
        for b, g in d[d["cell"] == cell].groupby("backend"):
            line(ax, g, "seq_len", y, b)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length T (steps)")
        ax.set_ylabel(ylabel)
        ax.set_title(cell.upper())
        ax.grid(True, which="both", alpha=0.3)
    legend(axes[-1])
    return fig


def plot_seq_len(ctx, res):
    d = ctx.rows_or_missing(res, "time per step vs T", SEQ_TIME)
    if d is None:
        return
    d["us_per_step"] = d["value"] / d["seq_len"] * 1e6
    fig = _per_cell(ctx, d, "us_per_step", "time per step (µs/step)")
    res.figures.append(ctx.save(
        fig, "seq_len_time_per_step", "Forward time per step vs sequence length",
        "Median forward time divided by T. A flat line means the cost per step does not "
        f"depend on T; lower is better. {shape_note(d, ('batch', 'hidden', 'threads'))}"))
    thr = ctx.rows_or_missing(res, "throughput vs T", SEQ_THROUGHPUT)
    if thr is None:
        return
    fig = _per_cell(ctx, thr, "value", "throughput (timesteps × batch / s)")
    res.figures.append(ctx.save(
        fig, "seq_len_throughput", "Throughput vs sequence length",
        "Timesteps × batch processed per second, from track_throughput (best of >= 3 "
        "calls); higher is better. " + shape_note(thr, ("batch", "hidden", "threads"))))


def plot_memory(ctx, res):
    import matplotlib.pyplot as plt

    found = ctx.rows_or_missing(res, "memory vs T", PEAK, TRACED, label="bench_memory")
    if found is None:
        return
    (peak, traced), base = found, ctx.rows(PEAK_BASE)
    keys = ["machine", "cell", "backend", "seq_len"]
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 4.4))
    ax = axes[0]
    if not peak.empty and not base.empty:
        m = peak.merge(base[keys + ["value"]], on=keys, suffixes=("", "_base"))
        m["mib"] = (m["value"] - m["value_base"]) / 2 ** 20
        for b, g in m.groupby("backend"):
            line(ax, g, "seq_len", "mib", b)
        ax.set_title("peak RSS of forward − baseline")
    elif not peak.empty:
        p = peak.assign(mib=peak["value"] / 2 ** 20)
        for b, g in p.groupby("backend"):
            line(ax, g, "seq_len", "mib", b)
        ax.set_title("peak RSS (no baseline to subtract)")
        res.issues.append(Issue("missing", f"memory: no {PEAK_BASE}, raw peak RSS plotted"))
    else:
        ax.text(0.5, 0.5, "no peakmem results", ha="center", transform=ax.transAxes)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("MiB")
    ax.grid(True, which="both", alpha=0.3)
    legend(ax)
    ax = axes[1]
    for b, g in traced.groupby("backend"):
        line(ax, g.assign(mib=g["value"] / 2 ** 20), "seq_len", "mib", b)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("sequence length T (steps)")
    ax.set_ylabel("MiB allocated in one forward call")
    ax.set_title("tracemalloc peak (NumPy-visible allocations)")
    ax.grid(True, which="both", alpha=0.3)
    legend(ax)
    res.figures.append(ctx.save(
        fig, "memory_vs_seq_len", "Memory vs sequence length (LSTM, float32)",
        shape_note(peak if not peak.empty else traced, ("batch", "hidden"))
        + " Left: whole-process peak RSS of one forward call minus the same process after "
        "setup (asv peakmem). Right: bytes NumPy allocated during the call (tracemalloc; "
        "Numba-internal and torch allocations are invisible to it, so torch is absent "
        "there). Memory is linear in T."))


def plot_roofline(ctx, res):
    import matplotlib.pyplot as plt

    found = ctx.rows_or_missing(res, "GFLOP/s vs batch", BH_GFLOPS, BH_EFF,
                                label="BatchHiddenRates")
    if found is None:
        return
    gf, eff = found
    src = gf if not gf.empty else eff
    sg = ctx.rows(SGEMM)
    if "threads" in src.columns and not sg.empty:
        sg = sg[sg["threads"].isin(set(src["threads"]))]
    sgemm = float(sg["value"].median()) if not sg.empty else np.nan
    hiddens = sorted(set(src["hidden"]))
    many_cells = len(set(src["cell"])) > 1
    panels = ([("GFLOP/s", gf)] if not gf.empty else []) + \
        ([("fraction of sgemm 1024³", eff)] if not eff.empty else [])
    fig, axes = plt.subplots(len(panels), len(hiddens),
                             figsize=(4.4 * len(hiddens), 3.6 * len(panels) + 0.6),
                             squeeze=False)
    for j, hid in enumerate(hiddens):
        for i, (ylabel, data) in enumerate(panels):
            ax = axes[i][j]
            for (c, b), g in data[data["hidden"] == hid].groupby(["cell", "backend"]):
                line(ax, g, "batch", "value", b, f" {c}" if many_cells else "")
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
    legend(axes[0][0])
    res.figures.append(ctx.save(
        fig, "gflops_vs_batch", "GFLOP/s and sgemm efficiency vs batch (roofline view)",
        shape_note(src, ("seq_len", "threads")) + " "
        "DeepBench FLOPs (2·B·G·H·(I+H) per step) per second, best of >= 3 calls. "
        "At batch 1 a step is a matrix-vector product: weights are streamed from "
        "memory for few FLOPs (memory-bound, far below sgemm). The rate climbs with B "
        "until the arithmetic units are busy. Dashed: the machine's 1024³ sgemm rate "
        "(top, Sgemm benchmark) and efficiency 1.0 (bottom: each efficiency divides by "
        "the sgemm rate measured in that same process; above 1 means faster than "
        "OpenBLAS's 1024³ sgemm, which is a yardstick, not the hardware's peak)."))


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


def plot_heatmaps(ctx, res):
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    d = ctx.rows_or_missing(res, "heatmaps", BH_TIME)
    if d is None:
        return
    piv = d.pivot_table(index=["cell", "hidden", "batch"], columns="backend", values="value")
    project = [n for n, b in REGISTRY.items() if b.kind == "project" and n in piv.columns]
    cells = cells_in(d)
    for ref, stem, title, invert in (
            ("numpy-seed", "heatmap_speedup_vs_numpy_seed",
             "Speedup over numpy-seed (the notes' per-sample LSTM)", True),
            ("torch", "heatmap_ratio_to_torch", "Time ratio to torch (< 1: faster than torch)",
             False)):
        if ref not in piv.columns or not project:
            res.issues.append(Issue("missing", f"heatmap vs {ref}: no {ref} or project "
                                               "backend results"))
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
        res.figures.append(ctx.save(
            fig, stem, title, "Median forward times from BatchHidden.time_forward "
            f"({shape_note(d, ('seq_len', 'threads'))[:-1]}): {caption}."))
