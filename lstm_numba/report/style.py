"""How every plot looks: backend colours and markers (from the backend
registry), log-axis labels, legends, and saving a figure with its footnote."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..backends import REGISTRY
from .page import Figure

# Stable colours for names the registry does not know (a benchmark's own label).
_EXTRA = ["#9467bd", "#e377c2", "#bcbd22", "#393b79", "#637939", "#843c39"]


def color(backend: str) -> str:
    """The backend's plot colour (``REGISTRY[name].colour``; unknown names get a
    stable colour of their own)."""
    if backend in REGISTRY:
        return REGISTRY[backend].colour
    return _EXTRA[sum(map(ord, str(backend))) % len(_EXTRA)]


def marker(backend: str) -> str:
    return REGISTRY[backend].marker if backend in REGISTRY else "o"


def order(backends) -> list:
    """Backends in registry order, unknown names after them, sorted."""
    names = set(backends)
    known = [b for b in REGISTRY if b in names]
    return known + sorted(names - set(known))


def num(v) -> str:
    """16.0 -> '16'; anything else as str."""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def fmt_time(s) -> str:
    """Seconds as '3.2 ms', '41 µs'."""
    if s is None or not np.isfinite(s):
        return "–"
    for unit, f in (("s", 1), ("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
        if s * f >= 1:
            return f"{s * f:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def shape_note(d, cols, default="") -> str:
    """'B=8, H=256, 1 thread, float32.' from the single-valued parameter columns of ``d``."""
    names = {"batch": "B", "hidden": "H", "seq_len": "T", "threads": "threads"}
    bits = []
    for c in cols:
        if c in d.columns and len(d) and d[c].notna().all() and d[c].nunique() == 1:
            v = num(d[c].iloc[0])
            bits.append(f"{v} thread{'s' if v != '1' else ''}" if c == "threads"
                        else f"{names.get(c, c)}={v}")
    return (", ".join(bits) + ", float32.") if bits else default


def panel_row(n: int, width: float, height: float = 4.2):
    """A figure of ``n`` panels side by side, each ``width`` x ``height`` inches.

    Returns ``(fig, axes)``, ``axes`` a list of the ``n`` matplotlib axes, left to right.
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def panels_by(d, column: str, width: float, height: float = 4.2):
    """One panel per distinct value of ``column`` in ``d``, in sorted order, side by side.

    Returns ``(fig, axes, values)``: ``axes[i]`` is the panel of ``values[i]``.
    """
    values = sorted(set(d[column]))
    fig, axes = panel_row(len(values), width, height)
    return fig, axes, values


def line(ax, g, x, y, backend, label_suffix="", style="-", label=None):
    """One backend's line, in its colour and marker, sorted by ``x``."""
    g = g.sort_values(x)
    ax.plot(g[x], g[y], style, marker=marker(backend), color=color(backend),
            label=label or f"{backend}{label_suffix}", linewidth=1.6, markersize=5)


def legend(ax, from_axes=None, **kw):
    """A legend on ``ax`` in registry order of the label's first word; with
    ``from_axes``, of every line drawn on those axes (each label once)."""
    seen = {}
    for a in from_axes if from_axes is not None else [ax]:
        for handle, label in zip(*a.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    labels, h = list(seen), list(seen.values())
    if not h:
        return
    names = list(REGISTRY)

    def key(i):
        # registry order of the backend ('cuda' of 'cuda[graph], in-kernel'); a backend's
        # own lines keep the order they were drawn in (the sort is stable)
        first = re.match(r"[\w.-]*", labels[i]).group(0)
        return names.index(first) if first in names else len(names)

    idx = sorted(range(len(labels)), key=key)
    ax.legend([h[i] for i in idx], [labels[i] for i in idx],
              **{"fontsize": 8, "loc": "best", "framealpha": 0.85, **kw})


def _fmt_tick(v, _pos=None):
    if v <= 0 or not np.isfinite(v):
        return ""
    if 1e-3 <= abs(v) < 1e5:
        return f"{v:g}"
    return f"{v:.0e}".replace("e-0", "e-").replace("e+0", "e")


def plain_log_labels(fig):
    """Tick labels like 0.5, 16, 2000 on log axes instead of 2^4 or 5x10^-1; a
    log-scaled x axis (a size: T, B, H, threads) ticks exactly the measured values."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    for ax in fig.axes:
        fixed_x = False
        if ax.get_xscale() == "log":
            # Lines marked gid="annotation" (a crossover's vertical line) are not
            # measurements: no tick of their own (it would overprint a measured one).
            xs = sorted({float(v) for ln in ax.lines if ln.get_gid() != "annotation"
                         for v in np.atleast_1d(ln.get_xdata())
                         if np.isfinite(float(v)) and float(v) > 0})
            if 0 < len(xs) <= 12:
                ax.xaxis.set_major_locator(FixedLocator(xs))
                ax.xaxis.set_major_formatter(FuncFormatter(_fmt_tick))
                ax.xaxis.set_minor_locator(FixedLocator([]))
                ax.xaxis.set_minor_formatter(NullFormatter())
                fixed_x = True
                if len(xs) == 1:
                    ax.set_xlim(xs[0] / 2, xs[0] * 2)
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale != "log" or (axis is ax.xaxis and fixed_x):
                continue
            axis.set_major_formatter(FuncFormatter(_fmt_tick))
            lo, hi = ax.get_xlim() if axis is ax.xaxis else ax.get_ylim()
            if hi / max(lo, 1e-300) < 100:  # short range: label a few minor ticks
                axis.set_minor_locator(LogLocator(subs=(2, 5)))
                axis.set_minor_formatter(FuncFormatter(_fmt_tick))
            else:
                axis.set_minor_formatter(NullFormatter())


@dataclass
class FigureWriter:
    """Saves matplotlib figures as PNG + SVG with a title and the footnote.

    ``suffix`` ("-<machine>") keeps one set of plots per machine apart.
    """

    out: Path
    foot: str
    suffix: str = ""

    def save(self, fig, stem: str, title: str, caption: str, foot: str | None = None) -> Figure:
        """Write ``fig``; ``foot`` replaces the footnote (a plot not from asv's results)."""
        import matplotlib.pyplot as plt

        stem = stem + self.suffix
        title = title + (f" [{self.suffix[1:]}]" if self.suffix else "")
        w, h = fig.get_size_inches()
        if w < 8:  # room for the title and the footnote
            fig.set_size_inches(8, h)
        plain_log_labels(fig)
        fig.suptitle(title, fontsize=12, fontweight="bold")
        fig.text(0.01, 0.005, self.foot if foot is None else foot, fontsize=6.5,
                 color="#555555", ha="left", va="bottom", wrap=True)
        fig.tight_layout(rect=(0, 0.04, 1, 0.95))
        for ext in ("png", "svg"):
            fig.savefig(Path(self.out) / f"{stem}.{ext}", dpi=110)
        plt.close(fig)
        return Figure(stem, title, caption)
