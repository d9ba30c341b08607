"""What the report page shows, as data: one :class:`Page` of :class:`SectionResult`.

Sections fill these dataclasses; :mod:`.render` turns one ``Page`` into
``index.html`` and ``summary.md``. Nothing here draws or formats HTML.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """A plot written as ``<stem>.png`` and ``<stem>.svg`` in the output folder.

    ``stem`` is also the figure's anchor on the page (``#<stem>``); ``title``
    is drawn above the plot and repeated in bold before the ``caption``
    under it (and is the image's alt text).
    """

    stem: str
    title: str
    caption: str


@dataclass(frozen=True)
class Table:
    """A small table of already formatted text."""

    title: str
    header: tuple
    rows: tuple          # tuples of str, one per row, len(header) each
    note: str = ""


@dataclass(frozen=True)
class KeyNumber:
    """One number worth reading first: what it is, its value, which benchmark gave it."""

    what: str
    value: str
    source: str


@dataclass(frozen=True)
class Issue:
    """Something the reader must know about the results.

    ``kind`` is ``"missing"`` (no results), ``"partial"`` (some parameter
    sets have no value), ``"suspect"`` (a value that a disturbed machine
    probably spoiled) or ``"error"`` (a section failed to build).
    """

    kind: str
    text: str
    machine: str | None = None

    def line(self) -> str:
        where = f"{self.machine}: " if self.machine else ""
        return f"{self.kind}: {where}{self.text}"


@dataclass
class SectionResult:
    """What one section contributes to the page (every field may stay empty)."""

    figures: list = field(default_factory=list)      # Figure
    tables: list = field(default_factory=list)       # Table
    key_numbers: list = field(default_factory=list)  # KeyNumber
    notes: list = field(default_factory=list)        # str: paragraphs under the title
    issues: list = field(default_factory=list)       # Issue


@dataclass
class PageSection:
    """A section as placed on the page."""

    anchor: str
    title: str
    intro: str
    result: SectionResult


@dataclass
class Page:
    """Everything ``index.html`` and ``summary.md`` show, in page order."""

    title: str
    footnote: str                 # machine, commit, versions
    selection: list               # str: which commit/environment was chosen per machine
    asv_html: str                 # relative link to asv's own HTML
    sections: list = field(default_factory=list)   # PageSection, in page order
    issues: list = field(default_factory=list)     # Issue: missing, partial, suspect, error

    @property
    def figures(self) -> list:
        return [f for s in self.sections for f in s.result.figures]

    @property
    def key_numbers(self) -> list:
        return [k for s in self.sections for k in s.result.key_numbers]

    def section(self, anchor: str) -> PageSection | None:
        return next((s for s in self.sections if s.anchor == anchor), None)
