"""asv's results folder -> one pandas DataFrame, and what is missing from it.

The results files are read directly (their format is asv's ``results.py``,
api_version 2): one file per machine, commit and environment, holding per
benchmark a row of columns named by ``result_columns``; the ``result`` column
is a flat list over the product of the benchmark's ``params`` (stored as
``repr`` strings). ``benchmarks.json`` beside the machine folders is asv's
record of the suite itself: each benchmark's parameter names, type and unit.
It is also the list of benchmarks the report expects: a benchmark the suite
defines but no results file holds is reported missing. asv itself is not
imported, so the report needs only pandas and matplotlib.
"""
from __future__ import annotations

import ast
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .page import Issue


class ReportError(Exception):
    """The results cannot be read; the message names the file."""


#: Parameters that are sizes or counts: made ``int`` when every value is whole.
PARAM_INT_COLUMNS = ("seq_len", "batch", "hidden", "threads", "input_size")

#: Columns every row has; the rest are the benchmark's own parameter names.
BASE_COLUMNS = ("machine", "commit", "date", "env", "python", "file", "mtime", "benchmark",
                "module", "method", "type", "unit", "value", "q25", "q75")


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
                "machine": machine, "commit": d["commit_hash"], "date": d.get("date"),
                "env": d.get("env_name"), "python": d.get("python"), "file": str(path),
                "mtime": path.stat().st_mtime, "benchmark": name, "module": module,
                "method": method, "type": meta.get("type", method.split("_")[0]),
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

    df: "object"                                    # pandas.DataFrame, one row per value
    machines: dict = field(default_factory=dict)    # name -> machine.json contents
    benchmarks: dict = field(default_factory=dict)  # benchmarks.json: name -> metadata
    has_suite: bool = False                         # benchmarks.json was there


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
    bench_meta, has_suite = {}, False
    bj = root / "benchmarks.json"
    if bj.exists():
        bench_meta = _load_json(bj)
        if not isinstance(bench_meta, dict):
            raise ReportError(f"corrupt results file {bj}: expected a JSON object")
        bench_meta = {k: v for k, v in bench_meta.items() if isinstance(v, dict)}
        has_suite = True
    rows, machines = [], {}
    for mdir in sorted(p for p in root.iterdir() if p.is_dir()):
        mj = mdir / "machine.json"
        machines[mdir.name] = _load_json(mj) if mj.exists() else {"machine": mdir.name}
        for f in sorted(mdir.glob("*.json")):
            if f.name != "machine.json":
                rows.extend(_results_rows(f, mdir.name, bench_meta))
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=list(BASE_COLUMNS))
    return Results(df, machines, bench_meta, has_suite)


def select(res: Results, machine=None, commit=None):
    """The rows of one commit per machine: ``commit`` (a prefix) or the latest.

    Returns ``(df, notes)`` where notes are lines about what was chosen.
    """
    import pandas as pd

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
            chosen = g.groupby("commit")["date"].max().sort_values().index[-1]
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
    return pd.concat(parts, ignore_index=True), notes


def rows(df, benchmark: str):
    """The rows of one benchmark that have a value; integer parameters as int."""
    if df.empty or "benchmark" not in df.columns:
        return df.iloc[0:0].copy()
    sub = df[(df["benchmark"] == benchmark) & df["value"].notna()].copy()
    for col in PARAM_INT_COLUMNS:
        if col in sub.columns and len(sub) and sub[col].notna().all():
            vals = sub[col].astype(float)
            if (vals == vals.round()).all():
                sub[col] = vals.astype(int)
    return sub


def expected_benchmarks(res: Results, needs: dict) -> list[str]:
    """The benchmarks the report expects: the suite's own list (``benchmarks.json``).

    ``needs`` maps a section title to the benchmark names it reads. Without a
    ``benchmarks.json`` (results copied without it) the sections' needs stand in.
    """
    if res.has_suite:
        return sorted(res.benchmarks)
    return sorted({b for names in needs.values() for b in names})


def missing_issues(df, res: Results, needs: dict) -> list[Issue]:
    """What is missing: benchmarks without results, parameter sets without a value,
    and benchmarks a section reads that the suite no longer defines (renamed?)."""
    out = []
    if res.has_suite:
        for title, names in needs.items():
            for b in names:
                if b not in res.benchmarks:
                    out.append(Issue("missing", f"section '{title}' reads {b}, which "
                                     "benchmarks.json does not define (renamed or removed?)"))
    else:
        out.append(Issue("missing", "no benchmarks.json in the results folder: expected "
                                    "benchmarks taken from the report's sections"))
    if df.empty:
        out.append(Issue("missing", "no results at all"))
        return out
    expected = expected_benchmarks(res, needs)
    for m, g in df.groupby("machine"):
        have = set(g["benchmark"])
        for name in expected:
            if name not in have:
                out.append(Issue("missing", f"{name}: no results", machine=m))
        for name, b in g.groupby("benchmark"):
            n_nan = int(b["value"].isna().sum())
            if n_nan:
                out.append(Issue("partial", f"{name}: {n_nan} of {len(b)} parameter sets "
                                 "have no value (skipped or failed)", machine=m))
    return out
