"""The report's limits section (issue 12): the LSTM beside the parallel-in-time
cells (minGRU/minLSTM by a scan, causal attention), the crossover where
attention's T^2 work overtakes, the thread speedup at batch 1, and the cost
model's lower bound (dashed) with each backend's % of it
(benchmarks/bench_limits.py, lstm_numba/costmodel.py).

The bound at every measured T is recomputed here with
:func:`lstm_numba.costmodel.bound` from the machine's limits that the same asv
run recorded (the ``Peak``, ``Bandwidth``, ``Sync`` and ``Caches`` tracks), so
the dashed lines belong to the machine the solid ones were measured on.
"""
from __future__ import annotations

import math

import numpy as np

from .. import costmodel
from ..cells import flops
from . import style
from .bench_names import (BANDWIDTH, BOUND, BOUND_THREADS, CACHES, FMA, LIMITS, LIMITS_BATCH,
                          LIMITS_THREADS, PEAK_SGEMM, PERCENT, PERCENT_THREADS, SYNC,
                          SYNC_THREADS)
from .page import Issue, KeyNumber, SectionResult, Table
from .sections import Section

CELLS = ("lstm", "mingru", "minlstm", "attention")
NAMES = {"lstm": "LSTM", "mingru": "minGRU", "minlstm": "minLSTM", "attention": "attention"}
#: Project backends held to the issue's target (>= 50 % of the bound).
PROJECT = ("numba", "numba-parallel")
TARGET_PERCENT = 50.0
COMMAND = ("make bench (or: asv run --python=same --set-commit-hash $(git rev-parse HEAD) "
           "-b bench_limits), then python -m lstm_numba report")


# ----------------------------------------------------------------- helpers

def _rows(ctx, *names):
    """The rows of several benchmarks with the same parameters, together."""
    import pandas as pd

    parts = [ctx.rows(n) for n in names]
    parts = [p for p in parts if not p.empty]
    return pd.concat(parts, ignore_index=True) if parts else ctx.rows(names[0])


def machine_from_rows(ctx) -> costmodel.Machine | None:
    """The cost model's :class:`~lstm_numba.costmodel.Machine` from the limit
    tracks of this run; None when one of them is missing."""
    fma, sg, bw, caches = (ctx.rows(n) for n in (FMA, PEAK_SGEMM, BANDWIDTH, CACHES))
    sync = _rows(ctx, SYNC, SYNC_THREADS)
    if fma.empty or bw.empty or sync.empty or caches.empty:
        return None
    threads = tuple(sorted(int(t) for t in set(fma["threads"])))
    tables = {"read": {}, "write": {}}
    for r in bw.itertuples():
        if r.kind in tables:
            tables[r.kind][f"{r.level}/{int(r.threads)}"] = float(r.value)
    need = {f"{lv}/{t}" for lv in costmodel.LEVELS for t in threads}
    if any(not need <= set(t) for t in tables.values()):
        return None
    ns = {(r.mode, int(r.threads)): float(r.value) for r in sync.itertuples()}
    lat = ns.get(("fma_latency", 1))
    if lat is None:
        return None
    return costmodel.Machine(
        cpu=str(ctx.machine), caches={r.level: int(r.value) for r in caches.itertuples()},
        working_set={}, fma_gflops={int(r.threads): float(r.value) for r in fma.itertuples()},
        sgemm_gflops={int(r.threads): float(r.value) for r in sg.itertuples()},
        fma_latency_ns=lat, read_gbs=tables["read"], write_gbs=tables["write"],
        copy_gbs=dict(tables["read"]),
        pingpong_ns={t: ns.get(("pingpong", t), 0.0) for t in threads},
        barrier_ns={t: ns.get(("barrier", t), 0.0) for t in threads},
        forkjoin_ns={t: ns.get(("forkjoin", t), 0.0) for t in threads}, threads=threads)


def _bound(m, cell, backend, t_len, batch, hidden, threads):
    try:
        return costmodel.bound(cell, backend, int(t_len), int(batch), int(hidden),
                               int(threads), m=m)
    except ValueError:
        return None


