"""The report's sections: a small plug-in registry.

Each part of ``reports/index.html`` (and ``summary.md``) is a :class:`Section`
defined in a module of this package named in :data:`MODULES`. The page shows
the sections in that order; a module that does not exist (yet) is skipped,
so a section can be added without editing any other file but its own.

How to add a section
--------------------
1. Create ``lstm_numba/report/section_<name>.py`` (if its name is not in
   :data:`MODULES` yet, add it there, where it should appear on the page).
   The asv benchmarks it reads are named in :mod:`.bench_names`: import
   them from there, adding any that is not there yet (under the file that
   defines it; a test checks each name against ``benchmarks/``).
2. In it define a build function ``build(ctx: Context) -> SectionResult``::

       from .bench_names import TRAIN_TIME   # the asv benchmarks you read
       from .page import Figure, Issue, KeyNumber, SectionResult, Table
       from .sections import Context, Section

       def build(ctx: Context) -> SectionResult:
           res = SectionResult()
           d = ctx.rows_or_missing(res, "training plot", TRAIN_TIME)  # rows with a value
           if d is None:                   # none: res says what is missing
               return res
           import matplotlib.pyplot as plt
           fig, ax = plt.subplots(figsize=(8, 4))
           ...                             # style.line(ax, g, "seq_len", "value", backend)
           res.figures.append(ctx.save(fig, "train_time", "Title", "Caption: what to read"))
           res.tables.append(Table("title", ("backend", "ms"), (("numba", "1.2"),)))
           res.key_numbers.append(KeyNumber("LSTM training / inference", "3.1×", TRAIN_TIME))
           res.notes.append("A paragraph shown under the section title.")
           return res

       SECTIONS = [Section("train", "Training: forward + backward", build,
                           needs=(TRAIN_TIME,), intro="One sentence on the question.")]

   ``SECTIONS`` is a list: one module may add several sections, in order.
3. What ``build`` gets: ``ctx.df`` (the selected commit's rows of one machine;
   columns ``benchmark``, ``value``, ``unit`` and one per asv parameter such
   as ``cell``, ``backend``, ``seq_len``), ``ctx.rows(name)`` (one
   benchmark's rows with a value, sizes as int), ``ctx.rows_or_missing(res,
   what, name, ...)`` (the same, or None after adding the "missing" issue to
   ``res`` when there are none), ``ctx.save(fig, stem,
   title, caption)`` (writes PNG + SVG with the footnote, returns the
   :class:`~.page.Figure` to put in ``figures``; ``foot=`` replaces the
   footnote for a plot drawn from something else than asv's results),
   ``ctx.records_dir``
   (``benchmarks/results``: committed records such as ``gpu_check-*.json``),
   ``ctx.machine`` and ``ctx.results`` (everything loaded, with asv's
   ``benchmarks.json`` metadata). Colours, markers and backend order come
   from :mod:`.style` (which reads ``lstm_numba.backends.REGISTRY``); cells
   from ``lstm_numba.cells.CELLS``.
4. What it returns: a :class:`~.page.SectionResult` whose lists (figures,
   tables, key_numbers, notes, issues) may each be empty; table cells and key
   numbers are already formatted text. Say what is missing
   with ``Issue("missing", ...)`` and what looks spoiled with
   ``Issue("suspect", ...)``: they are listed at the end of the page and on
   stderr. An exception in ``build`` does not stop the report: it becomes an
   ``Issue("error", ...)`` and the command exits with status 1.
5. ``needs`` names the asv benchmarks the section reads: a name that asv's
   ``benchmarks.json`` does not define is reported (renamed benchmark?), and
   benchmarks no section needs are listed under "Other benchmarks".
   ``per_machine=False`` calls ``build`` once with every machine's rows
   instead of once per machine (for sections that read committed records).
6. Test it from a results fixture: ``build_report(fixture, tmp_path,
   sections=SECTIONS)`` builds only your sections (fast) and returns the
   :class:`~.page.Page`; ``page.section("train").result`` is yours, and
   ``index.html``/``summary.md`` in ``tmp_path`` show it
   (``tests/test_report_sections.py`` has examples).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .load import Results, rows
from .page import Figure, Issue, SectionResult
from .style import FigureWriter

#: Section modules of this package, in page order. A module that is absent is
#: skipped (sections other engineers add land here without other edits).
MODULES = (
    "section_evidence",   # the notes' claims, verdicts and their evidence: FIRST (issue 13)
    "section_core",       # time per step, key numbers, the suite's existing plots
    "section_train",      # training: forward + backward (issue 10)
    "section_limits",     # parallel-in-time limits: scans, attention (issue 12)
    "section_gpu",        # the committed gpu_check results (issue 11)
)


@dataclass
class Context:
    """What a section's ``build`` function reads (see the module docstring)."""

    df: "object"                 # pandas.DataFrame: selected rows (one machine or all)
    machine: str | None          # the machine's name; None for per_machine=False
    results: Results             # everything loaded (machines, benchmarks.json)
    figures: FigureWriter        # where plots go (with this machine's footnote)
    records_dir: Path = field(default_factory=lambda: Path("benchmarks/results"))

    def rows(self, benchmark: str):
        """One benchmark's rows that have a value; integer sizes as int."""
        return rows(self.df, benchmark)

    def rows_or_missing(self, res: SectionResult, what: str, *benchmarks: str,
                        label: str | None = None):
        """The rows of ``benchmarks``, or None (and a "missing" issue) when all are empty.

        Returns one DataFrame for one benchmark, a tuple of them (in the order
        given) for several. When every one is empty, ``res`` gets
        ``Issue("missing", "<what>: no <label> results")`` -- ``label`` is the
        benchmarks' names unless given (e.g. the asv file they come from) -- and
        the plot that asked draws nothing.
        """
        found = [self.rows(b) for b in benchmarks]
        if all(d.empty for d in found):
            res.issues.append(Issue("missing", f"{what}: no {label or ' or '.join(benchmarks)} "
                                               "results"))
            return None
        return found[0] if len(found) == 1 else tuple(found)

    def save(self, fig, stem: str, title: str, caption: str, foot: str | None = None) -> Figure:
        """Write ``fig`` as ``<stem>.png``/``.svg`` (one per machine) and return its Figure.

        ``foot`` replaces the footnote (machine, commit, versions of the asv run)
        for a plot drawn from another source, such as a committed record."""
        return self.figures.save(fig, stem, title, caption, foot)


