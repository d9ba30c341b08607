"""The GPU section: the newest committed ``benchmarks/results/gpu_check-*.json``
(or ``.csv``), as written by ``benchmarks/gpu_check.py`` (read by :mod:`.gpu_record`).

It shows the device and date, µs/step of each design against cuDNN with the
throughput ratio, plots of µs/step vs B and vs H, and the record's own split
of a call (``kernel_us_per_step``: in-kernel time, ``host_us``: the host's
fixed cost per call, ...) when the record has it; the in-kernel time is also
drawn, dashed, beside each design's wall-clock line. An absent field is not shown.
"""
from __future__ import annotations

import numpy as np

from ..cells import CELLS
from .gpu_record import (BASELINE, COMMAND, EXTRA_NAMES, KERNEL_US, KNOWN, PATTERN, Record,
                         device, frame, newest_record, read_record, record_date)
from .page import Issue, KeyNumber, SectionResult, Table
from .sections import Section
from .style import color, legend, marker, order


def _ours(df) -> list[str]:
    """Our designs' labels (not the baseline, not the dispatch-path diagnostic), in order."""
    labels = df[(df["backend"] != BASELINE) & ~df["variant"].str.contains("dispatch")]["label"]
    backends = order(set(df["backend"]))
    # registry order of the backends; within one, the record's own order of its variants
    return sorted(dict.fromkeys(labels), key=lambda s: backends.index(s.split("[")[0]))


