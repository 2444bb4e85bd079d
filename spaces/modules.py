"""Build the torch module of any case of any registered space: blocks (by kind, from the
``spaces.blocks`` registry), pairs of blocks, whole networks."""

from __future__ import annotations

from torch import nn

import lutfarm.spaces.fbnet_modules  # noqa: F401  (registers FBNet's block kinds)
import lutfarm.spaces.mcunet_modules  # noqa: F401  (registers MCUNet's)
import lutfarm.spaces.nb201_modules  # noqa: F401  (registers NB201's, and its cell network)
from lutfarm.spaces.blocks import BLOCKS, NETWORKS, Flatten, seeded_init
from lutfarm.spaces.cases import BlockCase, PairCase

__all__ = ["build_block", "build_module", "build_network", "seeded_init", "Flatten"]


def build_block(case: BlockCase) -> nn.Module:
    """The torch module that ``case`` stands for."""
    try:
        return BLOCKS[case.kind](case)
    except KeyError:
        raise ValueError(f"no module registered for case kind {case.kind!r}") from None


def build_network(layout, arch) -> nn.Sequential:
    """A whole network of any space: the space's own builder where it registered one, else
    the blocks of ``layout.arch_cases(arch)`` in order."""
    if layout.space in NETWORKS:
        return NETWORKS[layout.space](layout, arch)
    modules = [build_block(c) for c in layout.arch_cases(arch)]
    modules.insert(len(modules) - 1, Flatten())  # pool output (N, C, 1, 1) -> classifier
    return nn.Sequential(*modules)


def build_module(case) -> nn.Module:
    """Any case (block, pair of blocks, whole network) -> its torch module."""
    if hasattr(case, "arch"):        # a whole-network case of any space
        return build_network(case.layout, case.arch)
    if isinstance(case, PairCase):
        return nn.Sequential(build_block(case.first), build_block(case.second))
    return build_block(case)