@dataclass(frozen=True)
class Section:
    """One part of the page.

    Attributes
    ----------
    anchor : str
        HTML id (``index.html#anchor``); unique on the page.
    title : str
        Heading.
    build : callable
        ``build(ctx: Context) -> SectionResult``.
    needs : tuple of str
        asv benchmark names (``file.Class.method``) the section reads.
    intro : str
        One paragraph under the heading (optional).
    per_machine : bool
        Build once per machine (default) or once for the whole page.
    """

    anchor: str
    title: str
    build: Callable[[Context], SectionResult]
    needs: tuple = ()
    intro: str = ""
    per_machine: bool = True


def load_sections(modules=None) -> tuple[list[Section], list[Issue]]:
    """The sections of every module in ``modules`` (default :data:`MODULES`) that
    exists, in order.

    Returns ``(sections, issues)``: a module that is absent is skipped
    silently; one that fails to import or defines no ``SECTIONS`` becomes an
    ``Issue("error", ...)`` and the rest of the page is still built.
    """
    out, issues = [], []
    for name in MODULES if modules is None else modules:
        full = f"{__package__}.{name}"
        try:
            mod = importlib.import_module(full)
        except ModuleNotFoundError as e:
            if e.name == full:          # not written (yet): nothing to show
                continue
            issues.append(Issue("error", f"section module {name} cannot be imported: {e}"))
            continue
        except Exception as e:  # noqa: BLE001 -- a broken plug-in must not stop the page
            issues.append(Issue("error", f"section module {name} cannot be imported: "
                                         f"{type(e).__name__}: {e}"))
            continue
        secs = getattr(mod, "SECTIONS", None)
        if not isinstance(secs, (list, tuple)) or not all(isinstance(s, Section) for s in secs):
            issues.append(Issue("error", f"section module {name} defines no SECTIONS "
                                         "(a list of report.sections.Section)"))
            continue
        for s in secs:
            if any(s.anchor == o.anchor for o in out):
                issues.append(Issue("error", f"section module {name}: anchor {s.anchor!r} is "
                                             "already used; section skipped"))
            else:
                out.append(s)
    return out, issues