def _plot(ctx, df, cell, x, panel, base_label, foot):
    """µs/step vs ``x`` (B or H), one panel per value of ``panel``, at the largest T."""
    import matplotlib.pyplot as plt
    import pandas as pd

    t = int(df["T"].max())
    d = df[(df["cell"] == cell) & (df["T"] == t)]
    values = sorted(set(d[panel]))
    kfield = KERNEL_US if KERNEL_US in d.columns and d[KERNEL_US].notna().any() else None
    lines = [base_label] + [lb for lb in sorted(set(d["label"])) if lb.startswith(BASELINE)
                            and lb != base_label] + _ours(d)
    first = {}
    for lb in lines:
        first.setdefault(lb.split("[")[0], lb)
    fig, axes = plt.subplots(1, len(values), figsize=(4.2 * len(values) + 0.6, 4.2),
                             squeeze=False, sharey=True)
    name = {"B": "batch B", "H": "hidden H"}
    for ax, v in zip(axes[0], values):
        sub = d[d[panel] == v]
        for lb in lines:
            g = sub[sub["label"] == lb].sort_values(x)
            if g.empty:
                continue
            b = lb.split("[")[0]
            # a backend's first variant is its design; the others dash-dotted, edged black
            main = lb == base_label or lb == first.get(b)
            style = "-" if main else (":" if b == BASELINE else "-.")
            shown = f"{lb} (cuDNN)" if lb == base_label else lb
            ax.plot(g[x], g["us_per_step"], style, marker=marker(b), color=color(b),
                    label=shown, linewidth=2.2 if lb == base_label else 1.6, markersize=6,
                    markeredgecolor=color(b) if main else "black")
            k = g[pd.to_numeric(g[kfield], errors="coerce") > 0] if kfield else g.iloc[0:0]
            if b != BASELINE and main and not k.empty:
                ax.plot(k[x], k[kfield].astype(float), "--", marker=marker(b), color=color(b),
                        markerfacecolor="white", label=f"{lb}, in-kernel", linewidth=1.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(name[x])
        ax.set_title(f"{'H' if panel == 'H' else 'B'} = {v}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("µs per step (lower is better)")
    legend(axes[0][-1], from_axes=axes[0], loc="upper left", bbox_to_anchor=(1.02, 1.0))
    other = ", ".join(lb for lb in lines if lb.startswith(BASELINE) and lb != base_label)
    variants = any(lb != first[lb.split("[")[0]] for lb in lines if not lb.startswith(BASELINE))
    suffix = f"_{cell}" if len(set(df["cell"])) > 1 else ""
    what = "batch" if x == "B" else "hidden size"
    return ctx.save(
        fig, f"gpu_us_per_step_vs_{'batch' if x == 'B' else 'hidden'}{suffix}",
        f"GPU: {cell.upper()} time per step vs {what} (T={t})",
        f"Wall-clock time of one forward call divided by T (median of repeats, inputs on the "
        f"device, a synchronisation per call, float32), each design against cuDNN "
        f"({base_label}, thick line){'; dotted: ' + other if other else ''}"
        f"{'; dash-dotted, black-edged: a design’s other variants' if variants else ''}"
        f"{'; dashed: in-kernel time only' if kfield else ''}. Only measured sizes are drawn.",
        foot)


def _table(df, base_label) -> Table:
    ours = _ours(df)
    header = ("cell", "B", "H", "T", f"{base_label} µs/step") + tuple(
        f"{lb} µs/step (× cuDNN)" for lb in ours)
    body = []
    for (cell, t, h, b), g in df.groupby(["cell", "T", "H", "B"]):
        by = g.set_index("label")
        row = [cell, str(b), str(h), str(t)]
        row.append(f"{by.loc[base_label, 'us_per_step']:.3g}" if base_label in by.index else "–")
        for lb in ours:
            if lb in by.index:
                r = by.loc[lb]
                xr = f" ({r['x_cudnn']:.2f}×)" if np.isfinite(r["x_cudnn"]) else ""
                row.append(f"{r['us_per_step']:.3g}{xr}")
            else:
                row.append("–")
        body.append(tuple(row))
    body.sort(key=lambda r: (CELLS.index(r[0]) if r[0] in CELLS else 9, int(r[3]), int(r[2]),
                             int(r[1])))
    return Table("Time per step (µs) and throughput over cuDNN's (× > 1: faster)", header,
                 tuple(body), "× cuDNN = cuDNN's time / the design's time, same sizes, same run.")


def _extras(df) -> Table | None:
    """The record's numeric fields beyond the timing, at the largest T, per design."""
    import pandas as pd

    num = {c: pd.to_numeric(df[c], errors="coerce") for c in df.columns if c not in KNOWN}
    cols = [c for c, v in num.items() if v.notna().any() and v[df[c].notna()].notna().all()]
    cols = sorted(cols, key=lambda c: (list(EXTRA_NAMES).index(c) if c in EXTRA_NAMES else 99, c))
    if not cols:
        return None
    t = int(df["T"].max())
    keep = (df["T"] == t) & ~df["variant"].str.contains("dispatch") & \
        ~((df["backend"] == BASELINE) & (df["variant"] == "tf32"))
    rows = df[keep & df[cols].notna().any(axis=1)]
    backends, labels = order(set(df["backend"])), list(dict.fromkeys(df["label"]))
    rows = rows.assign(_b=[backends.index(b) for b in rows["backend"]],
                       _v=[labels.index(lb) for lb in rows["label"]])
    body = []
    for _, r in rows.sort_values(["cell", "H", "B", "_b", "_v"]).iterrows():
        vals = tuple("–" if pd.isna(num[c][r.name]) else f"{num[c][r.name]:.3g}" for c in cols)
        body.append((r["cell"], str(r["B"]), str(r["H"]), r["label"], f"{r['us_per_step']:.3g}")
                    + vals)
    return Table(f"Where the time goes (T={t})",
                 ("cell", "B", "H", "design", "µs/step") + tuple(EXTRA_NAMES.get(c, c)
                                                                 for c in cols),
                 tuple(body), "µs/step is wall-clock per step of a whole call; the other "
                 "columns are the record's own split of it (gpu_check.py measures them with "
                 "CUDA events).")


def _barrier(rec: Record) -> Table | None:
    rows = [r for r in rec.barrier if isinstance(r, dict)]
    if not rows:
        return None
    header = tuple(dict.fromkeys(k for r in rows for k in r))
    body = tuple(tuple("–" if r.get(k) is None else
                       (f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]))
                       for k in header) for r in rows)
    return Table("The grid barrier alone (an empty persistent loop)", header, body)


