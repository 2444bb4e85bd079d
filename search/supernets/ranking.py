"""Does an accuracy estimate rank architectures the way training them would?

The reference is stand-alone training: each subnet built as the real network
(``build_network``) and trained from scratch with one fixed ``Recipe`` (training length
counted in optimizer steps, so a larger dataset does not silently lengthen it), twice, with
two seeds. The τ between the two seeds is the ceiling: no estimate can rank better than the
training it stands for ranks itself. Against the seeds' mean, the benchmark reports the
supernet's τ and those of cheap stand-ins: the parameter count, the MACs, and one zero-cost
proxy (NASWOT, Mellor et al. 2021: how differently an untrained network's ReLUs split a batch).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class Recipe:
    """The fixed stand-alone training recipe (SGD with Nesterov momentum, one-cycle LR)."""

    steps: int = 400
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    label_smoothing: float = 0.0


def _fit(x: torch.Tensor, size: int | None) -> torch.Tensor:
    if size and x.shape[-1] != size:
        return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x


def train_standalone(layout, arch, train_set, held_out, recipe: Recipe, device: str = "cpu",
                     seed: int = 0) -> float:
    """Held-out accuracy (%) of ``arch`` trained from scratch with ``recipe`` and ``seed``."""
    from lutfarm.search.supernets.data import loader
    from lutfarm.seeding import torch_seeded
    from lutfarm.spaces.modules import build_network

    with torch_seeded(seed):
        net = build_network(layout, arch).to(device)
    opt = torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=True, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=recipe.steps)
    size = getattr(arch, "resolution", None)
    step, epoch = 0, 0
    net.train()
    while step < recipe.steps:
        for x, y in loader(train_set, recipe.batch_size, shuffle=True, seed=seed * 1000 + epoch,
                           drop_last=True):
            loss = F.cross_entropy(net(_fit(x.to(device), size)), y.to(device),
                                   label_smoothing=recipe.label_smoothing)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step == recipe.steps:
                break
        epoch += 1
    net.eval()
    right = seen = 0
    with torch.no_grad():
        for x, y in loader(held_out, 256):
            right += int((net(_fit(x.to(device), size)).argmax(1).cpu() == y).sum())
            seen += len(y)
    return 100.0 * right / max(seen, 1)


def macs_and_params(layout, arch, device: str = "cpu") -> tuple[int, int]:
    """Multiply-accumulates of one image's forward pass (convolutions and linear layers, read
    off the network's own shapes by hooks) and the parameter count of the real network."""
    from lutfarm.spaces.modules import build_network

    net = build_network(layout, arch).eval().to(device)
    total = [0]

    def count(module, inputs, output):
        if isinstance(module, nn.Conv2d):
            total[0] += output.numel() * module.in_channels // module.groups * \
                int(np.prod(module.kernel_size))
        elif isinstance(module, nn.Linear):
            total[0] += output.numel() * module.in_features

    hooks = [m.register_forward_hook(count) for m in net.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear))]
    size = getattr(arch, "resolution", None) or layout.input_size
    with torch.no_grad():
        net(torch.zeros(1, 3, size, size, device=device))
    for h in hooks:
        h.remove()
    return total[0], sum(p.numel() for p in net.parameters())


def naswot(layout, arch, batch: torch.Tensor, device: str = "cpu", seed: int = 0) -> float:
    """NASWOT's score of the untrained network: log|K|, K[i, j] the number of ReLU units on
    which images i and j agree (both active or both not), summed over every ReLU."""
    from lutfarm.seeding import torch_seeded
    from lutfarm.spaces.modules import build_network

    with torch_seeded(seed):
        net = build_network(layout, arch).to(device)
    n = len(batch)
    kernel = torch.zeros(n, n, dtype=torch.float64, device=device)

    def record(module, inputs, output):
        code = (output.detach().flatten(1) > 0).double()
        kernel.add_(code @ code.T + (1 - code) @ (1 - code).T)

    hooks = [m.register_forward_hook(record) for m in net.modules()
             if isinstance(m, (nn.ReLU, nn.ReLU6))]
    net.train()           # as NASWOT scores it: batch statistics, no trained running ones
    with torch.no_grad():
        net(_fit(batch.to(device), getattr(arch, "resolution", None)))
    for h in hooks:
        h.remove()
    return float(torch.linalg.slogdet(kernel)[1])


