"""A fourth search space that lives only in the test folder: the contract that adding a space
is one module. Two genes, each one of three ops at 16 channels, between a stem and a head;
its blocks reuse registered block kinds, so no torch code is needed either.

Imported by ``tests/test_spaces.py``; importing it registers the space ``tiny``.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dataclass_replace

import numpy as np

from lutfarm.spaces.cases import BlockCase, WholeNetworkCase
from lutfarm.spaces.registry import ArchCosts, ArchError, Space, register_space

OPS = ("conv_3x3", "conv_1x1", "avg_pool_3x3")
GENES = 2
C = 16


@dataclass(frozen=True)
class TinyLayout(ArchCosts):
    name: str
    input_size: int
    classes: int
    space: str = "tiny"

    @property
    def gene_sizes(self) -> tuple[int, ...]:
        return (len(OPS),) * GENES

    def with_classes(self, classes: int) -> TinyLayout:
        return dataclass_replace(self, classes=classes)

    def _op(self, op: int) -> BlockCase:
        h = self.input_size
        if OPS[op] == "avg_pool_3x3":
            return BlockCase("AvgPool", C, C, h=h, w=h, kernel=3, stride=1)
        return BlockCase("ReLUConvBN", C, C, h=h, w=h, kernel=3 if op == 0 else 1, stride=1)

    def _fixed(self) -> tuple[list, list]:
        s = h = self.input_size
        stem = [BlockCase("ConvBN", 3, C, h=s, w=s, kernel=3, stride=1)]
        head = [BlockCase("BNReLU", C, C, h=h, w=h), BlockCase("AvgP", C, C, h=h, w=h, kernel=h,
                                                                stride=1),
                BlockCase("FC", C, self.classes)]
        return stem, head

    def _check(self, arch) -> tuple[int, ...]:
        ops = tuple(int(v) for v in arch)
        if len(ops) != GENES or any(not 0 <= v < len(OPS) for v in ops):
            raise ArchError(f"a tiny arch is {GENES} op indices 0-{len(OPS) - 1}, got {arch!r}")
        return ops

    def arch_cases(self, arch) -> list:
        stem, head = self._fixed()
        return [*stem, *(self._op(op) for op in self._check(arch)), *head]

    def unique_cases(self) -> list:
        stem, head = self._fixed()
        return [*stem, *(self._op(op) for op in range(len(OPS))), *head]

    def overhead_case(self) -> BlockCase:
        return BlockCase("Identity", 3, 3, h=self.input_size, w=self.input_size)

    def parse_arch(self, text: str) -> tuple[int, ...]:
        """``conv_3x3-avg_pool_3x3`` (as ``arch_to_text`` writes it) or op digits."""
        names = text.strip().split("-")
        if all(n in OPS for n in names):
            return self._check([OPS.index(n) for n in names])
        return self._check([int(ch) for ch in text if ch.isdigit()])

    def arch_to_text(self, arch) -> str:
        return "-".join(OPS[op] for op in self._check(arch))

    def sample_archs(self, n: int, seed: int = 0) -> list[tuple[int, ...]]:
        rng = np.random.default_rng(seed)
        return [tuple(int(v) for v in row) for row in rng.integers(0, len(OPS), (n, GENES))]

    @property
    def encoding_size(self) -> int:
        return GENES * len(OPS)

    def encode(self, archs) -> np.ndarray:
        a = np.array([self._check(x) for x in archs])
        return np.eye(len(OPS), dtype=np.float32)[a].reshape(len(a), -1)

    def decode(self, row) -> tuple[int, ...]:
        return tuple(int(v) for v in np.asarray(row).reshape(GENES, len(OPS)).argmax(1))

    def network_case(self, arch) -> TinyNetworkCase:
        return TinyNetworkCase(self, self._check(arch))


class TinyNetworkCase(WholeNetworkCase):
    PREFIX = "Tiny"


LAYOUTS = {"tiny": TinyLayout("tiny", 8, 10)}
TinyNetworkCase.LAYOUTS = LAYOUTS
SPACE = register_space(Space("tiny", "a test-only cell space: 2 genes x 3 ops", LAYOUTS,
                             "tiny", TinyNetworkCase, family="cell"))
