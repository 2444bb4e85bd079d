"""FBNet's space as a one-shot supernet (SPOS): every layer holds its 9 candidate blocks, a
training step runs one of them per layer, and any architecture is a path through them."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lutfarm.search.supernet import OneShotNet, register_supernet
from lutfarm.spaces.modules import Flatten, build_block


@register_supernet("fbnet")
class FBNetOneShot(OneShotNet):
    def __init__(self, layout, classes: int):
        super().__init__(layout, classes)
        self.stem = build_block(layout.stem_case())
        self.layers = nn.ModuleList(nn.ModuleList(build_block(c) for c in row)
                                    for row in layout.choice_cases())
        head, pool, _ = layout.head_cases()
        self.head = nn.Sequential(build_block(head), build_block(pool), Flatten(),
                                  nn.Linear(layout.head_channels, classes))
        macs = np.array([[c.macs for c in row] for row in layout.choice_cases()])
        self._largest = tuple(int(i) for i in macs.argmax(1))
        self._smallest = tuple(int(i) for i in macs.argmin(1))

    def sample(self, rng: np.random.Generator) -> tuple[int, ...]:
        return tuple(int(i) for i in rng.integers(0, len(self.layers[0]), len(self.layers)))

    def largest(self) -> tuple[int, ...]:
        return self._largest

    def smallest(self) -> tuple[int, ...]:
        return self._smallest

    def forward(self, x: torch.Tensor, arch) -> torch.Tensor:
        x = self.stem(x)
        for layer, op in zip(self.layers, arch):
            x = layer[int(op)](x)
        return self.head(x)
