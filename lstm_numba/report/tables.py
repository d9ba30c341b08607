"""The report's tables: key numbers, time per step, and the benchmarks no
section plots ("other results"), as :class:`~.page.Table`/:class:`~.page.KeyNumber`."""
from __future__ import annotations

import numpy as np

from ..backends import REGISTRY
from .bench_names import (BH_EFF, BH_GFLOPS, CACHED, COLD, ERROR, RACE_RATIO, SEQ_TIME, SGEMM,
                          THREADS)
from .load import BASE_COLUMNS, rows
from .page import KeyNumber, Table
from .plots import cells_in
from .style import fmt_time, num, order, shape_note


def _threads(n) -> str:
    n = num(n)
    return f"{n} thread{'s' if n != '1' else ''}"


def key_numbers(df) -> list[KeyNumber]:
    """The numbers to read first, each naming the benchmark it comes from."""
    out = []
    d = rows(df, SEQ_TIME)
    if not d.empty:
        tmax = d["seq_len"].max()
        big = d[d["seq_len"] == tmax].pivot_table(index="cell", columns="backend",
                                                  values="value")
        ours = [n for n, b in REGISTRY.items()
                if b.device == "cpu" and b.kind in ("oracle", "project")]
        if "torch" in big.columns:
            for cell in cells_in(big.reset_index()):
                for b in ours:
                    if b in big.columns and np.isfinite(big.loc[cell, b]):
                        out.append(KeyNumber(f"{cell.upper()} {b} / torch time, T={tmax}",
                                             f"{big.loc[cell, b] / big.loc[cell, 'torch']:.2f}",
                                             "SeqLen.time_forward, same run"))
    for r in rows(df, SGEMM).sort_values("threads").itertuples(index=False):
        out.append(KeyNumber(f"sgemm 1024³ rate, {_threads(r.threads)}",
                             f"{r.value:.0f} GFLOP/s", "Sgemm.track_sgemm_gflops"))
    g, e = rows(df, BH_GFLOPS), rows(df, BH_EFF)
    for b in [n for n, x in REGISTRY.items()
              if x.device == "cpu" and x.kind in ("project", "peer")]:
        sub = g[g["backend"] == b] if not g.empty else g
        if sub.empty:
            continue
        best = sub.loc[sub["value"].idxmax()]
        eff_txt = ""
        if not e.empty:
            k = e[(e["backend"] == b) & (e["hidden"] == best["hidden"])
                  & (e["batch"] == best["batch"]) & (e["cell"] == best["cell"])]
            if not k.empty:
                eff_txt = f" ({k['value'].iloc[0]:.0%} of sgemm)"
        out.append(KeyNumber(f"best GFLOP/s, {b} ({best['cell']})",
                             f"{best['value']:.1f}{eff_txt} at H={int(best['hidden'])}, "
                             f"B={int(best['batch'])}", "BatchHiddenRates"))
    t = rows(df, THREADS)
    if not t.empty:
        for bsz in sorted(set(t["batch"])):
            for b in order(set(t["backend"])):
                g2 = t[(t["batch"] == bsz) & (t["backend"] == b)].sort_values("threads")
                if len(g2) >= 2:
                    s = g2["value"].iloc[0] / g2["value"].iloc[-1]
                    out.append(KeyNumber(f"thread speedup {int(g2['threads'].iloc[0])}→"
                                         f"{int(g2['threads'].iloc[-1])}, batch {bsz}, {b}",
                                         f"{s:.2f}×", "Threads.time_forward"))
    for r in rows(df, RACE_RATIO).to_dict("records"):
        out.append(KeyNumber(
            f"race: best Numba / torch time, {r.get('cell')}, H={num(r.get('hidden'))}, "
            f"B={num(r.get('batch'))}, T={num(r.get('seq_len'))}, "
            f"{num(r.get('threads'))} thr", f"{r['value']:.2f}", RACE_RATIO))
    c = rows(df, COLD)
    if not c.empty:
        out.append(KeyNumber("cold JIT compile (median over entry points)",
                             fmt_time(c["value"].median()), "Compile.track_cold_compile"))
    c = rows(df, CACHED)
    if not c.empty:
        out.append(KeyNumber("first call with JIT cache (median)",
                             fmt_time(c["value"].median()), "Compile.track_cached_first_call"))
    a = rows(df, ERROR)
    f32 = a[a["dtype"] == "float32"] if not a.empty else a
    if not f32.empty:
        worst = f32.loc[f32["value"].idxmax()]
        out.append(KeyNumber("worst float32 error vs oracle", f"{worst['value']:.2g} "
                             f"({worst['backend']}, {worst['cell']})", "Accuracy"))
    return out


def step_tables(df) -> tuple[list[Table], str]:
    """Time per step (µs) per cell: backends as rows (registry order), T as columns;
    and a sentence saying what was measured."""
    d = rows(df, SEQ_TIME)
    if d.empty:
        return [], ""
    d = d.assign(us=d["value"] / d["seq_len"] * 1e6)
    note = (f"Median of asv's samples ({SEQ_TIME}), "
            + shape_note(d, ("batch", "hidden", "threads")))
    out = []
    for cell in cells_in(d):
        t = d[d["cell"] == cell].pivot_table(index="backend", columns="seq_len", values="us")
        t = t.reindex(order(t.index))
        header = ("backend",) + tuple(f"T={num(c)}" for c in t.columns)
        body = tuple((b,) + tuple(f"{v:.3g}" if np.isfinite(v) else "–" for v in t.loc[b])
                     for b in t.index)
        out.append(Table(cell.upper(), header, body))
    return out, note


def other_results(df, used, limit=60) -> list[Table]:
    """One table per benchmark that has values but that no section reads (``used``):
    the CPU race, the GPU asv benchmarks, anything new."""
    out = []
    if df.empty:
        return out
    rest = df[~df["benchmark"].isin(set(used)) & df["value"].notna()]
    for name, g in rest.groupby("benchmark", sort=True):
        g = g.dropna(axis=1, how="all")
        pcols = [c for c in g.columns if c not in BASE_COLUMNS]
        body = []
        for r in g.head(limit).to_dict("records"):
            unit = r.get("unit") or ""
            val = fmt_time(r["value"]) if unit == "seconds" else f"{r['value']:.4g} {unit}"
            body.append((", ".join(f"{c}={num(r[c])}" for c in pcols), val))
        note = f"first {limit} of {len(g)} rows" if len(g) > limit else ""
        out.append(Table(name, ("parameters", "value"), tuple(body), note))
    return out


def _versions() -> str:
    from importlib import metadata

    out = []
    for pkg in ("numpy", "numba", "torch"):
        try:
            out.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            pass
    return ", ".join(out)


def footnote(df, machines: dict) -> str:
    """'machine ... · commit ... · versions' for the bottom of every figure."""
    if df.empty:
        return "no results"
    bits = []
    for m, g in df.groupby("machine"):
        info = machines.get(m, {})
        hw = ", ".join(str(info[k]) for k in ("cpu", "num_cpu", "os") if info.get(k))
        if info.get("num_cpu"):
            hw = hw.replace(f", {info['num_cpu']},", f", {info['num_cpu']} cpus,")
        py = g["python"].dropna().iloc[0] if g["python"].notna().any() else "?"
        bits.append(f"machine {m} ({hw}) · commit {str(g['commit'].iloc[0])[:8]} · Python {py}")
    return " | ".join(bits) + f" · {_versions()} (report env)"
