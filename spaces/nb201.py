"""NAS-Bench-201's cell space and its public table, parsed once for every user.

An NB201 cell has 6 edges, each one of 5 ops, so 5^6 = 15 625 architectures. The table
(``nb201_master.csv``, one row per NB201 index; see shared/data/README.md) gives each one's
test accuracy on three datasets, its FLOPs and parameters, and its latency on many devices.
Search (benchmark mode), few-shot latency transfer and the accuracy predictors all read it
through ``read_nb201``.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass
from dataclasses import replace as dataclass_replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from lutfarm import environment
from lutfarm.errors import LutfarmError
from lutfarm.spaces.cases import BlockCase, WholeNetworkCase
from lutfarm.spaces.registry import ArchCosts, ArchError, Space, register_space

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
NUM_EDGES = 6
DATASETS = {"cifar10": "c10_test_acc", "cifar100": "c100_test_acc",
            "imagenet16": "in16_test_acc"}


class NB201Error(LutfarmError, ValueError):
    """The NB201 table is missing or lacks what was asked for."""


def parse_arch_str(arch: str) -> list[int]:
    """``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` -> 6 op indices, edge order as written."""
    ops = re.findall(r"\|([a-z_0-9]+)~\d", arch)
    if len(ops) != NUM_EDGES or any(o not in OPS for o in ops):
        raise NB201Error(f"not an NB201 arch string: {arch!r}")
    return [OPS.index(o) for o in ops]


def device_name(column: str) -> str:
    """``help_pixel2_ms`` / ``hwnb_c10_raspi4_latency`` -> ``pixel2`` / ``raspi4``."""
    return (column.removeprefix("help_").removeprefix("hwnb_c10_").removesuffix("_latency")
            .removesuffix("_ms"))


@dataclass(frozen=True)
class NB201Data:
    """The table in file order (row i = NB201 index i); blanks are NaN."""

    path: Path
    archs: np.ndarray                  # (N, 6) op indices
    accuracy: dict[str, np.ndarray]    # dataset -> test accuracy (%)
    latency: dict[str, np.ndarray]     # device -> ms
    mflops: np.ndarray
    mparams: np.ndarray


def _floats(rows: list[dict], column: str) -> np.ndarray:
    return np.array([float(r[column]) if r[column] not in ("", None) else np.nan for r in rows])


def read_nb201(path: str | os.PathLike | None = None) -> NB201Data:
    """Read ``nb201_master.csv`` (default: ``lutfarm.environment.nb201_path()``)."""
    path = Path(path) if path else environment.nb201_path()
    if not path.is_file():
        raise NB201Error(f"NB201 table {path} not found; pass --nb201 PATH to nb201_master.csv "
                         f"(shared/data) or set LUTFARM_NB201")
    return _read(path.resolve())


@lru_cache(maxsize=2)
def _read(path: Path) -> NB201Data:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        rows = list(reader)
    missing = [c for c in ("arch_str", *DATASETS.values()) if c not in columns]
    if missing or not rows:
        raise NB201Error(f"{path} is not NAS-Bench-201's table (missing "
                         f"{', '.join(missing) or 'rows'}); use shared/data's nb201_master.csv")
    archs = np.array([parse_arch_str(r["arch_str"]) for r in rows])
    lat_cols = [c for c in columns if c.endswith(("_ms", "_latency"))]
    return NB201Data(path, archs,
                     {name: _floats(rows, col) for name, col in DATASETS.items()},
                     {device_name(c): _floats(rows, c) for c in lat_cols},
                     _floats(rows, "c10_mflops"), _floats(rows, "c10_mparams"))


# -- the space (a registry entry: cases, archs, encodings) -----------------------------------

# Edges in NB201's order: node1<-0 | node2<-0, node2<-1 | node3<-0, node3<-1, node3<-2
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def cell_class_key(arch) -> str:
    """The computation a cell performs, as NAS-Bench-201 identifies isomorphic cells: each
    node the sorted sum of its inputs, a skip edge the input itself, a conv or pool edge
    ``(input)@op``, a ``none`` edge (or an input that is nothing) a ``#`` term. Cells with one
    key compute the same function of the same shape; 15 625 cells fall into 6 466 keys."""
    nodes = {0: "x"}
    for node in (1, 2, 3):
        terms = []
        for (to, src), op in zip(EDGES, arch):
            if to != node:
                continue
            if op == 0 or nodes[src] == "#":
                terms.append("#")
            elif op == 1:
                terms.append(nodes[src])
            else:
                terms.append(f"({nodes[src]})@{op}")
        nodes[node] = "+".join(sorted(terms)) or "#"
    return nodes[3]
CELLS_PER_STAGE = 5
STAGE_CHANNELS = (16, 32, 64)


@dataclass(frozen=True)
class NB201Layout(ArchCosts):
    """NAS-Bench-201's macro network: a 3x3 stem, three stages of five identical cells joined
    by residual reduction blocks, BN-ReLU, global pooling, a classifier. An arch is 6 op
    indices (``OPS``), one per edge, shared by all 15 cells."""

    name: str
    input_size: int
    classes: int
    space: str = "nb201"

    @property
    def gene_sizes(self) -> tuple[int, ...]:
        """Each edge chooses one of the ops."""
        return (len(OPS),) * NUM_EDGES

    def with_classes(self, classes: int) -> NB201Layout:
        if classes < 1:
            raise ArchError(f"--classes must be a positive integer, got {classes}")
        return dataclass_replace(self, classes=classes)

    def _stages(self):
        h = self.input_size
        for i, c in enumerate(STAGE_CHANNELS):
            yield i, h, c
            h //= 2

    def op_case(self, op: int, h: int, c: int):
        """The case of one edge's op at (resolution, channels); None for none and skip."""
        name = OPS[op]
        if name in ("none", "skip_connect"):
            return None
        if name == "avg_pool_3x3":
            return BlockCase("AvgPool", c, c, h=h, w=h, kernel=3, stride=1)
        return BlockCase("ReLUConvBN", c, c, h=h, w=h, kernel=1 if name.endswith("1x1") else 3,
                         stride=1)

    def fixed_cases(self) -> tuple[list, list, list]:
        """(stem, the two reduction blocks, BN-ReLU + pool + classifier)."""
        s, c0 = self.input_size, STAGE_CHANNELS[0]
        stem = [BlockCase("ConvBN", 3, c0, h=s, w=s, kernel=3, stride=1)]
        reductions = [BlockCase("ResBlock", c, STAGE_CHANNELS[i + 1], h=h, w=h, stride=2)
                      for i, h, c in self._stages() if i + 1 < len(STAGE_CHANNELS)]
        h, c = s // 2 ** (len(STAGE_CHANNELS) - 1), STAGE_CHANNELS[-1]
        head = [BlockCase("BNReLU", c, c, h=h, w=h),
                BlockCase("AvgP", c, c, h=h, w=h, kernel=h, stride=1),
                BlockCase("FC", c, self.classes)]
        return stem, reductions, head

    def arch_cases(self, arch) -> list:
        """Every priced op of one network in execution order (none and skip cost nothing)."""
        ops = self._check(arch)
        stem, reductions, head = self.fixed_cases()
        out = list(stem)
        for i, h, c in self._stages():
            for _ in range(CELLS_PER_STAGE):
                out += [case for case in (self.op_case(op, h, c) for op in ops) if case]
            if i < len(reductions):
                out.append(reductions[i])
        return out + head

    def overhead_case(self):
        return BlockCase("Identity", 3, 3, h=self.input_size, w=self.input_size)

    def unique_cases(self) -> list:
        stem, reductions, head = self.fixed_cases()
        ops = [self.op_case(op, h, c) for _, h, c in self._stages() for op in range(len(OPS))]
        return [*stem, *(c for c in ops if c), *reductions, *head]

    def _check(self, arch) -> tuple[int, ...]:
        ops = tuple(int(v) for v in arch)
        if len(ops) != NUM_EDGES or any(not 0 <= v < len(OPS) for v in ops):
            raise ArchError(f"an NB201 arch is {NUM_EDGES} op indices 0-{len(OPS) - 1} "
                            f"({', '.join(f'{i}={o}' for i, o in enumerate(OPS))}), got {arch!r}")
        return ops

    def parse_arch(self, text: str) -> tuple[int, ...]:
        """NB201's string ``|nor_conv_3x3~0|+|…|`` or 6 digits."""
        text = text.strip()
        if text.startswith("|"):
            try:
                return tuple(parse_arch_str(text))
            except NB201Error as exc:
                        raise ArchError(str(exc)) from None
        return self._check([int(ch) for ch in text if ch.isdigit()])

    def arch_to_text(self, arch) -> str:
        ops = self._check(arch)
        nodes, i = [], 0
        for node in range(1, 4):
            nodes.append("|" + "|".join(f"{OPS[ops[i + j]]}~{j}" for j in range(node)) + "|")
            i += node
        return "+".join(nodes)

    def sample_archs(self, n: int, seed: int = 0) -> list[tuple[int, ...]]:
        rng = np.random.default_rng(seed)
        return [tuple(int(v) for v in row) for row in rng.integers(0, len(OPS), (n, NUM_EDGES))]

    @property
    def encoding_size(self) -> int:
        return NUM_EDGES * len(OPS)

    def encode(self, archs) -> np.ndarray:
        a = np.array([self._check(x) for x in archs])
        out = np.zeros((len(a), NUM_EDGES, len(OPS)), np.float32)
        np.put_along_axis(out, a[:, :, None], 1.0, axis=2)
        return out.reshape(len(a), -1)

    def decode(self, row) -> tuple[int, ...]:
        return tuple(int(v) for v in np.asarray(row).reshape(NUM_EDGES, len(OPS)).argmax(1))

    def peak_activation(self, arch) -> int:
        """Largest live activations: while node 3's edges run, a cell holds its input, nodes
        1 and 2 and the edge's output (four tensors of the stage's shape)."""
        peak = max(c.activation_peak for c in self.arch_cases(arch))
        return max(peak, *(4 * h * h * c for _, h, c in self._stages()))

    def network_case(self, arch) -> NB201NetworkCase:
        return NB201NetworkCase(self, self._check(arch))


class NB201NetworkCase(WholeNetworkCase):
    """A whole NB201 network (6 op digits in its key)."""

    PREFIX = "NB201"


LAYOUTS: dict[str, NB201Layout] = {
    "cifar10": NB201Layout("cifar10", 32, 10),
    "cifar100": NB201Layout("cifar100", 32, 100),
    "imagenet16": NB201Layout("imagenet16", 16, 120),
}


NB201NetworkCase.LAYOUTS = LAYOUTS
register_space(Space("nb201", "NAS-Bench-201: one cell of 6 edges x 5 ops, 15 cells",
                     LAYOUTS, "cifar10", NB201NetworkCase, family="cell"))
