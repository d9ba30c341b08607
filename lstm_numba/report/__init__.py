"""asv results -> a pandas DataFrame -> plots, ``index.html`` and ``summary.md``.

``python -m lstm_numba report [--results-dir .asv/results] [--out reports]``
(see :func:`main` for every option).

The package, by concern:

- :mod:`.load`      asv's JSON results -> DataFrame; what is missing (from ``benchmarks.json``)
- :mod:`.page`      what the page shows, as dataclasses (``Page``, ``SectionResult``, ...)
- :mod:`.sections`  the ``Section`` plug-in registry: how to add a section (read it first)
- :mod:`.bench_names`  every asv benchmark the report reads, named once (``file.Class.method``)
- :mod:`.style`     colours and markers from the backend registry, axes, saving figures
- :mod:`.plots`, :mod:`.plots_runtime`   the suite's plots
- :mod:`.tables`    key numbers, time per step, other results, the footnote
- :mod:`.render`    ``Page`` -> ``index.html`` and ``summary.md``
- :mod:`.build`     runs it all (``build_report``, ``main``)
- ``section_*.py``  the sections, in the order of ``sections.MODULES``
- :mod:`.gpu_record`  ``benchmarks/gpu_check.py``'s committed records, for ``section_gpu``

What is missing (a benchmark with no results, parameter sets that were
skipped or failed) is said on stderr and in the index; every plot that has
data is still drawn. A file that is not valid JSON, or lacks asv's keys,
stops the report with an error naming it.
"""
from .build import build_report, main
from .load import ReportError, Results, load_results, missing_issues, rows, select
from .page import Figure, Issue, KeyNumber, Page, PageSection, SectionResult, Table
from .sections import MODULES, Context, Section, load_sections
from .style import color, marker, order

__all__ = [
    "build_report", "main", "ReportError", "Results", "load_results", "missing_issues", "rows",
    "select", "Figure", "Issue", "KeyNumber", "Page", "PageSection", "SectionResult", "Table",
    "MODULES", "Context", "Section", "load_sections", "color", "marker", "order",
]