def crossover(ts_a, ys_a, ts_b, ys_b, work_a=None, work_b=None):
    """T at which series a (attention) becomes slower than series b, log-log.

    Between two measured T where ``a/b`` crosses 1 the point is interpolated
    (power laws through the neighbours). Past the largest T it is
    extrapolated: with ``work_a``/``work_b`` (callables T -> work, e.g. FLOP
    counts) each series grows from its last point as its work does;
    otherwise as the power law through its last two points.

    Returns
    -------
    (float or None, str)
        The crossover T and how it was found: "measured", "extrapolated",
        "a is already slower" or "no crossover" (b grows at least as fast).
    """
    a = dict(zip(map(float, ts_a), map(float, ys_a)))
    b = dict(zip(map(float, ts_b), map(float, ys_b)))
    ts = sorted(set(a) & set(b))
    if len(ts) < 2:
        return None, "no crossover"
    r = [math.log(a[t] / b[t]) for t in ts]
    for (t0, r0), (t1, r1) in zip(zip(ts, r), zip(ts[1:], r[1:])):
        if r0 <= 0 < r1:
            lt = math.log(t0) + (math.log(t1) - math.log(t0)) * (-r0) / (r1 - r0)
            return math.exp(lt), "measured"
    if r[0] > 0:
        return ts[0], "a is already slower"
    t0, t1 = ts[-2], ts[-1]

    def grow(series, work):
        if work is not None:
            return lambda t: series[t1] * work(t) / work(t1)
        k = math.log(series[t1] / series[t0]) / math.log(t1 / t0)
        return lambda t: series[t1] * (t / t1) ** k

    fa, fb = grow(a, work_a), grow(b, work_b)
    lo, hi = t1, t1 * 2.0
    while fa(hi) <= fb(hi):                  # a log-spaced search, then bisection
        lo, hi = hi, hi * 2.0
        if hi > 1e12:
            return None, "no crossover"
    for _ in range(60):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if fa(mid) <= fb(mid) else (lo, mid)
    return hi, "extrapolated"


def _best(d, cell):
    """Per T, the least time over the backends of ``cell``: (T array, s array, backends)."""
    g = d[d["cell"] == cell]
    if g.empty:
        return None
    best = g.loc[g.groupby("seq_len")["value"].idxmin()].sort_values("seq_len")
    return best["seq_len"].to_numpy(), best["value"].to_numpy(), list(best["backend"])


# ------------------------------------------------------------------- plots

