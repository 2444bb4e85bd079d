"""The dashboard's figures as inline SVG (no files, no pyplot state): a LUT's layer x op
heatmap, its latency distribution, a validation scatter, two LUTs against each other, a model's
time per op type."""

from __future__ import annotations

import io
import re

import matplotlib
import numpy as np

from lutfarm.plotting import figure
from lutfarm.profiler.devices.timeline import CONTROLLER, OVERLAPPING


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]          # inline: no XML prolog


def heatmap(matrix: np.ndarray, ops: list[str], note: str = "") -> str:
    """Layers down, candidate ops across, ms in each cell (missing entries blank)."""
    layers = matrix.shape[0]
    fig, ax = figure((1.0 + 0.75 * len(ops), 1.0 + 0.32 * layers))
    shown = np.ma.masked_invalid(matrix)
    im = ax.imshow(shown, aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(ops)), ops, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(layers), [str(i) for i in range(layers)], fontsize=7)
    ax.set_ylabel("layer")
    for (i, j), v in np.ndenumerate(matrix):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.2g}", ha="center", va="center", fontsize=6,
                    color="white" if v < np.nanmean(matrix) else "black")
    fig.colorbar(im, ax=ax, label="ms")
    if note:
        ax.set_title(note, fontsize=9)
    return _svg(fig)


def distribution(values_ms: np.ndarray, note: str = "") -> str:
    fig, ax = figure((6.0, 3.0))
    v = values_ms[values_ms > 0]
    bins = np.logspace(np.log10(v.min()), np.log10(v.max()) + 1e-9, 30) if len(v) else 10
    ax.hist(v, bins=bins, color="#3b6ea5")
    ax.set_xscale("log")
    ax.set_xlabel("latency per entry (ms, log scale)")
    ax.set_ylabel("entries")
    if note:
        ax.set_title(note, fontsize=9)
    return _svg(fig)


def scatter(x: np.ndarray, ys: dict[str, np.ndarray], xlabel: str, ylabel: str,
            note: str = "") -> str:
    """Each series against ``x``, with the y = x line and its ±10 % band."""
    fig, ax = figure((5.0, 4.5))
    lo = min(float(np.min(x)), *(float(np.min(y)) for y in ys.values()))
    hi = max(float(np.max(x)), *(float(np.max(y)) for y in ys.values()))
    line = np.array([lo, hi])
    ax.plot(line, line, color="grey", lw=1)
    ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.15, label="±10 %")
    for name, y in ys.items():
        ax.scatter(x, y, s=12, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if note:
        ax.set_title(note, fontsize=9)
    return _svg(fig)


def op_shares(by_op: list[dict], note: str = "") -> str:
    """A model's time per op type (``bench_model.op_table`` rows): horizontal bars, slowest on
    top, each labelled with its share and node count."""
    rows = by_op[:15]
    fig, ax = figure((6.5, 0.9 + 0.32 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.barh(y, [r["ms"] for r in rows], color="#3b6ea5")
    ax.set_yticks(y, [r["op"] for r in rows], fontsize=8)
    for yi, r in zip(y, rows):
        ax.text(r["ms"], yi, f"  {r['share']:.1%} ({r['count']})", va="center", fontsize=7)
    ax.set_xlabel("ms per run")
    ax.margins(x=0.25)
    if note:
        ax.set_title(note, fontsize=9)
    return _svg(fig)


def gantt(spans: list, phases: tuple[str, ...], note: str = "") -> str:
    """One row per board (the controller's export on top), a bar per span coloured by phase;
    time in seconds from the first span. Overlapping phases (agent start, prefetch) are drawn
    as thin bars under the others, so a job over an upload still shows."""
    rows = sorted({s.device for s in spans}, key=lambda d: (   # controller, then h2 before h10
        d != CONTROLLER, [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", d)]))
    t0 = min(s.began for s in spans)
    palette = matplotlib.colormaps["tab20"]
    colours = {p: palette(i % 20) for i, p in enumerate(phases)}
    fig, ax = figure((8.0, 1.0 + 0.32 * len(rows)))
    for phase in phases:
        for y, device in enumerate(rows):
            bars = [(s.began - t0, max(s.seconds, 1e-4)) for s in spans
                    if s.device == device and s.phase == phase]
            if bars:
                height, offset = (0.25, 0.3) if phase in OVERLAPPING else (0.6, -0.3)
                ax.broken_barh(bars, (y + offset, height), color=colours[phase], label=phase)
    handles, labels = ax.get_legend_handles_labels()
    shown = dict(zip(labels, handles))
    ax.legend(shown.values(), shown.keys(), fontsize=7, ncol=min(6, len(shown)),
              loc="upper center", bbox_to_anchor=(0.5, -0.35 if len(rows) < 4 else -0.12))
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("seconds since the campaign started")
    if note:
        ax.set_title(note, fontsize=9)
    return _svg(fig)
