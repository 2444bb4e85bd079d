"""Figures without pyplot: a matplotlib ``Figure`` drawn by the Agg renderer when saved, so
plotting neither switches the process's backend nor keeps figures alive in pyplot's list."""

from __future__ import annotations


def figure(figsize: tuple[float, float], dpi: int = 110):
    """(figure, axes) for one plot; ``figure.savefig(path)`` writes it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi)
    return fig, fig.subplots()
