"""PyTorch modules for NAS-Bench-201: its block kinds (registered in ``spaces.blocks``) and its
cell network, which is a DAG (every node sums its incoming edges), not a chain of blocks."""

from __future__ import annotations

import torch
from torch import nn

from lutfarm.spaces.blocks import BLOCKS, Flatten, register_block, register_network
from lutfarm.spaces.cases import BlockCase
from lutfarm.spaces.nb201 import CELLS_PER_STAGE, EDGES, OPS


def _conv_bn(case: BlockCase, relu_first: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.ReLU()] if relu_first else []
    layers += [nn.Conv2d(case.cin, case.cout, case.kernel, case.stride, case.kernel // 2,
                         bias=False), nn.BatchNorm2d(case.cout)]
    return nn.Sequential(*layers)


@register_block("ConvBN")
def _stem(case: BlockCase) -> nn.Module:
    return _conv_bn(case, relu_first=False)


@register_block("ReLUConvBN")
def _relu_conv_bn(case: BlockCase) -> nn.Module:
    return _conv_bn(case, relu_first=True)


@register_block("AvgPool")
def _avg_pool(case: BlockCase) -> nn.Module:
    return nn.AvgPool2d(case.kernel, case.stride, case.kernel // 2, count_include_pad=False)


@register_block("BNReLU")
def _bn_relu(case: BlockCase) -> nn.Module:
    return nn.Sequential(nn.BatchNorm2d(case.cin), nn.ReLU())


class ResBlock(nn.Module):
    """NB201's reduction: ReLU-conv3x3(stride)-BN, ReLU-conv3x3-BN, plus a 2x2 average pool
    and 1x1 conv on the shortcut."""

    def __init__(self, case: BlockCase):
        super().__init__()
        a = BlockCase("ReLUConvBN", case.cin, case.cout, h=case.h, w=case.w, kernel=3,
                      stride=case.stride)
        b = BlockCase("ReLUConvBN", case.cout, case.cout, h=case.h // case.stride,
                      w=case.w // case.stride, kernel=3, stride=1)
        self.a, self.b = _conv_bn(a, True), _conv_bn(b, True)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, 2), nn.Conv2d(case.cin, case.cout, 1,
                                                                    bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(self.a(x)) + self.shortcut(x)


@register_block("ResBlock")
def _res_block(case: BlockCase) -> nn.Module:
    return ResBlock(case)


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 0.0


class Cell(nn.Module):
    def __init__(self, layout, arch, h: int, c: int):
        super().__init__()
        self.edges = nn.ModuleList()
        for op in arch:
            case = layout.op_case(op, h, c)
            if case is not None:
                self.edges.append(BLOCKS[case.kind](case))
            else:
                self.edges.append(nn.Identity() if OPS[op] == "skip_connect" else _Zero())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for target in range(1, 4):
            nodes.append(sum(edge(nodes[src]) for (node, src), edge in zip(EDGES, self.edges)
                             if node == target))
        return nodes[-1]


@register_network("nb201")
def build_nb201(layout, arch) -> nn.Module:
    """The whole network of one NB201 arch (the DAG of every cell written out)."""
    ops = layout._check(arch)
    stem, reductions, head = layout.fixed_cases()
    modules: list[nn.Module] = [BLOCKS[stem[0].kind](stem[0])]
    for i, h, c in layout._stages():
        modules += [Cell(layout, ops, h, c) for _ in range(CELLS_PER_STAGE)]
        if i < len(reductions):
            modules.append(BLOCKS["ResBlock"](reductions[i]))
    modules += [BLOCKS[head[0].kind](head[0]), BLOCKS["AvgP"](head[1]), Flatten(),
                BLOCKS["FC"](head[2])]
    return nn.Sequential(*modules)
