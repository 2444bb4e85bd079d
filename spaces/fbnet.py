"""The FBNet (v1) search space in HW-NAS-Bench's two macro layouts.

Fixed stem, 22 searchable layers in 7 stages, fixed 1x1 head conv, global average pool and
classifier. Each searchable layer picks one of 9 blocks; an architecture is 22 op indices.
This module is pure Python + numpy: the LUT and search use it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from lutfarm.spaces.cases import BlockCase, PairCase, WholeNetworkCase
from lutfarm.spaces.registry import ArchCosts, ArchError, Space, register_space


@dataclass(frozen=True)
class Op:
    """One of the 9 candidate blocks; ``exp is None`` marks the skip."""

    index: int
    name: str
    exp: int | None = None
    kernel: int | None = None
    group: int = 1


# Index order used by HW-NAS-Bench and HELP.
OPS: tuple[Op, ...] = (
    Op(0, "k3_e1", 1, 3, 1),
    Op(1, "k3_e1_g2", 1, 3, 2),
    Op(2, "k3_e3", 3, 3, 1),
    Op(3, "k3_e6", 6, 3, 1),
    Op(4, "k5_e1", 1, 5, 1),
    Op(5, "k5_e1_g2", 1, 5, 2),
    Op(6, "k5_e3", 3, 5, 1),
    Op(7, "k5_e6", 6, 5, 1),
    Op(8, "skip"),
)
NUM_OPS = len(OPS)


@dataclass(frozen=True)
class LayerSlot:
    """One searchable position: its input resolution, channels and stride."""

    index: int
    stage: int
    h: int
    cin: int
    cout: int
    stride: int
    first: bool = False      # the first layer of its stage (takes the previous stage's width)

    def case(self, op: int | Op) -> BlockCase:
        op = OPS[op] if isinstance(op, int) else op
        if op.exp is None:
            return BlockCase("Skip", self.cin, self.cout, h=self.h, w=self.h, stride=self.stride)
        return BlockCase("ConvBlock", self.cin, self.cout, h=self.h, w=self.h, exp=op.exp,
                         kernel=op.kernel, stride=self.stride, group=op.group)


@dataclass(frozen=True)
class FBNetLayout(ArchCosts):
    """A macro layout of the FBNet space (HW-NAS-Bench's table)."""

    name: str
    input_size: int
    stem_stride: int
    stage_strides: tuple[int, ...]
    head_channels: int
    classes: int
    stem_channels: int = 16
    stage_layers: tuple[int, ...] = (1, 4, 4, 4, 4, 4, 1)
    stage_channels: tuple[int, ...] = (16, 24, 32, 64, 112, 184, 352)
    space: str = "fbnet"

    def with_classes(self, classes: int) -> FBNetLayout:
        if classes < 1:
            raise ArchError(f"--classes must be a positive integer, got {classes}")
        return replace(self, classes=classes)

    @property
    def num_layers(self) -> int:
        return sum(self.stage_layers)

    def layer_slots(self) -> list[LayerSlot]:
        slots, h, cin = [], self.input_size // self.stem_stride, self.stem_channels
        for stage, (n, cout, s) in enumerate(zip(self.stage_layers, self.stage_channels,
                                                 self.stage_strides)):
            for i in range(n):
                stride = s if i == 0 else 1
                slots.append(LayerSlot(len(slots), stage, h, cin, cout, stride, first=i == 0))
                h, cin = h // stride, cout
        return slots

    def stem_case(self) -> BlockCase:
        return BlockCase("ConvNorm", 3, self.stem_channels, h=self.input_size, w=self.input_size,
                         kernel=3, stride=self.stem_stride, group=1)

    def head_cases(self) -> list[BlockCase]:
        last = self.layer_slots()[-1]
        h, c, head = last.h // last.stride, last.cout, self.head_channels
        return [
            BlockCase("ConvNorm", c, head, h=h, w=h, kernel=1, stride=1, group=1),
            BlockCase("AvgP", head, head, h=h, w=h, kernel=h, stride=1),
            BlockCase("FC", head, self.classes),
        ]

    def fixed_cases(self) -> list[BlockCase]:
        """Layers every architecture has: their sum is added to every arch's latency."""
        return [self.stem_case(), *self.head_cases()]

    def overhead_case(self) -> BlockCase:
        """An empty model with the network's input: the runtime's per-call cost."""
        return BlockCase("Identity", 3, 3, h=self.input_size, w=self.input_size)

    def fusion_pairs(self) -> list[PairCase]:
        """Adjacent layers running the same block, once per distinct pair of shapes (the
        cases of nn-Meter's fusion test)."""
        slots = self.layer_slots()
        seen: dict[str, PairCase] = {}
        for a, b in zip(slots, slots[1:]):
            for op in OPS:
                if op.exp is not None:
                    pair = PairCase(a.case(op), b.case(op))
                    seen.setdefault(pair.key, pair)
        return list(seen.values())

    def choice_cases(self) -> list[list[BlockCase]]:
        """``[layer][op]`` -> case, 22 x 9."""
        return [[slot.case(op) for op in OPS] for slot in self.layer_slots()]

    def unique_cases(self) -> list[BlockCase]:
        """Every distinct case a network of this layout can contain, in network order."""
        seen: dict[str, BlockCase] = {}
        ordered = [self.stem_case(), *(c for row in self.choice_cases() for c in row),
                   *self.head_cases()]
        for case in ordered:
            seen.setdefault(case.key, case)
        return list(seen.values())

    def stage_widths(self, multipliers) -> list[list[int]]:
        """Channels of each stage at each width multiplier (FBNetV2), multiples of 8."""
        return [[max(8, int(round(c * m / 8.0)) * 8) for m in multipliers]
                for c in self.stage_channels]

    def width_cases(self, multipliers) -> list[BlockCase]:
        """Every block case that stage widths from ``multipliers`` can produce (the full-width
        ones included): measure them to price FBNetV2's width choices for real."""
        widths = self.stage_widths(multipliers)
        slots = self.layer_slots()
        seen: dict[str, BlockCase] = {}
        for slot in slots:
            for cout in widths[slot.stage]:
                if not slot.first:
                    cins = [cout]
                elif slot.stage == 0:
                    cins = [self.stem_channels]
                else:
                    cins = widths[slot.stage - 1]
                for cin in cins:
                    for op in OPS:
                        case = replace(slot.case(op), cin=cin, cout=cout)
                        seen.setdefault(case.key, case)
        head = self.head_cases()[0]
        for cin in widths[-1]:
            case = replace(head, cin=cin)
            seen.setdefault(case.key, case)
        return list(seen.values())

    def arch_cases(self, arch) -> list[BlockCase]:
        """All cases of one network, fixed layers included, in execution order."""
        row = validate_archs(np.asarray(arch)[None, :], self.num_layers)[0]
        layers = [slot.case(int(op)) for slot, op in zip(self.layer_slots(), row)]
        return [self.stem_case(), *layers, *self.head_cases()]

    # -- the space contract (spaces.registry) -------------------------------------------------
    def parse_arch(self, text: str) -> tuple[int, ...]:
        return tuple(parse_arch(text, self.num_layers))

    def arch_to_text(self, arch) -> str:
        return "".join(str(int(op)) for op in arch)

    def sample_archs(self, n: int, seed: int = 0) -> list[tuple[int, ...]]:
        rng = np.random.default_rng(seed)
        return [tuple(int(v) for v in row)
                for row in rng.integers(0, NUM_OPS, size=(n, self.num_layers))]

    @property
    def encoding_size(self) -> int:
        return self.num_layers * NUM_OPS

    def encode(self, archs) -> np.ndarray:
        """One-hot per layer (HELP's and the arch predictors' encoding), N x (22 * 9)."""
        a = validate_archs(np.asarray(archs), self.num_layers)
        out = np.zeros((len(a), self.num_layers, NUM_OPS), dtype=np.float32)
        np.put_along_axis(out, a[:, :, None], 1.0, axis=2)
        return out.reshape(len(a), -1)

    def decode(self, row) -> tuple[int, ...]:
        return tuple(int(v) for v in np.asarray(row).reshape(self.num_layers, NUM_OPS)
                     .argmax(axis=1))

    def network_case(self, arch) -> NetworkCase:
        return NetworkCase(self, tuple(int(v) for v in arch))


class NetworkCase(WholeNetworkCase):
    """A whole FBNet network (22 op digits in its key)."""

    PREFIX = "FBNet"


LAYOUTS: dict[str, FBNetLayout] = {
    "imagenet": FBNetLayout("imagenet", 224, 2, (1, 2, 2, 2, 1, 2, 1), 1984, 1000),
    "cifar": FBNetLayout("cifar", 32, 1, (1, 1, 2, 2, 1, 2, 1), 1504, 100),
}


def validate_archs(archs, num_layers: int = 22) -> np.ndarray:
    """Check a batch of architectures (N x layers op indices) and return it as int array."""
    a = np.asarray(archs)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != num_layers:
        got = a.shape[-1] if a.ndim >= 1 else 0
        raise ArchError(f"an FBNet arch has {num_layers} op indices, got {got}; "
                        f"give {num_layers} comma-separated numbers 0-{NUM_OPS - 1}")
    if not np.issubdtype(a.dtype, np.integer):
        if a.size and not np.all(np.equal(np.mod(a, 1), 0)):
            raise ArchError("arch op indices must be whole numbers 0-8")
        a = a.astype(np.int64)
    if a.size and (a.min() < 0 or a.max() >= NUM_OPS):  # two reductions: cheap on 10^5 archs
        r, c = np.argwhere((a < 0) | (a >= NUM_OPS))[0]
        raise ArchError(f"op index {a[r, c]} at layer {c} is outside 0-{NUM_OPS - 1} "
                        f"({', '.join(f'{o.index}={o.name}' for o in OPS)})")
    return a


def parse_arch(text: str, num_layers: int = 22) -> list[int]:
    """``"0,0,3,…"`` or HW-NAS-Bench's digit string ``"0000…"`` -> list of op indices."""
    text = text.strip()
    try:
        if "," in text or " " in text:
            ops = [int(t) for t in text.replace(",", " ").split()]
        elif text.isdigit() and len(text) == num_layers:
            ops = [int(ch) for ch in text]
        else:
            ops = [int(text)]
    except ValueError:
        raise ArchError(f"cannot read arch {text!r}: give {num_layers} comma-separated op "
                        f"indices 0-{NUM_OPS - 1}, e.g. {','.join(['0'] * num_layers)}") from None
    validate_archs(np.asarray(ops), num_layers)
    return ops


NetworkCase.LAYOUTS = LAYOUTS
register_space(Space("fbnet", "FBNet (v1): 22 layers x 9 blocks, HW-NAS-Bench's layouts",
                     LAYOUTS, "cifar", NetworkCase, block_kind="ConvBlock",
                     pieces={"supernet": "lutfarm.search.supernets.fbnet:FBNetOneShot"}))
