"""One :class:`~.page.Page` -> ``index.html`` (standalone, nothing fetched) and
``summary.md``. Both show the same things in the same order."""
from __future__ import annotations

import html
from pathlib import Path

from .page import Page, PageSection

ISSUE_TITLE = "Missing, partial or suspect results"

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#222;line-height:1.45;padding:0 1em}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}
h3{font-size:1.05em}
table{border-collapse:collapse;font-size:.9em;margin:.6em 0 1em}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}figure{margin:1.5em 0}img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.9em;color:#444}.missing{background:#fff4e5;border:1px solid #f0c36d;
padding:.6em 1em}.note{color:#666;font-size:.85em}code{background:#f5f5f5;padding:0 .2em}
nav ul{columns:2;font-size:.95em}
"""


def _e(s) -> str:
    return html.escape(str(s))


def _html_table(header, rows) -> str:
    return ("<table><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>"
            + "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in r) + "</tr>" for r in rows)
            + "</table>")


def _html_section(s: PageSection) -> list[str]:
    r = s.result
    parts = [f"<section id='{_e(s.anchor)}'><h2>{_e(s.title)}</h2>"]
    if s.intro:
        parts.append(f"<p>{_e(s.intro)}</p>")
    parts += [f"<p>{_e(n)}</p>" for n in r.notes]
    if r.key_numbers:
        parts.append(_html_table(("what", "value", "from"),
                                 [(k.what, k.value, k.source) for k in r.key_numbers]))
    for t in r.tables:
        parts.append(f"<h3>{_e(t.title)}</h3>")
        if t.note:
            parts.append(f"<p class='note'>{_e(t.note)}</p>")
        parts.append(_html_table(t.header, t.rows))
    for f in r.figures:
        parts.append(f"<figure id='{_e(f.stem)}'><a href='{_e(f.stem)}.svg'><img "
                     f"src='{_e(f.stem)}.png' alt='{_e(f.title)}'></a><figcaption><b>"
                     f"{_e(f.title)}.</b> {_e(f.caption)} (<a href='{_e(f.stem)}.svg'>SVG</a>)"
                     "</figcaption></figure>")
    if not (r.key_numbers or r.tables or r.figures or r.notes):
        parts.append(f"<p class='note'>Nothing to show: see <a href='#issues'>{ISSUE_TITLE}"
                     "</a>.</p>")
    parts.append("</section>")
    return parts


def write_index(out: Path, page: Page) -> Path:
    """``out/index.html`` from ``page``."""
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>"
             f"<title>{_e(page.title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{_e(page.title)}</h1>",
             f"<p class='note'>{_e(page.footnote)}<br>{_e('; '.join(page.selection))}</p>",
             f"<p>asv's own HTML report (every benchmark's graph over commits): "
             f"<a href='{_e(page.asv_html)}'>{_e(page.asv_html)}</a> "
             "(or run <code>asv preview</code> and open the address it prints).</p>"]
    if page.issues:
        parts.append(f"<p class='missing'>{len(page.issues)} results are missing, partial or "
                     f"suspect: see <a href='#issues'>the list</a> at the end.</p>")
    parts.append("<nav><ul>" + "".join(f"<li><a href='#{_e(s.anchor)}'>{_e(s.title)}</a></li>"
                                       for s in page.sections) + "</ul></nav>")
    for s in page.sections:
        parts += _html_section(s)
    if page.issues:
        parts.append(f"<section id='issues' class='missing'><b>{ISSUE_TITLE}</b><ul>"
                     + "".join(f"<li>{_e(i.line())}</li>" for i in page.issues)
                     + "</ul></section>")
    parts.append("</body></html>")
    path = Path(out) / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path


def _md_table(header, rows) -> list[str]:
    def cell(c):
        return str(c).replace("|", "\\|").replace("\n", " ")

    return (["| " + " | ".join(map(cell, header)) + " |", "|" + " --- |" * len(header)]
            + ["| " + " | ".join(map(cell, r)) + " |" for r in rows] + [""])


def write_summary(out: Path, page: Page) -> Path:
    """``out/summary.md`` from ``page``: the same sections, tables and links."""
    lines = [f"# {page.title}", "", f"_{page.footnote}_", "", "; ".join(page.selection), "",
             f"asv HTML: `{page.asv_html}` (or `asv preview`)", ""]
    for s in page.sections:
        r = s.result
        lines += [f"## {s.title}", ""]
        lines += [x for p in ([s.intro] if s.intro else []) + list(r.notes) for x in (p, "")]
        if r.key_numbers:
            lines += _md_table(("what", "value", "from"),
                               [(k.what, k.value, k.source) for k in r.key_numbers])
        for t in r.tables:
            lines += [f"**{t.title}**", ""] + ([t.note, ""] if t.note else [])
            lines += _md_table(t.header, t.rows)
        lines += [f"- [{f.title}]({f.stem}.png) ([svg]({f.stem}.svg)): {f.caption}"
                  for f in r.figures]
        if r.figures:
            lines.append("")
        if not (r.key_numbers or r.tables or r.figures or r.notes):
            lines += [f"Nothing to show: see {ISSUE_TITLE}.", ""]
    if page.issues:
        lines += [f"## {ISSUE_TITLE}", ""] + [f"- {i.line()}"
                                              for i in page.issues] + [""]
    path = Path(out) / "summary.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
