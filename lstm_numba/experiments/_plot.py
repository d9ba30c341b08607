"""What the experiments' plots share: one colour per cell and one figure recipe."""
from __future__ import annotations

from contextlib import contextmanager

#: Line colour of each cell in every experiment plot.
CELL_COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


@contextmanager
def saved_plot(path, title: str):
    """Axes to draw one experiment's plot on (8 x 4.5 inches, no display needed).

    On leaving the ``with`` block the axes get ``title`` and a light grid, and
    the figure is written to ``path`` (PNG, 110 dpi) and closed (closed also
    when drawing failed).
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        yield ax
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
