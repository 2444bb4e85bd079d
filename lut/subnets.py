"""Vectorised LUT sums for spaces whose architectures choose *which* blocks run, not only what
each layer is (MCUNet: elastic depth, width and resolution): ``LatencyTable`` is FBNet's.

The layout numbers its cases (``case_keys``) and maps a population of gene rows to case ids
(``case_index``: -1 for a block the arch leaves out); a LUT becomes one vector with a zero at
the end, and N archs cost one gather and one row sum. ``overhead`` is the same correction as
FBNet's, per arch: Σ (Tᵢ − o_r) + o_r, o_r the empty model at the arch's resolution.
"""

from __future__ import annotations

import numpy as np

from lutfarm.lut.query import LATENCY_MODELS
from lutfarm.lut.table import LUT, LUTError
from lutfarm.profiler.mcu_target import firmware_flash
from lutfarm.profiler.store import ARENA_METHODS


class SubnetTable:
    """``SubnetTable(lut).latency(genes)`` -> milliseconds per arch (gene rows of the layout);
    ``peak_memory(genes)`` -> the largest per-block measured peak (bytes) where the LUT has it."""

    def __init__(self, lut: LUT):
        self.lut, self.layout = lut, lut.layout
        self.keys = self.layout.case_keys()
        get = lut.latency_ms.get
        self.vector = np.array([get(k, np.nan) for k in self.keys] + [0.0])
        mem = lut.peak_mem_bytes()
        self.memory = np.array([mem.get(k, np.nan) for k in self.keys] + [0.0])
        size = lut.model_bytes()
        self.model = np.array([size.get(k, np.nan) for k in self.keys] + [0.0])
        kept = lut.persistent_bytes()
        self.persistent = np.array([kept.get(k, np.nan) for k in self.keys] + [0.0])
        # the model is only used when every priced case has its persistent part
        self.adds_persistent = bool(kept) and not any(
            np.isnan(p) and not np.isnan(m)
            for k, p, m in zip(self.keys, self.persistent, self.memory))

    def _gather(self, values: np.ndarray, genes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids, overhead = self.layout.case_index(genes)
        taken = values[ids]                       # -1 picks the trailing zero
        return taken, ids, overhead

    def _raise_missing(self, taken: np.ndarray, ids: np.ndarray, what: str) -> None:
        row, col = map(int, np.argwhere(np.isnan(taken))[0])
        key = self.keys[int(ids[row, col])]
        raise LUTError(f"the LUT lacks {what} for case {key}; measure it: lutfarm profile "
                       f"--space {self.layout.space} --only '{key}'")

    def latency(self, genes, model: str = "plain", missing: str = "raise") -> np.ndarray:
        """``missing="nan"``: an arch that needs an unmeasured case gets NaN (a search treats
        it as infeasible: a case the runtime could not take cannot run on the device)."""
        if model not in LATENCY_MODELS:
            raise LUTError(f"unknown latency model {model!r}; use plain or overhead")
        taken, ids, overhead = self._gather(self.vector, genes)
        if missing == "raise" and np.isnan(taken).any():
            self._raise_missing(taken, ids, "a latency")
        out = taken.sum(axis=1)
        if model == "overhead":
            o = self.vector[overhead]
            if np.isnan(o).any():
                raise LUTError("the LUT has no empty-model entry for a resolution "
                               f"({self.keys[int(overhead[np.isnan(o)][0])]}); use the plain sum")
            out = out - ((ids >= 0).sum(axis=1) - 1) * o
        return out

    def peak_memory(self, genes, missing: str = "raise", largest: bool = False) -> np.ndarray:
        """An arch's arena (bytes) from its blocks' TFLite-Micro arenas: the largest, or, when
        the firmware split them, Σ persistentᵢ − (n−1)·persistent of the empty model + the
        largest activation plan (arenaᵢ − persistentᵢ): per-op data adds up over a network,
        the activation plans do not."""
        taken, ids, overhead = self._gather(self.memory, genes)
        if missing == "raise" and np.isnan(taken).any():
            self._raise_missing(taken, ids, "a peak memory")
        if largest or not self.adds_persistent:     # ``largest``: the plain max, always
            return taken.max(axis=1)
        kept = self.persistent[ids]
        base = np.nan_to_num(self.persistent[overhead], nan=0.0)
        plans = np.where(ids >= 0, taken - kept, -np.inf).max(axis=1)
        return kept.sum(axis=1) - ((ids >= 0).sum(axis=1) - 1) * base + plans

    def flash_bytes(self, genes, missing: str = "raise") -> np.ndarray:
        """Flash an arch needs on the LUT's board: its model, Σ(mᵢ − m_r) + m_r with m_r the
        empty model at the arch's resolution (each block's model repeats that structure), plus
        the firmware's own code and data (0 for a LUT not measured on an MCU)."""
        taken, ids, overhead = self._gather(self.model, genes)
        if missing == "raise" and np.isnan(taken).any():
            self._raise_missing(taken, ids, "a model size")
        empty = np.nan_to_num(self.model[overhead], nan=0.0)
        return (taken.sum(axis=1) - ((ids >= 0).sum(axis=1) - 1) * empty
                + firmware_flash(self.lut.target))

    @property
    def measures_flash(self) -> bool:
        """Whether the LUT carries the models' sizes as the runtime loaded them."""
        return bool(np.isfinite(self.model[:-1]).any())

    def flash_missing(self) -> list[str]:
        """Cases priced for latency that have no model size (measured or predicted)."""
        return [k for k, v, m in zip(self.keys, self.vector, self.model)
                if not np.isnan(v) and np.isnan(m) and not k.startswith("Identity_")]

    @property
    def measures_memory(self) -> bool:
        """Whether the LUT's memory column is an arena the device really allocates."""
        return self.lut.meta.get("memory_method") in ARENA_METHODS

    def memory_missing(self) -> list[str]:
        """Cases priced for latency that have no memory figure (measured or predicted)."""
        return [k for k, v, m in zip(self.keys, self.vector, self.memory)
                if not np.isnan(v) and np.isnan(m) and not k.startswith("Identity_")]

    def missing(self) -> list[str]:
        """Cases of the layout without a latency (empty models aside)."""
        return [k for k, v in zip(self.keys, self.vector) if np.isnan(v)
                and not k.startswith("Identity_")]

    def check_complete(self, tolerated: float = 0.0) -> None:
        """Raise unless at most ``tolerated`` (a fraction) of the cases are missing."""
        missing = self.missing()
        if len(missing) > tolerated * len(self.keys):
            rs = ",".join(map(str, getattr(self.layout, "resolutions", ())))
            raise LUTError(f"the LUT lacks {len(missing)} of the layout's {len(self.keys)} cases "
                           f"(e.g. {missing[0]}); measure them: lutfarm profile --space "
                           f"{self.layout.space} --resolutions {rs}")