def _time_plot(ctx, res, d, m, stem, title, what):
    import matplotlib.pyplot as plt

    cells = [c for c in CELLS if c in set(d["cell"])]
    fig = plt.figure(figsize=(4.2 * max(len(cells), 2), 8.4))
    grid = fig.add_gridspec(2, len(cells))
    top = fig.add_subplot(grid[0, :])
    styles = {"lstm": "-", "mingru": "--", "minlstm": "-.", "attention": ":"}
    colours = {"lstm": "#d62728", "mingru": "#1f77b4", "minlstm": "#17becf",
               "attention": "#9467bd"}
    best = {c: _best(d, c) for c in cells}
    for c in cells:
        t, s, _ = best[c]
        top.plot(t, s * 1e3, styles[c], color=colours[c], marker="o", linewidth=2,
                 label=f"{NAMES[c]} (fastest backend)")
    crossings = []
    if "attention" in best:
        for other in ("lstm", "mingru"):
            if other not in best:
                continue
            ta, sa, _ = best["attention"]
            to, so, _ = best[other]
            # past the measured T: attention grows as its FLOPs (T^2), the others as T
            bh = d[["batch", "hidden"]].iloc[0]
            tx, how = crossover(ta, sa, to, so,
                                lambda t: flops("attention", int(t), int(bh["batch"]),
                                                int(bh["hidden"]), int(bh["hidden"])),
                                lambda t: t)
            crossings.append((other, tx, how))
            if tx is not None and how in ("measured", "extrapolated"):
                top.axvline(tx, color=colours[other], linewidth=0.9, alpha=0.6,
                            gid="annotation")
                y = np.interp(math.log(tx), np.log(ta.astype(float)), np.log(sa * 1e3))
                top.annotate(f"attention overtakes {NAMES[other]}\nT ≈ {tx:,.0f}"
                             + (" (extrapolated)" if how == "extrapolated" else ""),
                             (tx, math.exp(y)), textcoords="offset points", xytext=(-6, -30),
                             ha="right", fontsize=8, color=colours[other])
    top.set(xscale="log", yscale="log", xlabel="sequence length T",
            ylabel="forward time (ms)", title=f"{what}: the LSTM vs the scan vs attention")
    top.grid(True, which="both", alpha=0.3)
    top.legend(fontsize=8, loc="upper left")
    for j, c in enumerate(cells):
        ax = fig.add_subplot(grid[1, j])
        g = d[d["cell"] == c]
        curves = {}
        for b in style.order(g["backend"]):
            gb = g[g["backend"] == b].sort_values("seq_len").assign(ms=lambda x: x["value"] * 1e3)
            style.line(ax, gb, "seq_len", "ms", b)
            if m is not None:
                pts = [(r.seq_len, _bound(m, c, b, r.seq_len, r.batch, r.hidden, r.threads))
                       for r in gb.itertuples()]
                curves[b] = tuple((t, x.seconds * 1e3) for t, x in pts if x is not None)
        # Backends on the same thread count share one bound: one dashed line then.
        shapes = {v for v in curves.values() if v}
        if len(shapes) == 1:
            ax.plot(*zip(*shapes.pop()), "--", color="black", linewidth=1.2, marker=".",
                    label="cost-model bound")
        else:
            for b, pts in curves.items():
                if pts:
                    ax.plot(*zip(*pts), "--", color=style.color(b), linewidth=1.1,
                            marker=".", label=f"{b} bound")
        ax.set(xscale="log", yscale="log", xlabel="T", title=NAMES[c])
        if j == 0:
            ax.set_ylabel("forward time (ms)")
        ax.grid(True, which="both", alpha=0.3)
        style.legend(ax, fontsize=7)
    note = style.shape_note(d, ("batch", "hidden", "threads"))
    res.figures.append(ctx.save(
        fig, stem, title,
        f"Top: the fastest measured backend of each cell, median forward time vs T (log-log); "
        f"the vertical lines mark the T where attention's T² work overtakes (past the largest "
        f"T measured: extrapolated, attention growing as its FLOPs, the others as T). Bottom: every "
        f"backend (solid) and the cost model's lower bound (dashed: black where every backend "
        f"shares it, else in each backend's colour; max(FLOPs/peak, bytes/bandwidth, sync) "
        f"per step, chained over T for the LSTM). {note}"))
    return crossings


def _speedup_plot(ctx, res, one, two, m):
    import matplotlib.pyplot as plt

    if two.empty:
        res.issues.append(Issue("missing", "thread speedup: no bench_limits.LimitsThreads "
                                           "results"))
        return {}
    cells = [c for c in CELLS if c in set(two["cell"])]
    fig, axes = plt.subplots(1, len(cells), figsize=(3.6 * len(cells), 3.8), squeeze=False)
    speed = {}
    nmax = int(two["threads"].max())
    for ax, c in zip(axes[0], cells):
        bounds = {}
        for b in style.order(two[two["cell"] == c]["backend"]):
            g2 = two[(two["cell"] == c) & (two["backend"] == b)]
            for r in g2.itertuples():
                base = one[(one["cell"] == c) & (one["backend"] == b)
                           & (one["seq_len"] == r.seq_len) & (one["threads"] == 1)]
                if base.empty:
                    continue
                s = float(base["value"].iloc[0]) / r.value
                speed[(c, b, int(r.seq_len), int(r.threads))] = s
                ax.plot([1, r.threads], [1, s], "-", marker=style.marker(b),
                        color=style.color(b), label=b)
                if s < 1 / 3:
                    res.issues.append(Issue("suspect", f"limits: {c} {b} at T={r.seq_len} is "
                                            f"{1 / s:.0f}x slower on {r.threads} threads than "
                                            "on 1: the machine was probably busy"))
                elif s > r.threads * 1.1:
                    res.issues.append(Issue("suspect", f"limits: {c} {b} at T={r.seq_len} is "
                                            f"{s:.2f}x faster on {r.threads} threads than on "
                                            "1, more than ideal: the 1-thread time was "
                                            "probably disturbed"))
                lo = _bound(m, c, b, r.seq_len, 1, r.hidden, 1) if m else None
                hi = _bound(m, c, b, r.seq_len, 1, r.hidden, r.threads) if m else None
                if lo and hi:
                    bounds[b] = ((1, r.threads), (1, lo.seconds / hi.seconds))
        if len(set(bounds.values())) == 1:      # the same bound for every backend: one line
            ax.plot(*next(iter(bounds.values())), "--", color="black", linewidth=1.2,
                    label="cost-model bound")
        else:
            for b, (xs, ys) in bounds.items():
                ax.plot(xs, ys, "--", color=style.color(b), linewidth=1, label=f"{b} bound")
        ax.plot([1, nmax], [1, nmax], ":", color="black", linewidth=1, label="ideal")
        ax.set(xlabel="threads", ylabel="speedup over 1 thread (×)", title=NAMES[c],
               xticks=list(range(1, nmax + 1)))
        if ax.get_ylim()[0] < 0.2:      # a busy machine's 100x slowdowns: keep 1x readable
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        style.legend(ax, fontsize=7)
    t = style.num(int(two["seq_len"].max()))
    res.figures.append(ctx.save(
        fig, "limits_thread_speedup", "Thread speedup at batch 1",
        f"Forward time on 1 thread ÷ on n threads, batch 1, T={t} (solid); dashed: the "
        "same ratio of the cost model's bounds (what the hardware allows: the LSTM pays a "
        "barrier every step, a scan one per pass). Dotted: ideal. A 2-thread figure on a "
        "busy shared machine is suspect."))
    return speed


