"""FBNet's space as a one-shot supernet: every layer holds one elastic block whose weights its 9
candidates share (Single-Path NAS's superkernel): a k3 depthwise kernel is the centre of the k5
one, expansion 1 and 3 are the first channels of expansion 6, a group-2 1x1 convolution is the
block-diagonal part of the dense one, and a skip that changes shape is the 1x1 projection
applied to the input. A training step runs one uniformly sampled candidate per layer (SPOS).

Why shared: with 9 independent blocks per layer, uniformly sampled paths did not train on
digits (train accuracy 10 % after 4 epochs at lr 0.05 or 0.01, with or without zero-initialised
residual gammas, while one fixed path reached 98 %; 13-46 % held out after 40-300 epochs on a
GPU): each candidate writes its output in channels of its own, and the next layer cannot serve
nine unrelated bases. Stem and head are the space's own blocks.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lutfarm.search.supernets.elastic import ElasticConvBN
from lutfarm.search.supernets.oneshot import OneShotNet
from lutfarm.spaces.fbnet import OPS
from lutfarm.spaces.fbnet_modules import ChannelShuffle
from lutfarm.spaces.modules import Flatten, build_block


class ElasticFBNetBlock(nn.Module):
    """The 9 candidates of one layer (``spaces.fbnet_modules.InvertedResidual`` and the skip)
    over one set of weights."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        exp = max(op.exp for op in OPS if op.exp)
        kernel = max(op.kernel for op in OPS if op.kernel)
        self.cin, self.cout, self.stride = cin, cout, stride
        self.expand = ElasticConvBN(cin, cin * exp, 1, act=F.relu)
        self.depthwise = ElasticConvBN(cin * exp, cin * exp, kernel, stride, depthwise=True,
                                       act=F.relu)
        self.project = ElasticConvBN(cin * exp, cout, 1, act=None)
        # groups > 1 shuffle after the grouped 1x1 (no weights: a plain dict, not submodules)
        self.shuffles = {op.group: ChannelShuffle(op.group) for op in OPS if op.group > 1}
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor, op: int) -> torch.Tensor:
        op = OPS[op]
        if op.exp is None:
            return x if self.residual else self.project(x, self.cout, stride=self.stride)
        y = self.expand(x, self.cin * op.exp, groups=op.group)
        if op.group > 1:
            y = self.shuffles[op.group](y)
        y = self.depthwise(y, kernel=op.kernel)
        y = self.project(y, self.cout, groups=op.group)
        return x + y if self.residual else y


class FBNetOneShot(OneShotNet):
    def __init__(self, layout, classes: int):
        super().__init__(layout, classes)
        self.stem = build_block(layout.stem_case())
        self.layers = nn.ModuleList(ElasticFBNetBlock(s.cin, s.cout, s.stride)
                                    for s in layout.layer_slots())
        head, pool, _ = layout.head_cases()
        self.head = nn.Sequential(build_block(head), build_block(pool), Flatten(),
                                  nn.Linear(layout.head_channels, classes))
        macs = np.array([[c.macs for c in row] for row in layout.choice_cases()])
        self._largest = tuple(int(i) for i in macs.argmax(1))
        self._smallest = tuple(int(i) for i in macs.argmin(1))

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(i) for i in rng.integers(0, len(OPS), len(self.layers)))

    def fair(self, rng: np.random.Generator) -> list[tuple[int, ...]]:
        """Nine subnets, every layer running each of its 9 candidates in one of them."""
        columns = np.stack([rng.permutation(len(OPS)) for _ in self.layers])
        return [tuple(int(i) for i in columns[:, j]) for j in range(len(OPS))]

    def largest(self) -> tuple[int, ...]:
        return self._largest

    def smallest(self) -> tuple[int, ...]:
        return self._smallest

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        x = self.stem(x)
        for layer, op in zip(self.layers, arch):
            x = layer(x, int(op))
        return self.head(x)
