"""MCUNet's elastic space as one once-for-all supernet: each layer keeps one weight tensor at
its largest shape and a subnet uses a slice of it, as OFA does.

- elastic kernel: the centre k x k of the 7 x 7 depthwise kernel (OFA also learns a small
  transform per kernel size; the plain centre crop is the simpler variant, not OFA's exact one);
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

from lutfarm.search.supernet import OneShotNet, register_supernet
from lutfarm.spaces.cases import se_reduced
from lutfarm.spaces.mcunet import KERNELS


class ElasticConv(nn.Module):
    """A convolution whose output channels, input channels (taken from the input) and kernel
    (centre crop) shrink per call; ``depthwise`` convolves each channel on its own."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 depthwise: bool = False, bias: bool = False):
        super().__init__()
        self.kernel, self.stride, self.depthwise = kernel, stride, depthwise
        shape = (cout, 1, kernel, kernel) if depthwise else (cout, cin, kernel, kernel)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None

    def forward(self, x: torch.Tensor, cout: int | None = None,
                kernel: int | None = None) -> torch.Tensor:
        cin = x.shape[1]
        k = kernel or self.kernel
        s = (self.kernel - k) // 2
        if self.depthwise:
            w, groups, cout = self.weight[:cin, :, s:s + k, s:s + k], cin, cin
        else:
            cout = cout or self.weight.shape[0]
            w, groups = self.weight[:cout, :cin, s:s + k, s:s + k], 1
        b = self.bias[:cout] if self.bias is not None else None
        return F.conv2d(x, w, b, self.stride, k // 2, 1, groups)


class ElasticBatchNorm(nn.BatchNorm2d):
    """Batch norm over the first C channels of its full-width parameters and statistics."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        factor = 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            factor = self.momentum if self.momentum is not None else \
                1.0 / float(self.num_batches_tracked)
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(x, self.running_mean[:c], self.running_var[:c], self.weight[:c],
                            self.bias[:c], use_batch, factor, self.eps)


class ElasticConvBN(nn.Module):
    def __init__(self, cin, cout, kernel, stride=1, depthwise=False, act=True):
        super().__init__()
        self.conv = ElasticConv(cin, cout, kernel, stride, depthwise)
        self.bn = ElasticBatchNorm(cout)
        self.act = act

    def forward(self, x, cout=None, kernel=None):
        x = self.bn(self.conv(x, cout, kernel))
        return F.relu6(x) if self.act else x


class ElasticMBConv(nn.Module):
    """MCUNet's inverted residual (``spaces.mcunet_modules.MBConv``) with elastic kernel, expand
    ratio and width; squeeze-and-excitation reduced to a quarter of the input channels."""

    def __init__(self, cin: int, cout: int, stride: int, se: bool, max_expand: int):
        super().__init__()
        mid = cin * max_expand
        self.stride, self.se = stride, se
        self.expand = ElasticConvBN(cin, mid, 1)
        self.depthwise = ElasticConvBN(mid, mid, max(KERNELS), stride, depthwise=True)
        if se:
            reduced = se_reduced(cin)
            self.se_reduce = ElasticConv(mid, reduced, 1, bias=True)
            self.se_expand = ElasticConv(reduced, mid, 1, bias=True)
        self.project = ElasticConvBN(mid, cout, 1, act=False)

    def forward(self, x: torch.Tensor, cout: int, kernel: int, expand: int) -> torch.Tensor:
        cin = x.shape[1]
        mid = cin * expand
        y = self.depthwise(self.expand(x, mid), kernel=kernel)
        if self.se:
            s = self.se_expand(F.relu(self.se_reduce(y.mean((2, 3), keepdim=True), se_reduced(cin))), mid)
            y = y * (F.relu6(s + 3.0) / 6.0)
        y = self.project(y, cout)
        return x + y if self.stride == 1 and cin == cout else y


@register_supernet("mcunet")
class MCUNetOneShot(OneShotNet):
    def __init__(self, layout, classes: int):
        super().__init__(layout, classes)
        from lutfarm.spaces.mcunet import EXPANDS
        full = max(layout.widths)
        stem, first, _, mix = layout.channels(full)
        self.stem = ElasticConvBN(3, stem, 3, 2)
        self.first = ElasticConvBN(stem, first, 1, act=False)
        slots = list(layout.block_slots(full, max(layout.resolutions)))
        self.blocks = nn.ModuleList(ElasticMBConv(cin, cout, stride, se, max(EXPANDS))
                                    for _, _, _, _, cin, cout, stride, se in slots)
        self.mix = ElasticConvBN(slots[-1][5], mix, 1)
        self.classifier = nn.Linear(mix, classes)

    def sample(self, rng: np.random.Generator):
        return self.layout.sample_archs(1, rng=rng)[0]

    def largest(self):
        return self.layout.largest_arch()

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
