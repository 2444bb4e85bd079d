"""MCUNet's once-for-all space for microcontrollers, as MCUNetV2's ``OFAMCUNets`` builds it
for the seed's visual-wake-words lab (``base_stage_width="mcunet384"``, ``fuse_blk1=True``).

A 3x3 stride-2 stem, a fused first block (a linear 1x1 conv), six stages of inverted residual
blocks (strides 2, 2, 2, 1, 2, 1; SE in the middle stages), a 1x1 feature-mix conv to 384
channels, global average pooling and a classifier. An architecture picks, per elastic block, a
kernel {3, 5, 7} and an expand ratio {3, 4, 6}; per stage, extra depth {0, 1, 2} over the base
depth (1, 2, 2, 2, 2; the last stage always has one block); one global width multiplier
{0.5, 0.75, 1.0}; and the input resolution {96, 112, 128, 144, 160}. The 20 elastic blocks
keep their kernel and expand choices when inactive (as the seed's configs do); ``canonical``
clears them, so two architectures that build the same network compare equal.

Pure Python + numpy (no torch): LUT lookups and search use it. Torch blocks live in
``spaces.mcunet_modules``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

from lutfarm.spaces.cases import BlockCase, CaseKeyError, WholeNetworkCase
from lutfarm.spaces.registry import ArchCosts, ArchError, Space, register_space

BASE_WIDTHS = (32, 16, 24, 40, 80, 96, 192, 320, 384)   # stem, first block, 6 stages, mix
STAGE_STRIDES = (2, 2, 2, 1, 2, 1)
BASE_DEPTH = (1, 2, 2, 2, 2, 1)
SE_STAGES = (False, (False, True, True, True), True, True, True, False)
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
DEPTHS = (0, 1, 2)
WIDTHS = (0.5, 0.75, 1.0)
RESOLUTIONS = (96, 112, 128, 144, 160)
# blocks per stage at the deepest setting; the last stage is never elastic
STAGE_BLOCKS = tuple(b + max(DEPTHS) for b in BASE_DEPTH[:-1]) + (1,)
NUM_BLOCKS = sum(STAGE_BLOCKS)        # 20 elastic blocks (the fused first block is fixed)
NUM_STAGES = len(STAGE_BLOCKS)


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of ``divisor``, never more than 10 % down (MobileNet's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _has_se(stage: int, position: int) -> bool:
    flag = SE_STAGES[stage]
    return bool(flag[position] if isinstance(flag, tuple) else flag)


@dataclass(frozen=True)
class MCUNetArch:
    """One subnet: kernel and expand ratio per elastic block, extra depth per stage, the width
    multiplier and the input resolution."""

    ks: tuple[int, ...]
    e: tuple[int, ...]
    d: tuple[int, ...]
    width: float
    resolution: int

    def stage_depths(self) -> list[int]:
        return [min(BASE_DEPTH[i] + self.d[i], STAGE_BLOCKS[i]) for i in range(NUM_STAGES)]

    def active(self) -> list[bool]:
        """Per elastic block: does the subnet run it?"""
        out = []
        for n, depth in zip(STAGE_BLOCKS, self.stage_depths()):
            out += [p < depth for p in range(n)]
        return out

    def canonical(self) -> MCUNetArch:
        """Inactive blocks' choices cleared (3, 3) and the last stage's depth 0: the form in
        which two archs that build the same network are equal."""
        on = self.active()
        return replace(self, ks=tuple(k if a else KERNELS[0] for k, a in zip(self.ks, on)),
                       e=tuple(e if a else EXPANDS[0] for e, a in zip(self.e, on)),
                       d=(*self.d[:-1], 0))

    def to_json(self) -> dict:
        return {"ks": list(self.ks), "e": list(self.e), "d": list(self.d), "width": self.width,
                "resolution": self.resolution}

    def to_str(self) -> str:
        """Compact form: ``r128_w75_d012210_k…(20 kernels)_e…(20 expand ratios)``."""
        return (f"r{self.resolution}_w{round(self.width * 100)}_d{''.join(map(str, self.d))}"
                f"_k{''.join(map(str, self.ks))}_e{''.join(map(str, self.e))}")

    @classmethod
    def from_str(cls, text: str) -> MCUNetArch:
        m = re.fullmatch(r"r(\d+)_w(\d+)_d(\d+)_k(\d+)_e(\d+)", text.strip())
        if not m:
            raise ArchError(f"cannot read MCUNet arch {text!r}; expected r<resolution>_w<width "
                            f"%>_d<{NUM_STAGES} depths>_k<{NUM_BLOCKS} kernels>_e<{NUM_BLOCKS} "
                            f"expand ratios>, e.g. {example_arch().to_str()}")
        r, w, d, k, e = m.groups()
        return cls(tuple(map(int, k)), tuple(map(int, e)), tuple(map(int, d)), int(w) / 100,
                   int(r))

    @classmethod
    def from_json(cls, obj: dict) -> MCUNetArch:
        """lutfarm's JSON, or the seed's config dict (``wid`` an index into the widths,
        ``image_size`` the resolution)."""
        try:
            width = obj["width"] if "width" in obj else WIDTHS[int(obj["wid"])]
            resolution = obj.get("resolution", obj.get("image_size"))
            return cls(tuple(int(v) for v in obj["ks"]), tuple(int(v) for v in obj["e"]),
                       tuple(int(v) for v in obj["d"]), float(width), int(resolution))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ArchError(f"an MCUNet arch JSON needs ks ({NUM_BLOCKS}), e ({NUM_BLOCKS}), d "
                            f"({NUM_STAGES}), width (or wid) and resolution (or image_size); "
                            f"{type(exc).__name__}: {exc}") from None


def example_arch() -> MCUNetArch:
    """The largest subnet at 128 px: a handy default and the examples' arch."""
    return MCUNetArch((7,) * NUM_BLOCKS, (6,) * NUM_BLOCKS, (2,) * NUM_STAGES, 1.0, 128)


