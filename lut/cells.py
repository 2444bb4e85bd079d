"""A LUT's sum for any "cell" space (NB201, or a new space of a few op genes): an arch's
latency is the sum of its cases' entries, whatever the space's macro structure.

Nothing here knows a space: the layout says which cases an arch has (``arch_cases``) and how
many ops each gene chooses from (``gene_sizes``). Such spaces are small (NB201: 15 625
archs), so each distinct arch's case ids are computed once and kept; a population is then
one gather and a sum.
"""

from __future__ import annotations

import numpy as np

from lutfarm.lut.table import LUT, LUTError


class CellTable:
    """Vectorised latency of a cell space's archs (rows of op indices, one per gene)."""

    def __init__(self, lut: LUT):
        self.lut, self.layout = lut, lut.layout
        self.keys = sorted(lut.latency_ms)
        self._id = {k: i for i, k in enumerate(self.keys)}
        # one trailing NaN: a case the LUT lacks
        self.vector = np.array([lut.latency_ms[k] for k in self.keys] + [np.nan])
        self._rows: dict[tuple[int, ...], np.ndarray] = {}

    @property
    def gene_sizes(self) -> tuple[int, ...]:
        return tuple(self.layout.gene_sizes)

    def _ids(self, arch: tuple[int, ...]) -> np.ndarray:
        row = self._rows.get(arch)
        if row is None:
            missing = len(self.keys)
            row = np.array([self._id.get(c.key, missing) for c in self.layout.arch_cases(arch)])
            self._rows[arch] = row
        return row

    def missing_cases(self) -> list[str]:
        """Cases of the layout the LUT has no latency for."""
        return [c.key for c in self.layout.unique_cases() if c.key not in self._id]

    def check_complete(self) -> None:
        missing = self.missing_cases()
        if missing:
            raise LUTError(f"the LUT lacks {len(missing)} of the layout's cases (e.g. "
                           f"{missing[0]}); measure them: lutfarm profile --space "
                           f"{self.layout.space} --layout {self.layout.name}")

    def latency(self, genes) -> np.ndarray:
        """(N, genes) op indices -> N latencies in ms (NaN where a case is missing)."""
        g = np.atleast_2d(np.asarray(genes, dtype=np.int64))
        return np.array([self.vector[self._ids(tuple(int(v) for v in row))].sum()
                         for row in g])
