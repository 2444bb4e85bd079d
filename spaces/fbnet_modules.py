"""PyTorch modules for the FBNet space's block kinds (HW-NAS-Bench's keys), registered in
``spaces.blocks``. AvgP, FC and Identity are shared with other spaces."""

from __future__ import annotations

import torch
from torch import nn

from lutfarm.spaces.blocks import conv_bn, register_block
from lutfarm.spaces.cases import BlockCase


class ChannelShuffle(nn.Module):
    """ShuffleNet's shuffle after a grouped 1x1 conv (written out so every exporter handles it)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class InvertedResidual(nn.Module):
    """FBNet's candidate block: 1x1 (groups g) -> shuffle -> KxK depthwise -> 1x1 (groups g)."""

    def __init__(self, cin: int, cout: int, exp: int, kernel: int, stride: int, group: int):
        super().__init__()
        mid = cin * exp
        layers: list[nn.Module] = [conv_bn(cin, mid, 1, groups=group)]
        if group > 1:
            layers.append(ChannelShuffle(group))
        layers += [conv_bn(mid, mid, kernel, stride, groups=mid),
                   conv_bn(mid, cout, 1, groups=group, act=None)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


@register_block("ConvBlock")
def _conv_block(case: BlockCase) -> nn.Module:
    return InvertedResidual(case.cin, case.cout, case.exp, case.kernel, case.stride, case.group)


@register_block("Skip")
def _skip(case: BlockCase) -> nn.Module:
    if case.is_identity:
        return nn.Identity()
    # A skip that changes shape cannot be free: a 1x1 projection (not in FBNet's paper,
    # HW-NAS-Bench measures it too).
    return conv_bn(case.cin, case.cout, 1, case.stride, act=None)


@register_block("ConvNorm")
def _conv_norm(case: BlockCase) -> nn.Module:
    return conv_bn(case.cin, case.cout, case.kernel, case.stride, case.group)


@register_block("AvgP")
def _avg_pool(case: BlockCase) -> nn.Module:
    return nn.AvgPool2d(case.kernel, case.stride)


@register_block("FC")
def _fc(case: BlockCase) -> nn.Module:
    return nn.Linear(case.cin, case.cout)


@register_block("Identity")
def _identity(case: BlockCase) -> nn.Module:
    return nn.Identity()
