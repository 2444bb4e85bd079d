"""Vectorised latency of many architectures at once: the one place an arch's LUT sum is made.

The LUT is compiled once into a (layers x ops) matrix plus the sum of the fixed layers; the
latency of N architectures is then one gather and one row sum over an (N x 22) index array.
Two sums: ``plain`` (FBNet's Σ Tᵢ) and ``overhead`` (Σ (Tᵢ − o) + o: every LUT entry carries one
runtime call, o being the measured empty model, while a network makes one). Search, DNAS,
validation and the predictors all price archs through this class, so a LUT with a missing
entry is one clear error everywhere instead of a NaN somewhere.
"""

from __future__ import annotations

import numpy as np

from lutfarm.lut.table import LUT, LUTError
from lutfarm.spaces.fbnet import OPS, validate_archs

LATENCY_MODELS = ("plain", "overhead")


class LatencyTable:
    """``LatencyTable(lut).latency(archs)`` -> milliseconds, one per architecture."""

    def __init__(self, lut: LUT):
        self.lut = lut
        layout = lut.layout
        self.layout = layout
        self.choice_keys = [[c.key for c in row] for row in layout.choice_cases()]
        self.fixed_keys = [c.key for c in layout.fixed_cases()]
        get = lut.latency_ms.get
        self.matrix = np.array([[get(k, np.nan) for k in row] for row in self.choice_keys])
        self.fixed_ms = float(sum(get(k, np.nan) for k in self.fixed_keys))
        self._layer_index = np.arange(layout.num_layers)
        # runtime calls one architecture's LUT entries stand for (one per case, every arch)
        self.calls = len(layout.arch_cases([0] * layout.num_layers))
        self._overhead_ms = lut.overhead_ms

    def overhead_shift(self) -> float:
        """What the overhead-corrected sum subtracts from the plain one: (calls − 1) · o."""
        if self._overhead_ms is None:
            raise LUTError("the LUT has no empty-model entry (per-call overhead); re-profile "
                           "it with this lutfarm, or use the plain sum")
        return (self.calls - 1) * self._overhead_ms

    def check_complete(self) -> None:
        """Raise LUTError naming a missing case, if any (a search may pick every entry)."""
        arch = np.zeros((1, self.layout.num_layers), int)
        missing = np.argwhere(np.isnan(self.matrix))
        if len(missing):
            layer, op = map(int, missing[0])
            arch[0, layer] = op
        self.latency(arch)

    def latency(self, archs, model: str = "plain") -> np.ndarray:
        """Milliseconds per arch: ``plain`` Σ Tᵢ, or ``overhead`` Σ (Tᵢ − o) + o."""
        if model not in LATENCY_MODELS:
            raise LUTError(f"unknown latency model {model!r}; use plain or overhead")
        a = validate_archs(archs, self.layout.num_layers)
        if np.isnan(self.fixed_ms):
            missing = [k for k in self.fixed_keys if k not in self.lut.latency_ms]
            raise LUTError(f"the LUT lacks fixed case {missing[0]} that every arch needs; "
                           f"measure it: lutfarm profile --only '{missing[0]}'")
        out = self.matrix[self._layer_index, a].sum(axis=1) + self.fixed_ms
        if np.isnan(out).any():
            row = int(np.flatnonzero(np.isnan(out))[0])
            layer = int(np.flatnonzero(np.isnan(self.matrix[self._layer_index, a[row]]))[0])
            op = int(a[row, layer])
            key = self.choice_keys[layer][op]
            raise LUTError(f"the LUT lacks case {key} (layer {layer}, op {op}={OPS[op].name}); "
                           f"measure it: lutfarm profile --only '{key}'")
        return out - self.overhead_shift() if model == "overhead" else out

    def breakdown(self, arch) -> list[tuple[str, float]]:
        """(case key, ms) for each layer of one arch, fixed layers included, in order."""
        self.latency(arch)  # raises with a clear message if anything is missing
        return [(c.key, self.lut.latency_ms[c.key]) for c in self.layout.arch_cases(arch)]

    def extremes(self) -> dict[str, list[int]]:
        """The all-fastest and all-slowest architectures under this LUT (per-layer arg min/max)."""
        m = np.where(np.isnan(self.matrix), np.inf, self.matrix)
        fastest = m.argmin(axis=1)
        slowest = np.where(np.isinf(m), -np.inf, m).argmax(axis=1)
        return {"fastest": fastest.tolist(), "slowest": slowest.tolist()}


def latency_each(tables: list[LatencyTable], archs, model: str = "plain") -> np.ndarray:
    """Milliseconds of ``archs[i]`` priced by ``tables[i]``: networks compared with the blocks
    timed around them."""
    a = validate_archs(archs, tables[0].layout.num_layers)
    out = np.zeros(len(a))
    for rows in rows_by_table(tables):
        out[rows] = tables[rows[0]].latency(a[rows], model)
    return out


def rows_by_table(tables: list) -> list[list[int]]:
    """Indices of the archs each distinct table prices, so each prices its archs in one call."""
    groups: dict[int, list[int]] = {}
    for i, t in enumerate(tables):
        groups.setdefault(id(t), []).append(i)
    return list(groups.values())