def kendall(a, b) -> float:
    from scipy import stats
    return float(stats.kendalltau(a, b).statistic)


@dataclass
class RankingReport:
    """The benchmark's answer: Kendall τ of each estimate against stand-alone training."""

    space: str
    layout: str
    data: str
    device: str
    recipe: dict
    archs: list = field(default_factory=list)          # as the layout writes them
    standalone: list = field(default_factory=list)     # accuracy % per seed, per subnet
    estimates: dict = field(default_factory=dict)      # name -> value per subnet
    seconds: dict = field(default_factory=dict)        # what took how long
    budget: dict = field(default_factory=dict)         # how the subnets were drawn

    @property
    def mean_standalone(self) -> list[float]:
        return [float(np.mean(s)) for s in self.standalone]

    def taus(self) -> dict[str, float]:
        """``ceiling``: seed 0 against seed 1; each estimate against the seeds' mean."""
        out = {}
        runs = np.array(self.standalone)
        if runs.ndim == 2 and runs.shape[1] >= 2:
            out["ceiling"] = kendall(runs[:, 0], runs[:, 1])
        for name, values in self.estimates.items():
            out[name] = kendall(values, self.mean_standalone)
        return out

    def tau_errors(self, resamples: int = 1000, seed: int = 0) -> dict[str, float]:
        """Bootstrap standard error of each τ (subnets drawn with replacement): with 30
        subnets it is about 0.1, so two estimates closer than that are not told apart."""
        runs = np.array(self.standalone)
        rng = np.random.default_rng(seed)
        draws: dict[str, list[float]] = {}
        for _ in range(resamples):
            pick = rng.integers(0, len(runs), len(runs))
            sub = RankingReport(self.space, self.layout, self.data, self.device, self.recipe,
                                standalone=runs[pick].tolist(),
                                estimates={k: list(np.asarray(v)[pick])
                                           for k, v in self.estimates.items()})
            for name, tau in sub.taus().items():
                if np.isfinite(tau):
                    draws.setdefault(name, []).append(tau)
        return {name: float(np.std(v)) for name, v in draws.items()}

    def to_dict(self) -> dict:
        return dict(asdict(self), taus=self.taus(), tau_se=self.tau_errors(), n=len(self.archs))


def ranking_benchmark(layout, archs: list, train_set, held_out, recipe: Recipe,
                      scorer=None, device: str = "cpu", seeds: int = 2, data: str = "",
                      on_subnet=None, standalone: list | None = None) -> RankingReport:
    """Every arch trained alone ``seeds`` times with ``recipe``, against the supernet
    (``scorer``: its held-out accuracy with inherited weights), parameters, MACs and NASWOT.
    ``standalone`` (accuracies per subnet, per seed, measured earlier with ``recipe``) skips
    the training: comparing supernets on the same subnets costs their training only."""
    from lutfarm.search.supernets.data import loader

    report = RankingReport(layout.space, layout.name, data, device, asdict(recipe),
                           [layout.arch_to_text(a) for a in archs])
    probe = next(iter(loader(train_set, 64, shuffle=True, seed=4321)))[0]
    t0 = time.perf_counter()
    if scorer is not None:
        report.estimates["supernet"] = [100.0 * scorer(a) for a in archs]
    report.seconds["supernet_scoring_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    counted = [macs_and_params(layout, a, device) for a in archs]
    report.estimates["macs"] = [float(m) for m, _ in counted]
    report.estimates["params"] = [float(p) for _, p in counted]
    report.estimates["naswot"] = [naswot(layout, a, probe, device) for a in archs]
    report.seconds["proxies_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    if standalone is not None:
        if len(standalone) != len(archs):
            raise ValueError(f"{len(standalone)} stand-alone results for {len(archs)} subnets")
        report.standalone = [list(map(float, s)) for s in standalone]
        report.seconds["standalone_s"] = 0.0
        report.seconds["standalone_reused"] = True
        return report
    for k, a in enumerate(archs):
        report.standalone.append([train_standalone(layout, a, train_set, held_out, recipe,
                                                   device, seed) for seed in range(seeds)])
        if on_subnet:
            on_subnet(k, report)
    report.seconds["standalone_s"] = time.perf_counter() - t0
    return report
