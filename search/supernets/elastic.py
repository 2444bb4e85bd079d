"""Elastic layers for weight-sharing supernets: one weight tensor at its largest shape, of which
each call uses a slice (first channels, centre of the kernel, optionally a block-diagonal
group mask), as OFA and Single-Path NAS share weights between the candidates of a layer.

Sharing is what lets uniformly sampled paths train: candidates that keep weights of their own
write their outputs in unrelated channel bases, and the next layer cannot serve them all
(measured on the FBNet space, see ``oneshot_fbnet``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def group_mask(cout: int, cin: int, groups: int, device=None) -> torch.Tensor:
    """The block-diagonal (cout, cin, 1, 1) mask that turns a dense 1x1 weight into the weight
    of a grouped convolution: output group g sees input group g only."""
    o = torch.arange(cout, device=device) // (cout // groups)
    i = torch.arange(cin, device=device) // (cin // groups)
    return (o[:, None] == i[None, :]).to(torch.float32)[:, :, None, None]


class ElasticConv(nn.Module):
    """A convolution whose output channels, input channels (taken from the input), kernel
    (centre crop) and groups (block-diagonal mask) shrink per call; ``depthwise`` convolves
    each channel on its own.

    ``transform_kernels`` gives the smaller kernels OFA's kernel-transform matrices: the k x k
    kernel is the centre of the next larger one (itself transformed) times a learned
    (k², k²) matrix that all channels share, identity at the start. Why: with a plain crop the
    centre 3 x 3 must serve as a 3 x 3 kernel and as the middle of the 7 x 7 one at once."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 depthwise: bool = False, bias: bool = False,
                 transform_kernels: Sequence[int] = ()):
        super().__init__()
        self.kernel, self.stride, self.depthwise = kernel, stride, depthwise
        shape = (cout, 1, kernel, kernel) if depthwise else (cout, cin, kernel, kernel)
        self.weight = nn.Parameter(torch.empty(shape))
        nn.init.kaiming_normal_(self.weight, mode="fan_out")
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.transform_sizes = tuple(sorted({k for k in transform_kernels if k < kernel},
                                            reverse=True))    # largest first, as applied
        self.transforms = nn.ParameterDict({f"{k}x{k}": nn.Parameter(torch.eye(k * k))
                                            for k in self.transform_sizes})

    def kernel_weight(self, w: torch.Tensor, k: int) -> torch.Tensor:
        """The k x k kernel of ``w`` (its full-size weights, channels already sliced)."""
        size = self.kernel
        for t in self.transform_sizes:
            if t < k:
                break
            s = (size - t) // 2
            w = w[..., s:s + t, s:s + t]
            w = F.linear(w.reshape(-1, t * t), self.transforms[f"{t}x{t}"]).reshape(w.shape)
            size = t
        s = (size - k) // 2
        return w[..., s:s + k, s:s + k]

    def forward(self, x: torch.Tensor, cout: int | None = None, kernel: int | None = None,
                groups: int = 1, stride: int | None = None) -> torch.Tensor:
        cin = x.shape[1]
        k = kernel or self.kernel
        if self.depthwise:
            w, conv_groups, cout = self.kernel_weight(self.weight[:cin], k), cin, cin
        else:
            cout = cout or self.weight.shape[0]
            w, conv_groups = self.kernel_weight(self.weight[:cout, :cin], k), 1
            if groups > 1:
                w = w * group_mask(cout, cin, groups, w.device).to(w.dtype)
        b = self.bias[:cout] if self.bias is not None else None
        return F.conv2d(x, w, b, stride or self.stride, k // 2, 1, conv_groups)


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
    """Elastic convolution, elastic batch norm, then ``act`` (none when it is None)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1,
                 depthwise: bool = False,
                 act: Callable[[torch.Tensor], torch.Tensor] | None = F.relu6,
                 transform_kernels: Sequence[int] = ()):
        super().__init__()
        self.conv = ElasticConv(cin, cout, kernel, stride, depthwise,
                                transform_kernels=transform_kernels)
        self.bn = ElasticBatchNorm(cout)
        self.act = act

    def forward(self, x, cout=None, kernel=None, groups=1, stride=None):
        x = self.bn(self.conv(x, cout, kernel, groups, stride))
        return self.act(x) if self.act is not None else x
