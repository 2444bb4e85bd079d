"""MCUNet's elastic space as one once-for-all supernet: each layer keeps one weight tensor at
its largest shape and a subnet uses a slice of it, as OFA does.

- elastic kernel: the centre k x k of the 7 x 7 depthwise kernel through OFA's kernel-transform
  matrices (7 -> 5 -> 3, identity at the start; ``elastic.ElasticConv``);
- elastic expand ratio and width: the first channels of every tensor;
- elastic depth: a stage runs its first ``base + d`` blocks;
- resolution: the batch is resized to the subnet's resolution.

Batch norm keeps statistics at full width; a subnet's are recomputed before it is scored.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lutfarm.search.supernets.elastic import ElasticConv, ElasticConvBN
from lutfarm.search.supernets.oneshot import OneShotNet
from lutfarm.spaces.cases import se_reduced
from lutfarm.spaces.mcunet import DEPTHS, EXPANDS, KERNELS, NUM_BLOCKS, NUM_STAGES, MCUNetArch


class ElasticMBConv(nn.Module):
    """MCUNet's inverted residual (``spaces.mcunet_modules.MBConv``) with elastic kernel, expand
    ratio and width; squeeze-and-excitation reduced to a quarter of the input channels."""

    def __init__(self, cin: int, cout: int, stride: int, se: bool, max_expand: int,
                 kernel_transforms: bool = True):
        super().__init__()
        mid = cin * max_expand
        self.stride, self.se = stride, se
        self.expand = ElasticConvBN(cin, mid, 1)
        self.depthwise = ElasticConvBN(mid, mid, max(KERNELS), stride, depthwise=True,
                                       transform_kernels=KERNELS if kernel_transforms else ())
        if se:
            reduced = se_reduced(cin)
            self.se_reduce = ElasticConv(mid, reduced, 1, bias=True)
            self.se_expand = ElasticConv(reduced, mid, 1, bias=True)
        self.project = ElasticConvBN(mid, cout, 1, act=None)

    def forward(self, x: torch.Tensor, cout: int, kernel: int, expand: int) -> torch.Tensor:
        cin = x.shape[1]
        mid = cin * expand
        y = self.depthwise(self.expand(x, mid), kernel=kernel)
        if self.se:
            s = self.se_expand(F.relu(self.se_reduce(y.mean((2, 3), keepdim=True), se_reduced(cin))), mid)
            y = y * (F.relu6(s + 3.0) / 6.0)
        y = self.project(y, cout)
        return x + y if self.stride == 1 and cin == cout else y


class MCUNetOneShot(OneShotNet):
    def __init__(self, layout, classes: int, kernel_transforms: bool = True):
        super().__init__(layout, classes)
        full = max(layout.widths)
        stem, first, _, mix = layout.channels(full)
        self.stem = ElasticConvBN(3, stem, 3, 2)
        self.first = ElasticConvBN(stem, first, 1, act=None)
        slots = list(layout.block_slots(full, max(layout.resolutions)))
        self.blocks = nn.ModuleList(ElasticMBConv(cin, cout, stride, se, max(EXPANDS),
                                                  kernel_transforms)
                                    for _, _, _, _, cin, cout, stride, se in slots)
        self.mix = ElasticConvBN(slots[-1][5], mix, 1)
        self.classifier = nn.Linear(mix, classes)

    def sample(self, rng: np.random.Generator):
        return self.layout.sample_archs(1, rng=rng)[0]

    def largest(self):
        return self.layout.largest_arch()

    def fair(self, rng: np.random.Generator) -> list[MCUNetArch]:
        """Three subnets in which every block runs each kernel once and each expand ratio once
        (FairNAS over the two per-block choices); depths, width and resolution spread as
        evenly as three draws allow. A block a subnet's depth leaves out is not trained by it."""
        m = max(len(KERNELS), len(EXPANDS))

        def spread(choices, rows: int) -> np.ndarray:
            return np.stack([rng.permutation(np.resize(np.array(choices), m))
                             for _ in range(rows)])
        ks, es = spread(KERNELS, NUM_BLOCKS), spread(EXPANDS, NUM_BLOCKS)
        ds = spread(DEPTHS, NUM_STAGES)
        ws, rs = spread(self.layout.widths, 1)[0], spread(self.layout.resolutions, 1)[0]
        return [MCUNetArch(tuple(int(v) for v in ks[:, j]), tuple(int(v) for v in es[:, j]),
                           tuple(int(v) for v in ds[:, j]), float(ws[j]), int(rs[j]))
                for j in range(m)]

    def smallest(self):
        return self.layout.smallest_arch()

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        arch = self.layout.check(arch)
        if x.shape[-1] != arch.resolution:
            x = F.interpolate(x, size=(arch.resolution, arch.resolution), mode="bilinear",
                              align_corners=False)
        stem, first, _, mix = self.layout.channels(arch.width)
        x = self.first(self.stem(x, stem), first)
        slots = self.layout.block_slots(arch.width, arch.resolution)
        for (i, _, _, _, _, cout, _, _), on in zip(slots, arch.active()):
            if on:
                x = self.blocks[i](x, cout, arch.ks[i], arch.e[i])
        x = self.mix(x, mix).mean((2, 3))
        return F.linear(x, self.classifier.weight[:, :mix], self.classifier.bias)