@dataclass(frozen=True)
class MCUNetLayout(ArchCosts):
    """The MCUNet space for one classifier width, over a set of resolutions."""

    name: str
    classes: int
    resolutions: tuple[int, ...] = RESOLUTIONS
    widths: tuple[float, ...] = WIDTHS
    space: str = "mcunet"

    def with_classes(self, classes: int) -> MCUNetLayout:
        if classes < 1:
            raise ArchError(f"--classes must be a positive integer, got {classes}")
        return replace(self, classes=classes)

    def with_resolutions(self, resolutions) -> MCUNetLayout:
        """The same space measured at fewer (or other) resolutions: ``--resolutions 96,128``."""
        rs = tuple(sorted({int(r) for r in resolutions}))
        bad = [r for r in rs if r < 32]
        if not rs or bad:
            raise ArchError(f"resolutions must be whole numbers of at least 32 pixels, got "
                            f"{list(resolutions)}; the seed uses {','.join(map(str, RESOLUTIONS))}")
        return replace(self, resolutions=rs)

    @property
    def input_size(self) -> int:
        return max(self.resolutions)

    # -- structure -------------------------------------------------------------------------
    def channels(self, width: float) -> tuple[int, int, list[int], int]:
        """(stem, first block, per-stage widths, feature mix) at a width multiplier."""
        stem = make_divisible(BASE_WIDTHS[0] * width)
        first = make_divisible(BASE_WIDTHS[1] * width)
        stages = [make_divisible(b * width) for b in BASE_WIDTHS[2:-1]]
        mix = make_divisible(BASE_WIDTHS[-1] * width) if width > 1.0 else BASE_WIDTHS[-1]
        return stem, first, stages, mix

    def block_slots(self, width: float, resolution: int):
        """Every elastic block position: (index, stage, position, h, cin, cout, stride, se)."""
        _, first, stages, _ = self.channels(width)
        h, cin, index = -(-resolution // 2), first, 0
        for stage, (n, cout, s) in enumerate(zip(STAGE_BLOCKS, stages, STAGE_STRIDES)):
            for p in range(n):
                stride = s if p == 0 else 1
                yield index, stage, p, h, cin, cout, stride, _has_se(stage, p)
                h, cin, index = -(-h // stride), cout, index + 1

    def fixed_cases(self, width: float, resolution: int) -> tuple[list[BlockCase],
                                                                 list[BlockCase]]:
        """(stem and fused first block, feature mix + pool + classifier) of one subnet shape."""
        stem, first, stages, mix = self.channels(width)
        h = -(-resolution // 2)
        head_h = h
        for s in STAGE_STRIDES:
            head_h = -(-head_h // s)
        front = [BlockCase("ConvNormR6", 3, stem, h=resolution, w=resolution, kernel=3, stride=2),
                 BlockCase("PointLinear", stem, first, h=h, w=h)]
        back = [BlockCase("ConvNormR6", stages[-1], mix, h=head_h, w=head_h, kernel=1, stride=1),
                BlockCase("AvgP", mix, mix, h=head_h, w=head_h, kernel=head_h, stride=1),
                BlockCase("FC", mix, self.classes)]
        return front, back

    def arch_cases(self, arch: MCUNetArch) -> list[BlockCase]:
        """The cases of one subnet, in execution order (inactive blocks left out)."""
        arch = self.check(arch)
        front, back = self.fixed_cases(arch.width, arch.resolution)
        on = arch.active()
        blocks = [BlockCase("MBConv", cin, cout, h=h, w=h, exp=arch.e[i], kernel=arch.ks[i],
                            stride=stride, se=int(se))
                  for i, _, _, h, cin, cout, stride, se in self.block_slots(arch.width,
                                                                            arch.resolution)
                  if on[i]]
        return [*front, *blocks, *back]

    def overhead_case(self, resolution: int | None = None) -> BlockCase:
        """An empty model with the input of ``resolution`` (default: the largest)."""
        r = resolution or self.input_size
        return BlockCase("Identity", 3, 3, h=r, w=r)

    def resolution_cases(self, resolution: int) -> list[BlockCase]:
        """Every distinct case a subnet at ``resolution`` can contain (its overhead first)."""
        seen: dict[str, BlockCase] = {}
        for width in self.widths:
            front, back = self.fixed_cases(width, resolution)
            middle = [BlockCase("MBConv", cin, cout, h=h, w=h, exp=e, kernel=k, stride=stride,
                                se=int(se))
                      for _, _, _, h, cin, cout, stride, se in self.block_slots(width, resolution)
                      for k in KERNELS for e in EXPANDS]
            for case in [*front, *middle, *back]:
                seen.setdefault(case.key, case)
        return list(seen.values())

    def unique_cases(self) -> list[BlockCase]:
        """Every distinct case over the layout's resolutions, the other resolutions' overhead
        models included (``overhead_case()`` is planned first by the campaign)."""
        seen: dict[str, BlockCase] = {}
        for r in self.resolutions:
            if r != self.input_size:
                seen.setdefault(self.overhead_case(r).key, self.overhead_case(r))
            for case in self.resolution_cases(r):
                seen.setdefault(case.key, case)
        return list(seen.values())

    def cases_per_resolution(self) -> dict[int, int]:
        return {r: len(self.resolution_cases(r)) for r in self.resolutions}

    # -- architectures ---------------------------------------------------------------------
    def check(self, arch: MCUNetArch) -> MCUNetArch:
        """``arch`` if it belongs to this layout, else one ArchError naming what is wrong."""
        problems = []
        if len(arch.ks) != NUM_BLOCKS or len(arch.e) != NUM_BLOCKS:
            problems.append(f"ks and e need {NUM_BLOCKS} entries (got {len(arch.ks)}, "
                            f"{len(arch.e)})")
        if len(arch.d) != NUM_STAGES:
            problems.append(f"d needs {NUM_STAGES} entries (got {len(arch.d)})")
        for name, values, allowed in (("kernel", arch.ks, KERNELS), ("expand ratio", arch.e,
                                                                       EXPANDS),
                                      ("depth", arch.d, DEPTHS)):
            bad = sorted({v for v in values if v not in allowed})
            if bad:
                problems.append(f"{name} {bad} not in {list(allowed)}")
        if arch.width not in self.widths:
            problems.append(f"width {arch.width} not in {list(self.widths)}")
        if arch.resolution not in self.resolutions:
            problems.append(f"resolution {arch.resolution} not in {list(self.resolutions)}")
        if problems:
            raise ArchError("not an arch of the MCUNet space: " + "; ".join(problems))
        return arch

    def parse_arch(self, text: str) -> MCUNetArch:
        """A compact string or a JSON object (``--arch-json``) -> a checked arch."""
        text = text.strip()
        if text.startswith("{"):
            try:
                obj = json.loads(text)
            except ValueError as exc:
                raise ArchError(f"the MCUNet arch JSON does not parse: {exc}") from None
            return self.check(MCUNetArch.from_json(obj))
        return self.check(MCUNetArch.from_str(text))

    def arch_to_text(self, arch: MCUNetArch) -> str:
        return arch.to_str()

    def sample_archs(self, n: int, seed: int = 0,
                     rng: np.random.Generator | None = None) -> list[MCUNetArch]:
        """Uniform samples of every choice (from ``rng`` when given). (The seed's own sampler
        draws its width index from ``range(0, len - 1)`` and so never draws 1.0; that quirk is
        not copied.)"""
        rng = rng or np.random.default_rng(seed)
        return [MCUNetArch(tuple(int(v) for v in rng.choice(KERNELS, NUM_BLOCKS)),
                           tuple(int(v) for v in rng.choice(EXPANDS, NUM_BLOCKS)),
                           tuple(int(v) for v in rng.choice(DEPTHS, NUM_STAGES)),
                           float(rng.choice(self.widths)), int(rng.choice(self.resolutions)))
                for _ in range(n)]

    def smallest_arch(self) -> MCUNetArch:
        """The cheapest subnet: smallest kernels, expands, depths, width and resolution."""
        return MCUNetArch((KERNELS[0],) * NUM_BLOCKS, (EXPANDS[0],) * NUM_BLOCKS,
                          (DEPTHS[0],) * NUM_STAGES, min(self.widths), min(self.resolutions))

    def largest_arch(self) -> MCUNetArch:
        """The costliest subnet: largest of every choice."""
        return MCUNetArch((KERNELS[-1],) * NUM_BLOCKS, (EXPANDS[-1],) * NUM_BLOCKS,
                          (DEPTHS[-1],) * NUM_STAGES, max(self.widths), max(self.resolutions))

    @property
    def encoding_size(self) -> int:
        return NUM_BLOCKS * (len(KERNELS) + len(EXPANDS)) + len(self.resolutions) \
            + len(self.widths)

    def encode(self, archs) -> np.ndarray:
        """The seed's one-hot encoding: per elastic block a kernel and an expand one-hot (all
        zero when the block is inactive, so depth is implied), then resolution and width."""
        archs = [archs] if isinstance(archs, MCUNetArch) else list(archs)
        out = np.zeros((len(archs), self.encoding_size), dtype=np.float32)
        per = len(KERNELS) + len(EXPANDS)
        tail = NUM_BLOCKS * per
        for row, arch in enumerate(archs):
            arch = self.check(arch)
            for i, on in enumerate(arch.active()):
                if on:
                    out[row, i * per + KERNELS.index(arch.ks[i])] = 1
                    out[row, i * per + len(KERNELS) + EXPANDS.index(arch.e[i])] = 1
            out[row, tail + self.resolutions.index(arch.resolution)] = 1
            out[row, tail + len(self.resolutions) + self.widths.index(arch.width)] = 1
        return out

    def decode(self, row) -> MCUNetArch:
        """One encoding row -> the canonical arch it stands for."""
        row = np.asarray(row)
        per = len(KERNELS) + len(EXPANDS)
        ks, es, on = [], [], []
        for i in range(NUM_BLOCKS):
            block = row[i * per:(i + 1) * per]
            on.append(bool(block.any()))
            ks.append(KERNELS[int(block[:len(KERNELS)].argmax())] if on[-1] else KERNELS[0])
            es.append(EXPANDS[int(block[len(KERNELS):].argmax())] if on[-1] else EXPANDS[0])
        d, start = [], 0
        for stage, n in enumerate(STAGE_BLOCKS):
            d.append(sum(on[start:start + n]) - BASE_DEPTH[stage] if stage < NUM_STAGES - 1
                     else 0)
            start += n
        tail = row[NUM_BLOCKS * per:]
        resolution = self.resolutions[int(tail[:len(self.resolutions)].argmax())]
        width = self.widths[int(tail[len(self.resolutions):].argmax())]
        return MCUNetArch(tuple(ks), tuple(es), tuple(d), width, resolution)

    # -- genes: archs as integer arrays, for vectorised search and lookup ----------------------
    def gene_choices(self) -> tuple[int, ...]:
        """Choices per gene: 20 kernels, 20 expand ratios, 6 depths, width, resolution."""
        return ((len(KERNELS),) * NUM_BLOCKS + (len(EXPANDS),) * NUM_BLOCKS
                + (len(DEPTHS),) * NUM_STAGES + (len(self.widths), len(self.resolutions)))

    def to_genes(self, archs) -> np.ndarray:
        archs = [archs] if isinstance(archs, MCUNetArch) else list(archs)
        return np.array([[KERNELS.index(k) for k in a.ks] + [EXPANDS.index(e) for e in a.e]
                         + [DEPTHS.index(d) for d in a.d]
                         + [self.widths.index(a.width), self.resolutions.index(a.resolution)]
                         for a in (self.check(a) for a in archs)], dtype=np.int64)

    def from_genes(self, genes) -> list[MCUNetArch]:
        g = np.atleast_2d(np.asarray(genes))
        n, m = NUM_BLOCKS, NUM_STAGES
        return [MCUNetArch(tuple(KERNELS[i] for i in row[:n]),
                           tuple(EXPANDS[i] for i in row[n:2 * n]),
                           tuple(DEPTHS[i] for i in row[2 * n:2 * n + m]),
                           self.widths[row[-2]], self.resolutions[row[-1]])
                for row in g.tolist()]

    def active_blocks(self, genes) -> np.ndarray:
        """(N, 20) bool: which elastic blocks each arch runs."""
        g = np.atleast_2d(np.asarray(genes))
        depth = np.asarray(DEPTHS)[g[:, 2 * NUM_BLOCKS:2 * NUM_BLOCKS + NUM_STAGES]]
        depth = np.minimum(np.asarray(BASE_DEPTH) + depth, np.asarray(STAGE_BLOCKS))
        return _POSITION[None, :] < depth[:, _STAGE]

    def case_keys(self) -> list[str]:
        """Every case key of the layout, in the order ``case_index`` numbers them."""
        return [c.key for c in _index_tables(self)[0]]

    def case_list(self) -> list[BlockCase]:
        """The cases of ``case_keys``, in the same order."""
        return list(_index_tables(self)[0])

    def case_index(self, genes) -> tuple[np.ndarray, np.ndarray]:
        """(N, 25) case ids per arch in execution order (-1 for an inactive block) and (N,)
        the id of each arch's empty model (its resolution's per-call overhead)."""
        g = np.atleast_2d(np.asarray(genes))
        _, front, slots, back, overhead = _index_tables(self)
        w, r = g[:, -2], g[:, -1]
        ks, es = g[:, :NUM_BLOCKS], g[:, NUM_BLOCKS:2 * NUM_BLOCKS]
        blocks = slots[w[:, None], r[:, None], np.arange(NUM_BLOCKS)[None, :], ks, es]
        blocks = np.where(self.active_blocks(g), blocks, -1)
        return np.concatenate([front[w, r], blocks, back[w, r]], axis=1), overhead[r]

    # -- analytical efficiency (the seed's predictor): macs, params, peak_activation from
    # ArchCosts, summed over arch_cases -----------------------------------------------------
    def network_case(self, arch: MCUNetArch) -> MCUNetNetworkCase:
        return MCUNetNetworkCase(self, self.check(arch).canonical())


_STAGE = np.repeat(np.arange(NUM_STAGES), STAGE_BLOCKS)             # elastic block -> stage
_POSITION = np.concatenate([np.arange(n) for n in STAGE_BLOCKS])      # ... -> place in stage


@lru_cache(maxsize=16)
def _index_tables(layout: MCUNetLayout):
    """Case keys and, per (width, resolution), the case ids of the fixed layers and of every
    elastic block's (kernel, expand) choice: what ``case_index`` gathers from."""
    ids: dict[str, int] = {}
    cases: list[BlockCase] = []

    def idx(case: BlockCase) -> int:
        if case.key not in ids:
            ids[case.key] = len(cases)
            cases.append(case)
        return ids[case.key]
    nw, nr = len(layout.widths), len(layout.resolutions)
    front = np.zeros((nw, nr, 2), np.int64)
    back = np.zeros((nw, nr, 3), np.int64)
    slots = np.zeros((nw, nr, NUM_BLOCKS, len(KERNELS), len(EXPANDS)), np.int64)
    overhead = np.array([idx(layout.overhead_case(r)) for r in layout.resolutions])
    for wi, width in enumerate(layout.widths):
        for ri, r in enumerate(layout.resolutions):
            f, b = layout.fixed_cases(width, r)
            front[wi, ri] = [idx(c) for c in f]
            back[wi, ri] = [idx(c) for c in b]
            for i, _, _, h, cin, cout, stride, se in layout.block_slots(width, r):
                for ki, k in enumerate(KERNELS):
                    for ei, e in enumerate(EXPANDS):
                        slots[wi, ri, i, ki, ei] = idx(BlockCase(
                            "MBConv", cin, cout, h=h, w=h, exp=e, kernel=k, stride=stride,
                            se=int(se)))
    return tuple(cases), front, slots, back, overhead


class MCUNetNetworkCase(WholeNetworkCase):
    """A whole MCUNet subnet: its compact arch string in the key, its resolution as input."""

    PREFIX = "MCUNet"

    def arch_text(self) -> str:
        return self.arch.to_str()

    @property
    def resolution(self) -> int:
        return self.arch.resolution

    @classmethod
    def from_key(cls, key: str) -> MCUNetNetworkCase:
        m = re.fullmatch(rf"{cls.PREFIX}_([a-z0-9]+)_C(\d+)_(r.+)", key)
        if not m or m.group(1) not in LAYOUTS:
            raise CaseKeyError(f"not an MCUNet network key: {key!r}; expected "
                               f"MCUNet_<layout>_C<classes>_<arch string>")
        layout = LAYOUTS[m.group(1)].with_classes(int(m.group(2)))
        return cls(layout, layout.check(MCUNetArch.from_str(m.group(3))))


# The seed's visual wake words (2 classes) and a 10-class variant.
LAYOUTS: dict[str, MCUNetLayout] = {
    "vww": MCUNetLayout("vww", 2),
    "c10": MCUNetLayout("c10", 10),
}

register_space(Space("mcunet", "MCUNetV2's once-for-all space for microcontrollers (OFAMCUNets, "
                     "mcunet384): kernel, expand, depth, width and resolution elastic",
                     LAYOUTS, "vww", MCUNetNetworkCase,
                     block_kind="MBConv", family="elastic",
                     pieces={"supernet": "lutfarm.search.supernets.mcunet:MCUNetOneShot"}))
