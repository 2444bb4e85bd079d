"""PyTorch modules for MCUNet's block kinds, registered in ``spaces.blocks``: MCUNetV2's
MBInvertedConvLayer (ReLU6; no expansion conv at ratio 1; squeeze-and-excitation reduced to a
quarter of the block's input channels with a hard sigmoid gate), its fused first block and its
ReLU6 stem / feature-mix convs."""

from __future__ import annotations

import torch
from torch import nn

from lutfarm.spaces.blocks import conv_bn, register_block
from lutfarm.spaces.cases import BlockCase


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.reduce = nn.Conv2d(channels, reduced, 1)
        self.expand = nn.Conv2d(reduced, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean((2, 3), keepdim=True)
        s = self.expand(torch.relu(self.reduce(s)))
        return x * (nn.functional.relu6(s + 3.0) / 6.0)


class MBConv(nn.Module):
    def __init__(self, case: BlockCase):
        super().__init__()
        mid = case.cin * case.exp
        layers: list[nn.Module] = []
        if case.exp != 1:
            layers.append(conv_bn(case.cin, mid, 1, act=nn.ReLU6))
        layers.append(conv_bn(mid, mid, case.kernel, case.stride, groups=mid, act=nn.ReLU6))
        if case.se:
            layers.append(SqueezeExcite(mid, case.se_channels))
        layers.append(conv_bn(mid, case.cout, 1, act=None))
        self.body = nn.Sequential(*layers)
        self.residual = case.stride == 1 and case.cin == case.cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


@register_block("MBConv")
def _mbconv(case: BlockCase) -> nn.Module:
    return MBConv(case)


@register_block("PointLinear")
def _point_linear(case: BlockCase) -> nn.Module:
    return conv_bn(case.cin, case.cout, 1, act=None)


@register_block("ConvNormR6")
def _conv_norm_r6(case: BlockCase) -> nn.Module:
    return conv_bn(case.cin, case.cout, case.kernel, case.stride, act=nn.ReLU6)
