"""Vectorised latency of many architectures at once.

The LUT is compiled once into a (layers x ops) matrix plus the sum of the fixed layers; the
latency of N architectures is then one gather and one row sum over an (N x 22) index array.
"""

from __future__ import annotations

import numpy as np

from lutfarm.lut.table import LUT, LUTError
from lutfarm.spaces import OPS, validate_archs


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

    def latency(self, archs) -> np.ndarray:
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
        return out

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
