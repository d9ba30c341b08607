"""Build the page: load the results, run every section, write index and summary.

``python -m lstm_numba report [--results-dir .asv/results] [--machine M]
[--commit HASH] [--out reports] [--html-dir .asv/html] [--records-dir benchmarks/results]``
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from pathlib import Path

from .load import ReportError, load_results, missing_issues, select
from .page import Issue, Page, PageSection, SectionResult
from .render import write_index, write_summary
from .sections import Context, Section, load_sections
from .style import FigureWriter
from .tables import footnote, other_results

TITLE = "lstm-numba: what recurrent cells cost"


def _run(section: Section, ctx: Context) -> SectionResult:
    """``section.build(ctx)``; an exception becomes an error Issue, the page goes on."""
    try:
        res = section.build(ctx)
        if not isinstance(res, SectionResult):
            raise TypeError(f"build returned {type(res).__name__}, not SectionResult")
        return res
    except Exception as e:  # noqa: BLE001 -- one broken section must not lose the others
        traceback.print_exc()
        return SectionResult(issues=[Issue("error", f"section '{section.title}' failed: "
                                                    f"{type(e).__name__}: {e}")])


def _tagged(res: SectionResult, machine: str) -> SectionResult:
    """One machine's result, labelled for a page that shows several machines."""
    return SectionResult(
        figures=res.figures,   # their stems and titles already carry the machine
        tables=[dataclasses.replace(t, title=f"{machine} · {t.title}") for t in res.tables],
        key_numbers=[dataclasses.replace(k, what=f"{machine}: {k.what}")
                     for k in res.key_numbers],
        notes=[f"{machine}: {n}" for n in res.notes],
        issues=[i if i.machine else dataclasses.replace(i, machine=machine)
                for i in res.issues])


def _merge(parts) -> SectionResult:
    out = SectionResult()
    for p in parts:
        for f in dataclasses.fields(SectionResult):
            getattr(out, f.name).extend(getattr(p, f.name))
    return out


def build_report(results_dir, out, machine=None, commit=None, html_dir=".asv/html",
                 stderr=None, records_dir="benchmarks/results", sections=None) -> Page:
    """Read the results, build every section, write ``index.html`` and ``summary.md``.

    Parameters
    ----------
    results_dir : path
        asv's results folder (machine folders and ``benchmarks.json``).
    out : path
        Output folder for the plots (PNG + SVG), ``index.html`` and ``summary.md``.
    machine, commit : str, optional
        Only this machine; this commit (a prefix) instead of each machine's latest.
    html_dir : path
        ``asv publish``'s folder, linked from the index.
    records_dir : path
        Committed records of runs outside asv (``gpu_check-*.json``), read by
        the sections that show them.
    sections : list of Section, optional
        Instead of :func:`~.sections.load_sections` (tests).

    Returns
    -------
    Page
        What was written; ``page.issues`` lists what is missing or suspect.
    """
    import matplotlib

    matplotlib.use("Agg")
    res = load_results(results_dir)
    df, selection = select(res, machine, commit)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    machines = sorted(df["machine"].unique()) if not df.empty else []
    many = len(machines) > 1
    if sections is None:
        sections, issues = load_sections()
    else:
        issues = []
    page = Page(TITLE, footnote(df, res.machines), selection,
                os.path.relpath(Path(html_dir) / "index.html", out))
    for sec in sections:
        if sec.per_machine:
            parts = []
            for m in machines:
                sub = df[df["machine"] == m]
                ctx = Context(sub, m, res, FigureWriter(out, footnote(sub, res.machines),
                                                        f"-{m}" if many else ""),
                              Path(records_dir))
                r = _run(sec, ctx)
                parts.append(_tagged(r, m) if many else r)
            result = _merge(parts)
        else:
            result = _run(sec, Context(df, None, res, FigureWriter(out, page.footnote),
                                       Path(records_dir)))
        page.sections.append(PageSection(sec.anchor, sec.title, sec.intro, result))
    needs = {s.title: tuple(s.needs) for s in sections}
    used = {b for names in needs.values() for b in names}
    page.sections.append(PageSection(
        "other", "Other benchmarks in this run",
        "Benchmarks no section plots (the CPU race, the GPU asv benchmarks, anything new); "
        "see asv's HTML for their graphs.",
        SectionResult(tables=other_results(df, used))))
    page.issues = (missing_issues(df, res, needs) + issues
                   + [i for s in page.sections for i in s.result.issues])
    for i in page.issues:
        print(f"report: {i.line()}", file=stderr or sys.stderr)
    write_index(out, page)
    write_summary(out, page)
    return page


def main(argv=None) -> int:
    """``python -m lstm_numba report``; returns the exit status (2: unreadable
    results, 1: a section failed, 0 otherwise -- missing results are not errors)."""
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
    ap.add_argument("--records-dir", default="benchmarks/results",
                    help="committed records such as gpu_check-*.json "
                         "(default benchmarks/results)")
    args = ap.parse_args(argv)
    try:
        page = build_report(args.results_dir, args.out, args.machine, args.commit,
                            args.html_dir, records_dir=args.records_dir)
    except ReportError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)
    print(f"report: {len(page.figures)} plots (PNG + SVG) in {out}/")
    print(f"report: open {out / 'index.html'} (summary: {out / 'summary.md'})")
    return 1 if any(i.kind == "error" for i in page.issues) else 0
