"""Latency of FBNet blocks at other channel widths, for FBNetV2-style width search.

A stage of width multiplier w has round8(w · C) channels. ``width_table`` gives, for every
layer l, op o, input-width choice a and output-width choice b, the block's latency
T[l, o, a, b]: the LUT's own entry when the width variant was measured (its case key is in
the LUT), otherwise a stand-in predictor — the full-width entry with its per-call overhead o
kept and the rest scaled by the MACs ratio: o + (T_full − o) · MACs(variant) / MACs(full).
The report says how many entries were measured and how many predicted that way.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from lutfarm.lut import LatencyTable
from lutfarm.spaces import BlockCase
from lutfarm.spaces.fbnet import NUM_OPS, OPS

__all__ = ["stage_widths", "width_table", "layer_latency"]


def stage_widths(layout, multipliers) -> np.ndarray:
    """(stages, choices) channel counts (``FBNetLayout.stage_widths``)."""
    return np.array(layout.stage_widths(multipliers))


def width_table(table: LatencyTable, multipliers) -> tuple[np.ndarray, np.ndarray, dict]:
    """(T[l, o, a, b], head[a], counts) in the LUT's milliseconds."""
    layout, lut = table.layout, table.lut
    o = lut.overhead_ms or 0.0
    widths = stage_widths(layout, multipliers)
    full_idx = len(multipliers) - 1 if multipliers[-1] == max(multipliers) else None
    n = len(multipliers)
    slots = layout.layer_slots()
    t = np.zeros((len(slots), NUM_OPS, n, n))
    counts = {"measured": 0, "predicted": 0}

    def price(full: BlockCase, variant: BlockCase) -> float:
        if variant.key in lut.latency_ms:
            counts["measured"] += 1
            return lut.latency_ms[variant.key]
        counts["predicted"] += 1
        base = lut.latency_ms[full.key]
        ratio = variant.macs / full.macs if full.macs else (0.0 if variant.is_identity else 1.0)
        return o + (base - o) * ratio

    for i, slot in enumerate(slots):
        for op in range(NUM_OPS):
            full = slot.case(OPS[op])
            for a in range(n):
                for b in range(n):
                    cout = widths[slot.stage, b]
                    if not slot.first:
                        cin = cout if a == b else None
                    elif slot.stage == 0:
                        cin = layout.stem_channels if a == (full_idx or 0) else None
                    else:
                        cin = widths[slot.stage - 1, a]
                    if cin is None:
                        t[i, op, a, b] = np.nan      # combination that cannot occur
                        continue
                    t[i, op, a, b] = price(full, replace(full, cin=int(cin), cout=int(cout)))
    head = layout.head_cases()[0]
    head_ms = np.array([price(head, replace(head, cin=int(widths[-1, a])))
                        for a in range(n)])
    return t, head_ms, counts


def layer_latency(t: np.ndarray, layout, ops, width_choice) -> np.ndarray:
    """Per-layer latency of one (ops, per-stage width indices) network from the table."""
    slots = layout.layer_slots()
    n = t.shape[2]
    out = []
    for slot in slots:
        b = width_choice[slot.stage]
        if not slot.first:
            a = b
        elif slot.stage == 0:
            a = n - 1
        else:
            a = width_choice[slot.stage - 1]
        out.append(t[slot.index, ops[slot.index], a, b])
    return np.array(out)
