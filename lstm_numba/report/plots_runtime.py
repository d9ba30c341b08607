"""The plots of what is not a size sweep: thread scaling (with its suspect
check), JIT compile time, and accuracy against the oracle."""
from __future__ import annotations

import numpy as np

from .bench_names import CACHED, COLD, ERROR, KERNELS, THREADS
from .page import Issue
from .plots import cells_in
from .style import color, legend, line, marker, order, panels_by

#: A run on n threads this many times slower than on 1 was spoiled by load.
SUSPECT_SLOWDOWN = 3.0


def plot_threads(ctx, res):
    d = ctx.rows_or_missing(res, "thread scaling", THREADS)
    if d is None:
        return
    fig, axes, batches = panels_by(d, "batch", 4.8)
    nmax = int(d["threads"].max())
    for ax, bsz in zip(axes, batches):
        sub = d[d["batch"] == bsz]
        for b, g in sub.groupby("backend"):
            t1 = g[g["threads"] == g["threads"].min()]["value"]
            if t1.empty:
                continue
            g = g.assign(speedup=float(t1.iloc[0]) / g["value"])
            line(ax, g, "threads", "speedup", b)
            worst = g["speedup"].min()
            if worst < 1 / SUSPECT_SLOWDOWN:
                res.issues.append(Issue(
                    "suspect", f"thread scaling, {b} at batch {bsz} is {1 / worst:.0f}x slower "
                    f"on {int(g.loc[g['speedup'].idxmin(), 'threads'])} threads than on 1: the "
                    "machine was probably busy (a pool's per-step barrier then waits a "
                    "scheduler time slice); rerun bench_threads on a quiet machine"))
        ax.plot([1, nmax], [1, nmax], ":", color="black", linewidth=1, label="ideal")
        ax.set_xlabel("threads (all pools set together)")
        ax.set_ylabel("speedup over 1 thread (×)")
        if sub["value"].notna().any() and ax.get_ylim()[0] < 0.2:
            ax.set_yscale("log")
        ax.set_title(f"batch {bsz}" + (" (sequential critical path)" if bsz == 1 else ""))
        ax.set_xticks(sorted(set(d["threads"])))
        ax.grid(True, alpha=0.3)
        legend(ax)
    res.figures.append(ctx.save(
        fig, "thread_scaling", "Thread scaling at batch " + " and ".join(map(str, batches)),
        "Time at 1 thread divided by time at n threads, same process settings for "
        "BLAS, Numba and torch. At batch 1 each step is too little work to share "
        "between cores before the next step must wait for it."))


def plot_compile(ctx, res):
    import matplotlib.pyplot as plt

    found = ctx.rows_or_missing(res, "compile time", COLD, CACHED, label="bench_compile")
    if found is None:
        return
    cold, cached = found
    keys = ["cell", "backend", "dtype"]
    m = cold.merge(cached[keys + ["value"]], on=keys, how="outer", suffixes=("_cold", "_cached"))
    m = m.sort_values(keys)
    kern = ctx.rows(KERNELS).sort_values("value")
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
    res.figures.append(ctx.save(
        fig, "compile_time", "Numba JIT: cold compile vs cached first call",
        "Left: each pair of bars is a fresh Python process with NUMBA_CACHE_DIR set to a "
        "new folder (cold: first call minus a warm call), then a second process with the "
        "same folder (cached: the whole first call). Colour: backend. Right: compile "
        "seconds per kernel from Numba's compile events in the cold processes (nested: "
        "a kernel's time includes the callees it compiled)."))


def plot_accuracy(ctx, res):
    d = ctx.rows_or_missing(res, "accuracy", ERROR)
    if d is None:
        return
    fig, axes, dtypes = panels_by(d, "dtype", 5.2)
    cells = cells_in(d)
    for ax, dt in zip(axes, dtypes):
        sub = d[d["dtype"] == dt]
        backends = order(set(sub["backend"]))
        width = 0.8 / max(len(backends), 1)
        for k, b in enumerate(backends):
            g = sub[sub["backend"] == b].set_index("cell").reindex(cells)
            vals = g["value"].clip(lower=1e-18)
            # markers, not bars: a bar's length on a log axis depends on where the axis starts
            ax.plot(np.arange(len(cells)) + (k - len(backends) / 2 + 0.5) * width, vals,
                    linestyle="none", marker=marker(b), markersize=9, color=color(b), label=b)
        ax.set_yscale("log")
        ax.set_xticks(range(len(cells)), [c.upper() for c in cells])
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_ylabel("max |backend − float64 oracle|")
        ax.set_title(dt)
        ax.grid(True, which="both", alpha=0.3)
    h, labels = axes[-1].get_legend_handles_labels()
    axes[-1].legend(h, labels, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    res.figures.append(ctx.save(
        fig, "accuracy", "Max absolute error against the float64 NumPy oracle",
        "Outputs, last h and last c compared with the oracle on the same inputs "
        "(exact zeros drawn at 1e-18). float32 results sit near 1e-7; a rise marks a "
        "kernel that rounds more."))
