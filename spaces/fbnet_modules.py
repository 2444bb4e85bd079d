"""PyTorch modules for FBNet cases: the blocks that get exported and timed.

Kept apart from ``spaces.fbnet`` so that LUT queries and search bookkeeping never import torch.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from lutfarm.spaces.cases import BlockCase, PairCase
from lutfarm.spaces.fbnet import FBNetLayout, NetworkCase


class ChannelShuffle(nn.Module):
    """ShuffleNet's shuffle after a grouped 1x1 conv (written out so every exporter handles it)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """FBNet's candidate block: 1x1 (groups g) -> shuffle -> KxK depthwise -> 1x1 (groups g)."""

    def __init__(self, cin: int, cout: int, exp: int, kernel: int, stride: int, group: int):
        super().__init__()
        mid = cin * exp
        layers: list[nn.Module] = [conv_bn(cin, mid, 1, groups=group)]
        if group > 1:
            layers.append(ChannelShuffle(group))
        layers += [conv_bn(mid, mid, kernel, stride, groups=mid),
                   conv_bn(mid, cout, 1, groups=group, relu=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


def build_block(case: BlockCase) -> nn.Module:
    """The torch module that ``case`` stands for."""
    if case.kind == "ConvBlock":
        return InvertedResidual(case.cin, case.cout, case.exp, case.kernel, case.stride, case.group)
    if case.kind == "Skip":
        if case.is_identity:
            return nn.Identity()
        # A skip that changes shape cannot be free: a 1x1 projection (not in FBNet's paper,
        # HW-NAS-Bench measures it too).
        return conv_bn(case.cin, case.cout, 1, case.stride, relu=False)
    if case.kind == "ConvNorm":
        return conv_bn(case.cin, case.cout, case.kernel, case.stride, case.group)
    if case.kind == "AvgP":
        return nn.AvgPool2d(case.kernel, case.stride)
    if case.kind == "FC":
        return nn.Linear(case.cin, case.cout)
    if case.kind == "Identity":
        return nn.Identity()
    raise ValueError(f"no module for case kind {case.kind!r}")


def seeded_init(module: nn.Module, seed_text: str) -> nn.Module:
    """Deterministic, non-trivial weights and BN statistics so exports are reproducible."""
    seed = int.from_bytes(hashlib.sha256(seed_text.encode()).digest()[:8], "little")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) / fan_in ** 0.5)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.1 * torch.rand(m.running_var.shape, generator=gen))
    return module.eval()


def build_module(case) -> nn.Module:
    """Any case (block, pair of blocks, whole network) -> its torch module."""
    if isinstance(case, NetworkCase):
        return build_network(case.layout, case.arch)
    if isinstance(case, PairCase):
        return nn.Sequential(build_block(case.first), build_block(case.second))
    return build_block(case)


def build_network(layout: FBNetLayout, arch) -> nn.Sequential:
    """A whole FBNet network: the blocks of ``layout.arch_cases(arch)`` in order."""
    cases = layout.arch_cases(arch)
    modules = [build_block(c) for c in cases]
    modules.insert(len(modules) - 1, Flatten())  # pool output (N, C, 1, 1) -> classifier
    return nn.Sequential(*modules)
