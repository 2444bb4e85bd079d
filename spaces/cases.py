"""Block cases and their canonical keys: the one home of "what gets measured".

A case is one block with every hyper-parameter that changes its cost. Its key uses
HW-NAS-Bench's format verbatim (``ConvBlock_H32_W32_Cin16_Cout16_exp1_kernel3_stride1_group1``,
``Skip_…``, ``ConvNorm_…``, ``AvgP_…``, ``FC_…``), so LUTs import from and export to the
published tables without any translation. ``Identity_…`` is lutfarm's own kind: an empty model
whose time is the runtime's per-call overhead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import ClassVar

from lutfarm.errors import LutfarmError

# Fields that appear in the key of each kind, in key order. Key names follow HW-NAS-Bench.
KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "ConvBlock": ("H", "W", "Cin", "Cout", "exp", "kernel", "stride", "group"),
    "Skip": ("H", "W", "Cin", "Cout", "stride"),
    "ConvNorm": ("H", "W", "Cin", "Cout", "kernel", "stride", "group"),
    "AvgP": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    "FC": ("Cin", "Cout"),
    "Identity": ("H", "W", "Cin", "Cout"),
    # MCUNet's blocks (lutfarm's own keys): ReLU6 everywhere, an inverted residual with an
    # optional squeeze-and-excitation (se 0/1) and no expansion conv at exp1, the fused first
    # block (a linear 1x1 conv) and the stem / feature-mix convs with ReLU6.
    "MBConv": ("H", "W", "Cin", "Cout", "exp", "kernel", "stride", "se"),
    "PointLinear": ("H", "W", "Cin", "Cout"),
    "ConvNormR6": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    # NAS-Bench-201's: the stem (conv, BN), a cell edge's ReLU-conv-BN and 3x3 average pool
    # (padded, stride 1), the residual reduction block, the last BN-ReLU
    "ConvBN": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    "ReLUConvBN": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    "AvgPool": ("H", "W", "Cin", "Cout", "kernel", "stride"),
    "ResBlock": ("H", "W", "Cin", "Cout", "stride"),
    "BNReLU": ("H", "W", "Cin", "Cout"),
}
_NB201_KINDS = ("ConvBN", "ReLUConvBN", "AvgPool", "ResBlock", "BNReLU")

# key field name -> dataclass attribute
_ATTR = {"H": "h", "W": "w", "Cin": "cin", "Cout": "cout", "exp": "exp", "kernel": "kernel",
         "stride": "stride", "group": "group", "se": "se"}


class CaseKeyError(LutfarmError, ValueError):
    """A string that is not a valid case key."""


def se_reduced(cin: int) -> int:
    """The squeeze-and-excitation's reduced width: a quarter of the block's input channels
    (MCUNet's SE_BASE_CHANNEL rule), at least one."""
    return max(1, round(cin / 4))


@dataclass(frozen=True, order=True)
class BlockCase:
    """One measurable block. Fields a kind does not use stay ``None``."""

    kind: str
    cin: int
    cout: int
    h: int | None = None
    w: int | None = None
    exp: int | None = None
    kernel: int | None = None
    stride: int | None = None
    group: int | None = None
    se: int | None = None          # MBConv: 1 with squeeze-and-excitation

    def __post_init__(self) -> None:
        if self.kind not in KIND_FIELDS:
            raise CaseKeyError(f"unknown case kind {self.kind!r}; known: {', '.join(KIND_FIELDS)}")
        used = {_ATTR[f] for f in KIND_FIELDS[self.kind]}
        for f in fields(self):
            if f.name == "kind":
                continue
            value = getattr(self, f.name)
            if f.name in used and not isinstance(value, int):
                raise CaseKeyError(f"{self.kind} needs an integer {f.name}, got {value!r}")
            if f.name not in used and value is not None:
                raise CaseKeyError(f"{self.kind} has no field {f.name}")

    @property
    def key(self) -> str:
        parts = [f"{name}{getattr(self, _ATTR[name])}" for name in KIND_FIELDS[self.kind]]
        return "_".join([self.kind, *parts])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """NCHW shape of the block's input (batch 1); FC takes a flat vector."""
        if self.kind == "FC":
            return (1, self.cin)
        return (1, self.cin, self.h, self.w)

    @property
    def out_hw(self) -> tuple[int, int]:
        """Output height and width ('same' padding: ceil(H / stride))."""
        s = self.stride or 1
        return -(-self.h // s), -(-self.w // s)

    @property
    def se_channels(self) -> int:
        return se_reduced(self.cin)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of one inference (batch 1): a cheap cost and capacity proxy."""
        k = self.kind
        if k in ("MBConv", "PointLinear", "ConvNormR6"):
            return self._mcunet_costs()[0]
        if k in _NB201_KINDS:
            return self._nb201_costs()[0]
        if k in ("Identity", "AvgP") or self.is_identity:
            return self.h * self.w * self.cin if k == "AvgP" else 0
        if k == "FC":
            return self.cin * self.cout
        ho, wo = self.h // self.stride, self.w // self.stride
        if k == "Skip":
            return ho * wo * self.cin * self.cout
        if k == "ConvNorm":
            return ho * wo * self.cin * self.cout * self.kernel ** 2 // self.group
        mid = self.cin * self.exp
        return (self.h * self.w * self.cin * mid // self.group + ho * wo * mid * self.kernel ** 2
                + ho * wo * mid * self.cout // self.group)

    def _mcunet_costs(self) -> tuple[int, int]:
        """(MACs, weights) of MCUNet's block kinds."""
        ho, wo = self.out_hw
        if self.kind == "PointLinear":
            return self.h * self.w * self.cin * self.cout, self.cin * self.cout
        if self.kind == "ConvNormR6":
            weights = self.cin * self.cout * self.kernel ** 2
            return ho * wo * weights, weights
        mid = self.cin * self.exp
        macs = ho * wo * mid * self.kernel ** 2 + ho * wo * mid * self.cout
        weights = mid * self.kernel ** 2 + mid * self.cout
        if self.exp != 1:
            macs += self.h * self.w * self.cin * mid
            weights += self.cin * mid
        if self.se:
            se = 2 * mid * self.se_channels
            macs += se + ho * wo * mid          # the two 1x1 convs, then the channel scaling
            weights += se
        return macs, weights

    def _nb201_costs(self) -> tuple[int, int]:
        """(MACs, weights) of NAS-Bench-201's kinds (pools: one add per input element)."""
        ho, wo = self.out_hw
        k = self.kind
        if k in ("ConvBN", "ReLUConvBN"):
            weights = self.cin * self.cout * self.kernel ** 2
            return ho * wo * weights, weights
        if k == "AvgPool":
            return self.h * self.w * self.cin, 0
        if k == "BNReLU":
            return 0, 0
        # ResBlock: 3x3 (stride) -> 3x3, shortcut 2x2 average pool -> 1x1
        a, b, short = 9 * self.cin * self.cout, 9 * self.cout * self.cout, self.cin * self.cout
        return ho * wo * (a + b + short) + self.h * self.w * self.cin, a + b + short

    @property
    def activation_peak(self) -> int:
        """Largest live activation of the block (elements; bytes at int8): the input and output
        of its costliest step, plus an input held for the residual add. MCUNet's analytical
        peak memory is the largest of these over a network."""
        k, hw = self.kind, self.h * self.w if self.h else 1
        if k == "FC":
            return self.cin + self.cout
        if k == "Identity" or self.is_identity:
            return hw * self.cin
        if k == "AvgP":        # no padding: (H - kernel) / stride + 1
            side = (self.h - self.kernel) // self.stride + 1
            return hw * self.cin + side * side * self.cout
        ho, wo = self.out_hw
        out = ho * wo * self.cout
        if k not in ("MBConv", "ConvBlock"):
            return hw * self.cin + out
        a, mid = hw * self.cin, self.cin * self.exp
        keep = a if self.stride == 1 and self.cin == self.cout else 0
        m_out = ho * wo * mid
        if k == "MBConv" and self.exp == 1:   # the depthwise reads the block's input itself
            return max(a + m_out, m_out + out + keep)
        m_in = hw * mid        # expand, depthwise, project
        return max(a + m_in, m_in + m_out + keep, m_out + out + keep)

    @property
    def params(self) -> int:
        """Weights (BN folded into the convolutions, biases ignored)."""
        k = self.kind
        if k in ("MBConv", "PointLinear", "ConvNormR6"):
            return self._mcunet_costs()[1]
        if k in _NB201_KINDS:
            return self._nb201_costs()[1]
        if k in ("Identity", "AvgP") or self.is_identity:
            return 0
        if k == "FC":
            return self.cin * self.cout
        if k == "Skip":
            return self.cin * self.cout
        if k == "ConvNorm":
            return self.cin * self.cout * self.kernel ** 2 // self.group
        mid = self.cin * self.exp
        return self.cin * mid // self.group + mid * self.kernel ** 2 + mid * self.cout // self.group

    @property
    def is_identity(self) -> bool:
        """True where the block computes nothing (an identity skip or the empty model)."""
        if self.kind == "Identity":
            return True
        return self.kind == "Skip" and self.stride == 1 and self.cin == self.cout

    @classmethod
    def from_key(cls, key: str) -> BlockCase:
        kind, _, rest = key.partition("_")
        if kind not in KIND_FIELDS:
            raise CaseKeyError(f"not a case key: {key!r} (kind {kind!r} unknown; "
                               f"known kinds: {', '.join(KIND_FIELDS)})")
        names = KIND_FIELDS[kind]
        pattern = "_".join(rf"{n}(\d+)" for n in names)
        m = re.fullmatch(pattern, rest)
        if not m:
            expected = "_".join([kind, *(f"{n}<int>" for n in names)])
            raise CaseKeyError(f"not a case key: {key!r}; expected {expected}")
        values = {_ATTR[n]: int(v) for n, v in zip(names, m.groups())}
        return cls(kind=kind, **values)

    def __str__(self) -> str:
        return self.key


@dataclass(frozen=True)
class PairCase:
    """Two blocks run back to back in one model: nn-Meter's fusion test measures op1, op2 and
    op1->op2, and a pair that costs much less than its parts is fused by the runtime."""

    first: BlockCase
    second: BlockCase

    PREFIX = "Pair"

    @property
    def key(self) -> str:
        return f"{self.PREFIX}__{self.first.key}__{self.second.key}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.first.input_shape

    @classmethod
    def from_key(cls, key: str) -> PairCase:
        parts = key.split("__")
        if len(parts) != 3 or parts[0] != cls.PREFIX:
            raise CaseKeyError(f"not a pair key: {key!r}; expected Pair__<case key>__<case key>")
        return cls(BlockCase.from_key(parts[1]), BlockCase.from_key(parts[2]))


@dataclass(frozen=True)
class WholeNetworkCase:
    """A whole network, measured end to end like any other case. Its key is
    ``<PREFIX>_<layout>_C<classes>_<arch text>``; by default the arch is a few op indices below
    ten written as digits (FBNet, NB201). Each space subclasses it with its ``PREFIX`` and
    ``LAYOUTS`` (MCUNet also with its own arch text and input resolution)."""

    layout: object
    arch: tuple

    PREFIX: ClassVar[str] = ""
    LAYOUTS: ClassVar[dict] = {}

    def arch_text(self) -> str:
        return "arch" + "".join(map(str, self.arch))

    @property
    def resolution(self) -> int:
        return self.layout.input_size

    @property
    def key(self) -> str:
        return f"{self.PREFIX}_{self.layout.name}_C{self.layout.classes}_{self.arch_text()}"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, self.resolution, self.resolution)

    @classmethod
    def from_key(cls, key: str):
        m = re.fullmatch(rf"{cls.PREFIX}_([a-z0-9]+)_C(\d+)_arch(\d+)", key)
        if not m or m.group(1) not in cls.LAYOUTS:
            raise CaseKeyError(f"not a {cls.PREFIX} network key: {key!r}; expected "
                               f"{cls.PREFIX}_<layout>_C<classes>_arch<op digits>")
        layout = cls.LAYOUTS[m.group(1)].with_classes(int(m.group(2)))
        return cls(layout, tuple(layout.parse_arch(",".join(m.group(3)))))


@dataclass(frozen=True)
class ModelFileCase:
    """A model file a user brought (``lutfarm bench``): named by its content, not by a space.
    Its key is ``Model_<first 16 hex of the file's SHA-256>``, with ``_S<8 hex>`` when input
    shapes were given for its dynamic dimensions (the same file at another shape is another
    measurement). It is never exported: the file is the model."""

    sha256: str
    shapes: tuple = ()          # ((input name, (dims…)), …) for dynamic dimensions

    PREFIX = "Model"

    @property
    def key(self) -> str:
        key = f"{self.PREFIX}_{self.sha256[:16]}"
        if self.shapes:
            import hashlib
            text = ";".join(f"{n}:{'x'.join(map(str, d))}" for n, d in self.shapes)
            key += "_S" + hashlib.sha256(text.encode()).hexdigest()[:8]
        return key

    @classmethod
    def is_key(cls, key: str) -> bool:
        return re.fullmatch(rf"{cls.PREFIX}_[0-9a-f]{{16}}(_S[0-9a-f]{{8}})?", key) is not None

    def __str__(self) -> str:
        return self.key