def _percent_table(ctx, res, m):
    bound, pct = _rows(ctx, BOUND, BOUND_THREADS), _rows(ctx, PERCENT, PERCENT_THREADS)
    if bound.empty or pct.empty:
        res.issues.append(Issue("missing", "% of bound: no bench_limits.Bounds results"))
        return
    keys = ["cell", "backend", "threads"]
    d = bound.merge(pct, on=keys + ["seq_len", "batch", "hidden"], suffixes=("_b", "_p"))
    rows, worst = [], None
    for c in CELLS:
        for b in style.order(d[d["cell"] == c]["backend"]):
            for r in d[(d["cell"] == c) & (d["backend"] == b)].sort_values("threads").itertuples():
                measured = r.value_b * 100.0 / r.value_p
                model = _bound(m, c, b, r.seq_len, r.batch, r.hidden, r.threads) if m else None
                verdict = ""
                if b in PROJECT:
                    verdict = "meets" if r.value_p >= TARGET_PERCENT else "below"
                    # the key number: one thread (2-thread figures of a shared
                    # machine are often spoiled; they stay in the table)
                    if r.threads == 1 and (worst is None or r.value_p < worst[0]):
                        worst = (r.value_p, c, b, int(r.threads))
                if r.value_p > 100:
                    res.issues.append(Issue("suspect", f"limits: {c} {b} on {r.threads} "
                                            f"thread(s) runs at {r.value_p:.0f}% of its bound: "
                                            "the model misses a shortcut"))
                rows.append((NAMES[c], b, style.num(r.threads), style.fmt_time(r.value_b),
                             style.fmt_time(measured), f"{r.value_p:.0f}%",
                             model.binds if model else "–", verdict))
    t = style.num(int(d["seq_len"].iloc[0]))
    res.tables.append(Table(
        f"% of the cost model's bound, T={t}, B=1, H={style.num(int(d['hidden'].iloc[0]))}",
        ("cell", "backend", "threads", "bound", "measured", "% of bound", "binds",
         f"≥ {TARGET_PERCENT:.0f}% (project)"), tuple(rows),
        note="measured: least of repeated calls, every case timed side by side in one "
             "process (Bounds' setup_cache); 100% would be the hardware's limit."))
    if worst:
        res.key_numbers.append(KeyNumber(
            f"lowest % of bound of a project backend on 1 thread (T={t}, B=1: {worst[1]} "
            f"{worst[2]})", f"{worst[0]:.0f}%", PERCENT))


