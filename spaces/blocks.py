"""The torch side of every space: a registry of block kinds (case kind -> module builder) and
the helpers all blocks share. Each space's ``*_modules`` file registers its kinds; build
modules through ``lutfarm.spaces.modules``, which imports them all.

Kept apart from the spaces' definitions so that LUT queries and search never import torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import torch
from torch import nn

from lutfarm.spaces.cases import BlockCase

BLOCKS: dict[str, Callable[[BlockCase], nn.Module]] = {}
# spaces whose networks are not a chain of their cases (NB201's cells are DAGs)
NETWORKS: dict[str, Callable[[object, object], nn.Module]] = {}


def register_block(kind: str):
    """Decorator: ``fn(case) -> nn.Module`` builds every case of ``kind``."""
    def add(fn):
        BLOCKS[kind] = fn
        return fn
    return add


def register_network(space: str):
    """Decorator: ``fn(layout, arch) -> nn.Module`` builds a whole network of ``space``."""
    def add(fn):
        NETWORKS[space] = fn
        return fn
    return add


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1,
            act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class Flatten(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(x, 1)


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