def _key_numbers(df, src) -> list[KeyNumber]:
    out = []
    for lb in _ours(df):
        g = df[(df["label"] == lb) & np.isfinite(df["x_cudnn"].astype(float))]
        if g.empty:
            continue
        lo, hi = g.loc[g["x_cudnn"].idxmin()], g.loc[g["x_cudnn"].idxmax()]
        out.append(KeyNumber(f"{lb} throughput over cuDNN, range",
                             f"{lo['x_cudnn']:.2f}× (B={lo['B']} H={lo['H']} T={lo['T']}) to "
                             f"{hi['x_cudnn']:.2f}× (B={hi['B']} H={hi['H']} T={hi['T']})", src))
    # the record's order (a set's order changes from run to run), the baseline last
    for lb in sorted(dict.fromkeys(df["label"]), key=lambda s: s.startswith(BASELINE)):
        b1 = df[(df["label"] == lb) & (df["B"] == 1)]
        if not b1.empty and "dispatch" not in lb:
            f = b1.loc[b1["us_per_step"].idxmin()]
            out.append(KeyNumber(f"per-step floor at B=1, {lb}",
                                 f"{f['us_per_step']:.3g} µs (H={f['H']} T={f['T']})", src))
    return out


def build(ctx) -> SectionResult:
    res = SectionResult()
    path = newest_record(ctx.records_dir)
    if path is None:
        res.notes.append(f"No GPU results are committed in {ctx.records_dir}/ (no "
                         f"{PATTERN}.json or .csv). To produce one: {COMMAND}.")
        res.issues.append(Issue("missing", f"GPU section: no {PATTERN}.json in "
                                           f"{ctx.records_dir}; run {COMMAND}"))
        return res
    try:
        rec = read_record(path)
    except ValueError as e:
        res.issues.append(Issue("error", f"GPU section: {e}"))
        return res
    env, checks = rec.env, rec.checks
    df, base_label = frame(rec.timings, env)
    src = path.name
    res.notes.append(f"Measured on {device(env)} on {record_date(path, env)} by "
                     f"benchmarks/gpu_check.py; record {path} (the newest gpu_check record there). "
                     f"float32, cuDNN with TF32 {'on' if env.get('tf32_cudnn') else 'off'}.")
    if env.get("note"):
        res.notes.append(str(env["note"]))
    if env.get("simulator"):
        res.issues.append(Issue("suspect", f"{src} was run in numba-cuda's simulator: its "
                                           "timings mean nothing"))
    if checks:
        ok = sum(bool(c.get("ok")) for c in checks)
        res.notes.append(f"Checks against the float64 oracle in the same run: {ok} of "
                         f"{len(checks)} passed.")
        if ok < len(checks):
            res.issues.append(Issue("suspect", f"{src}: {len(checks) - ok} GPU checks failed"))
    if df.empty or "label" not in df.columns:
        res.issues.append(Issue("missing", f"GPU section: {src} holds no timing with a value"))
        return res
    if base_label not in set(df["label"]):
        res.issues.append(Issue("missing", f"GPU section: {src} has no {base_label} rows, "
                                           "so no ratio to cuDNN"))
    res.tables.append(_table(df, base_label))
    for extra in (_extras(df), _barrier(rec)):
        if extra is not None:
            res.tables.append(extra)
    res.key_numbers += _key_numbers(df, src)
    foot = f"{device(env)} · {record_date(path, env)} · {src} (benchmarks/gpu_check.py)"
    for cell in [c for c in CELLS if c in set(df["cell"])]:
        res.figures.append(_plot(ctx, df, cell, "B", "H", base_label, foot))
        res.figures.append(_plot(ctx, df, cell, "H", "B", base_label, foot))
    return res


SECTIONS = [Section(
    "gpu", "GPU: our CUDA designs against cuDNN", build, per_machine=False,
    intro="cuda (one launch per step) and cuda-persistent (one launch per sequence) against "
          "torch-cuda (cuDNN) on one GPU, from the newest committed gpu_check record (not asv: "
          "the GPU machine runs benchmarks/gpu_check.py).")]