def _machine_table(res, m):
    rows = []
    for p in m.threads:
        rows.append((str(p), f"{m.fma_gflops[p]:.1f}", f"{m.sgemm_gflops.get(p, float('nan')):.1f}",
                     *(f"{m.read_gbs[f'{lv}/{p}']:.1f}" for lv in costmodel.LEVELS),
                     f"{m.barrier_ns[p]:.0f}" if p > 1 else "–", f"{m.forkjoin_ns[p] / 1e3:.1f}"))
    res.tables.append(Table(
        "The machine's limits (micro-benchmarks of this run)",
        ("threads", "FMA GFLOP/s", "sgemm GFLOP/s", "read L2 GB/s", "read L3 GB/s",
         "read DRAM GB/s", "barrier ns", "fork+join µs"), tuple(rows),
        note=f"FMA latency {m.fma_latency_ns:.2f} ns; caches "
             + ", ".join(f"{k} {costmodel._mib(v)}" for k, v in m.caches.items())))


# ------------------------------------------------------------------- build

def build(ctx) -> SectionResult:
    res = SectionResult()
    one = ctx.rows(LIMITS)
    if one.empty:
        res.issues.append(Issue("missing", "limits: no bench_limits.Limits results"))
        return res
    m = machine_from_rows(ctx)
    if m is None:
        res.issues.append(Issue("missing", "limits: the machine's limit tracks (Peak, Bandwidth, "
                                           "Sync, Caches) are incomplete: no bound lines"))
    else:
        # copy is not tracked (the report fills it from read): its lines say nothing new
        res.issues.extend(Issue("suspect", f"limits: {s}") for s in m.suspect()
                          if not s.startswith("copy"))
    crossings = _time_plot(ctx, res, one, m, "limits_time_vs_T",
                           "The parallelization limit: time vs T at batch 1", "batch 1")
    for other, tx, how in crossings:
        value = ("none in sight" if tx is None else
                 f"T ≈ {tx:,.0f}" + (" (extrapolated)" if how == "extrapolated" else "")
                 if how != "a is already slower" else f"below T={tx:,.0f}")
        res.key_numbers.append(KeyNumber(f"attention slower than {NAMES[other]} from "
                                         "(batch 1, fastest backends)", value, LIMITS))
    b16 = ctx.rows(LIMITS_BATCH)
    if b16.empty:
        res.issues.append(Issue("missing", "limits at batch 16: no bench_limits.LimitsBatch "
                                           "results"))
    else:
        nb = style.num(int(b16["batch"].iloc[0]))
        _time_plot(ctx, res, b16, m, "limits_time_vs_T_batch16", f"Time vs T at batch {nb}",
                   f"batch {nb}")
    speed = _speedup_plot(ctx, res, one, ctx.rows(LIMITS_THREADS), m)
    for (c, b), label in ((("mingru", "numba-parallel"), "minGRU scan"),
                          (("lstm", "numba-parallel"), "LSTM")):
        hits = [(k, v) for k, v in speed.items() if k[:2] == (c, b)]
        if hits:
            (_, _, t, p), s = max(hits, key=lambda kv: kv[0][2])
            res.key_numbers.append(KeyNumber(f"{label} ({b}) speedup on {p} threads, B=1, "
                                             f"T={t}", f"{s:.2f}×", LIMITS_THREADS))
    _percent_table(ctx, res, m)
    if m is not None:
        _machine_table(res, m)
    res.notes.append(
        "The bound per step is max(FLOPs / peak, bytes / bandwidth, sync latency), from "
        "micro-benchmarks run in the same asv run (FMA chains in registers, read/write "
        "loops at L2, L3 and DRAM working sets, a two-thread barrier on atomic flags). "
        "The LSTM's steps form a chain, so its bound is T × the step's (at B=1 the step "
        "streams all of w_hh); a scan splits T over threads and pays a barrier per pass; "
        "attention's T² FLOPs make it compute-bound at long T. Command: " + COMMAND + ".")
    return res


SECTIONS = [Section(
    "limits", "The parallelization limit: LSTM vs scan vs attention", build,
    needs=(LIMITS, LIMITS_THREADS, LIMITS_BATCH, BOUND, PERCENT, BOUND_THREADS, PERCENT_THREADS,
           FMA, PEAK_SGEMM, BANDWIDTH, SYNC, SYNC_THREADS, CACHES),
    intro="Why an LSTM is hard to parallelize, measured: its step needs the previous one, "
          "so its time is linear in T and a second thread buys little at batch 1; minGRU "
          "and minLSTM drop h from the gates and run as a parallel scan; attention has no "
          "recurrence but T² work. The dashed lines are what the hardware allows.")]
