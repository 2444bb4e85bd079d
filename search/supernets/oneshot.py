"""One-shot supernets (SPOS, Guo et al.): train once by running one uniformly sampled subnet per
step (optionally OFA's sandwich: the largest, the smallest and two random ones), then score any
subnet with the weights it inherits, its batch-norm statistics recomputed first. FairNAS's
strict fairness (``fair``) instead runs, per step, as many subnets as a layer has candidates,
each candidate of every layer in exactly one of them, and steps once on their summed gradients.

A space names its supernet class as its ``supernet`` piece (``spaces.registry``). Training is
repeatable: the subnet of a step and the order of the batches depend on (seed, epoch, step)
only, so a run resumed from its checkpoint ends with the weights an uninterrupted run has, and
every rank of a distributed run trains the same subnet at the same step.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lutfarm.errors import LutfarmError

FORMAT = "lutfarm-supernet-v3"   # v2: FBNet candidates share weights; v3: MCUNet kernel transforms


class SupernetError(LutfarmError, ValueError):
    """A supernet that cannot be built, trained, resumed or read."""


class OneShotNet(nn.Module):
    """A space's supernet: ``forward(x, arch)`` runs one subnet of ``layout``."""

    def __init__(self, layout, classes: int):
        super().__init__()
        self.layout, self.classes = layout, classes

    def sample(self, rng: np.random.Generator):
        raise NotImplementedError

    def largest(self):
        raise NotImplementedError

    def smallest(self):
        raise NotImplementedError

    def sample_by_macs(self, rng: np.random.Generator, bins: int, pool: int = 4000):
        """SPOS's sampling uniform over FLOPs: a bin of equal MACs width first, then a subnet
        in it, from a fixed pool of ``pool`` uniform draws (seeded, so every rank has it).
        Uniform draws pile up at middling MACs; this trains the small and large ends as much."""
        pools = self.__dict__.setdefault("_macs_pools", {})   # bins -> (archs, bin members)
        if bins not in pools:
            draws = np.random.default_rng(12345)
            archs = [self.sample(draws) for _ in range(pool)]
            macs = np.array([self.layout.macs(a) for a in archs], float)
            edges = np.linspace(macs.min(), macs.max(), bins + 1)[1:-1]
            members = [np.flatnonzero(np.digitize(macs, edges) == b) for b in range(bins)]
            pools[bins] = archs, [m for m in members if len(m)]
        archs, members = pools[bins]
        group = members[int(rng.integers(len(members)))]
        return archs[int(group[rng.integers(len(group))])]

    def fair(self, rng: np.random.Generator) -> list:
        """FairNAS's subnets of one step: every candidate of every layer in exactly one."""
        raise SupernetError(f"strict fairness is not defined for the {self.layout.space} "
                            f"supernet; train it without --fair")


def build_supernet(layout, classes: int, kernel_transforms: bool = True) -> OneShotNet:
    """The supernet the layout's space names (its ``supernet`` piece); ``kernel_transforms``
    False gives MCUNet's elastic kernels as plain centre crops (the lever measured against)."""
    from lutfarm.spaces.registry import get_space, list_spaces

    cls = get_space(layout.space).piece("supernet")
    if cls is None:
        having = [n for n in list_spaces() if "supernet" in get_space(n).pieces]
        raise SupernetError(f"no one-shot supernet for the {layout.space} space; spaces with "
                            f"one: {', '.join(sorted(having))}")
    if not kernel_transforms:
        return cls(layout, classes, kernel_transforms=False)
    return cls(layout, classes)


@dataclass
class TrainSettings:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 4e-5
    warmup_epochs: float = 2.0       # linear warm-up (sampled paths train badly without it)
    sandwich: bool = False           # OFA's rule: largest + smallest + 2 random per step
    distill: bool = False            # with sandwich: the others learn the largest's outputs
    fair: bool = False               # FairNAS: each candidate of each layer once per step
    kernel_transforms: bool = True   # MCUNet: OFA's kernel-transform matrices (else crops)
    macs_bins: int = 0               # SPOS: subnets uniform over this many MACs bins (0: off)
    held_out: float = 0.2            # share of the data kept for scoring subnets
    seed: int = 0
    workers: int = 0                 # DataLoader worker processes
    max_batches: int | None = None   # cap per epoch (tests, quick looks)

    def __post_init__(self):
        if self.distill and not self.sandwich:
            raise SupernetError("--distill needs --sandwich: the largest subnet of each step is "
                                "the teacher of the others")
        if self.fair and self.sandwich:
            raise SupernetError("--fair and --sandwich are two sampling rules; pick one")


@dataclass
class Checkpoint:
    """What ``-o supernet.pt`` holds: enough to resume training and to score subnets."""

    space: str
    layout: str
    classes: int
    resolutions: list[int] | None
    data: str
    settings: dict
    epochs_done: int = 0
    history: list[dict] = field(default_factory=list)
    state: dict = field(default_factory=dict, repr=False)
    optimizer: dict = field(default_factory=dict, repr=False)

    def save(self, path: Path) -> None:
        """Atomically: a kill while writing leaves the previous epoch's file."""
        tmp = path.with_name(path.name + ".tmp")
        torch.save({"format": FORMAT, **asdict(self)}, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        try:
            d = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:
            raise SupernetError(f"{path} is not a lutfarm supernet checkpoint ({exc}); train "
                                f"one with: lutfarm search supernet train -o {path}") from None
        if not isinstance(d, dict) or d.pop("format", None) != FORMAT:
            raise SupernetError(f"{path} is not a {FORMAT} checkpoint; train one with: "
                                f"lutfarm search supernet train -o {path}")
        return cls(**d)

    def layout_obj(self):
        from lutfarm.spaces import get_layout

        layout = get_layout(self.space, self.layout, self.classes)
        return layout.with_resolutions(self.resolutions) if self.resolutions else layout

    def network(self) -> OneShotNet:
        net = build_supernet(self.layout_obj(), self.classes,
                             self.settings.get("kernel_transforms", True))
        if self.state:
            net.load_state_dict(self.state)
        return net

    def datasets(self):
        """(training, held-out) subsets of its data, split as training split them."""
        from lutfarm.search.supernets.data import load_images, split

        data = load_images(self.data, self.layout_obj().input_size)
        return split(data, self.settings.get("held_out", 0.2), self.settings.get("seed", 0))

    def scorer(self, device: str | None = None) -> SubnetScorer:
        """Held-out accuracy of any subnet under these weights."""
        if not self.epochs_done:
            raise SupernetError("this supernet has not finished an epoch; train it first")
        return SubnetScorer(self.network(), *self.datasets(), device=device)


def step_archs(net: OneShotNet, settings: TrainSettings, epoch: int, step: int) -> list:
    """The subnets of one step: a function of (seed, epoch, step), the same on every rank."""
    rng = np.random.default_rng([settings.seed, epoch, step])
    if settings.fair:
        return net.fair(rng)
    draw = (lambda: net.sample_by_macs(rng, settings.macs_bins)) \
        if settings.macs_bins else (lambda: net.sample(rng))
    if settings.sandwich:
        return [net.largest(), net.smallest(), draw(), draw()]
    return [draw()]


def _module(net):
    return net.module if hasattr(net, "module") else net


def learning_rate(settings: TrainSettings, epoch: int, step: int, steps: int) -> float:
    """Cosine over the epochs after a linear warm-up over the first steps: a function of the
    position alone, so a resumed run follows the same schedule. Measured on digits (H200, 40
    epochs, lr 0.05, FBNet blocks with weights of their own): paths mixing two blocks (k3 e6 /
    k5 e6) scored ~50 % held out without warm-up, 96-97 % with 200 warm-up steps."""
    t = epoch + step / max(steps, 1)
    cosine = 0.5 * (1 + math.cos(math.pi * t / settings.epochs))
    warm = min(1.0, (t + 1 / max(steps, 1)) / settings.warmup_epochs) \
        if settings.warmup_epochs > 0 else 1.0
    return settings.lr * cosine * warm


def train_epoch(net, data_loader, opt, settings: TrainSettings, epoch: int, device,
                on_batch: Callable[[dict], None] | None = None) -> dict:
    net.train()
    base = _module(net)
    t0, seen, correct, total = time.perf_counter(), 0, 0, 0.0
    steps = len(data_loader) if settings.max_batches is None else \
        min(len(data_loader), settings.max_batches)
    for step, (x, y) in enumerate(data_loader):
        if step >= steps:
            break
        x, y = x.to(device), y.to(device)
        for g in opt.param_groups:
            g["lr"] = learning_rate(settings, epoch, step, steps)
        opt.zero_grad()
        teacher = None
        for i, arch in enumerate(step_archs(base, settings, epoch, step)):
            logits = net(x, arch)
            if teacher is None:
                loss = F.cross_entropy(logits, y)
            else:
                loss = F.kl_div(F.log_softmax(logits, 1), teacher, reduction="batchmean")
            if i == 0 and settings.distill:      # distill implies sandwich: the largest
                teacher = F.softmax(logits.detach(), 1)
            loss.backward()
            if i == 0:
                total += float(loss.detach()) * len(y)
                correct += int((logits.argmax(1) == y).sum())
                seen += len(y)
        opt.step()
        if on_batch:
            on_batch({"epoch": epoch, "step": step + 1, "steps": steps,
                      "loss": total / max(seen, 1), "train_acc": correct / max(seen, 1)})
    return {"epoch": epoch, "loss": total / max(seen, 1), "train_acc": correct / max(seen, 1),
            "seconds": time.perf_counter() - t0}


@torch.no_grad()
def recalibrate_bn(net: OneShotNet, arch, batches, device) -> None:
    """A subnet's own batch-norm statistics: reset, then averaged over ``batches``."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None                  # a plain average over the batches
    net.train()
    for x, _ in batches:
        net(x.to(device), arch)
    for m, mom in zip(bns, saved):
        m.momentum = mom
    net.eval()


@torch.no_grad()
def accuracy(net: OneShotNet, arch, data_loader, device) -> float:
    net.eval()
    right = seen = 0
    for x, y in data_loader:
        right += int((net(x.to(device), arch).argmax(1).cpu() == y).sum())
        seen += len(y)
    return right / max(seen, 1)


class SubnetScorer:
    """Held-out accuracy of subnets with inherited weights, BN recalibrated per subnet on a
    fixed set of training batches; remembers what it scored (the search asks again)."""

    def __init__(self, net: OneShotNet, train_set, held_out_set, batch_size: int = 128,
                 bn_batches: int = 8, device: str | None = None):
        from lutfarm.search.supernets.data import loader
        from lutfarm.search.supernets.distributed import default_device

        self.device = default_device(device)
        self.net = net.to(self.device)
        calib = loader(train_set, batch_size, shuffle=True, seed=1234)
        self.calibration = [b for _, b in zip(range(bn_batches), calib)]
        self.held_out = loader(held_out_set, batch_size)
        self.cache: dict[str, float] = {}
        self.scored = 0

    def __call__(self, arch) -> float:
        key = repr(arch)
        if key not in self.cache:
            recalibrate_bn(self.net, arch, self.calibration, self.device)
            self.cache[key] = accuracy(self.net, arch, self.held_out, self.device)
            self.scored += 1
        return self.cache[key]


def train(checkpoint: Checkpoint, output: Path, settings: TrainSettings,
          device: str | None = None, on_batch=None, on_epoch=None,
          final_weights: Path | None = None) -> Checkpoint:
    """Train (or go on training) the supernet of ``checkpoint`` on its data, writing ``output``
    after every epoch. Under torch.distributed each rank trains on its share of the batches
    and rank 0 writes; ``final_weights`` (a folder) receives every rank's weights at the end."""
    from lutfarm.search.supernets.data import loader
    from lutfarm.search.supernets.distributed import average_buffers, rank_device, rank_world, wrap
    from lutfarm.seeding import torch_seeded

    rank, world = rank_world()
    device = rank_device(device)
    layout = checkpoint.layout_obj()
    checkpoint.settings = asdict(settings)
    train_set, _ = checkpoint.datasets()
    with torch_seeded(settings.seed):
        net = build_supernet(layout, checkpoint.classes, settings.kernel_transforms)
    if checkpoint.state:
        net.load_state_dict(checkpoint.state)
    net.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=settings.lr, momentum=settings.momentum,
                          weight_decay=settings.weight_decay, nesterov=True)
    if checkpoint.optimizer:
        opt.load_state_dict(checkpoint.optimizer)
    model = wrap(net, device, find_unused=True)   # a subnet leaves the other candidates unused
    for epoch in range(checkpoint.epochs_done, settings.epochs):
        sampler = None
        if world > 1:
            sampler = torch.utils.data.DistributedSampler(train_set, world, rank, shuffle=True,
                                                          seed=settings.seed)
            sampler.set_epoch(epoch)
        batches = loader(train_set, settings.batch_size, shuffle=True, sampler=sampler,
                         workers=settings.workers, seed=settings.seed * 1000 + epoch,
                         drop_last=True)
        record = train_epoch(model, batches, opt, settings, epoch, device,
                             on_batch if rank == 0 else None)
        average_buffers(net)
        checkpoint.epochs_done = epoch + 1
        checkpoint.history.append(record)
        if rank == 0:
            checkpoint.state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
            checkpoint.optimizer = opt.state_dict()
            checkpoint.save(output)
            if on_epoch:
                on_epoch(record)
    if final_weights is not None:
        final_weights.mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                   final_weights / f"rank{rank}.pt")
    checkpoint.state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return checkpoint


def _quiet_train(checkpoint, output, settings, device, final_weights, quiet):
    log = None if quiet else (lambda r: print(
        f"epoch {r['epoch'] + 1}: loss {r['loss']:.3f}, train acc {r['train_acc']:.1%}, "
        f"{r['seconds']:.1f} s", flush=True))
    train(checkpoint, output, settings, device, on_epoch=log, final_weights=final_weights)


def train_distributed(checkpoint: Checkpoint, output: Path, settings: TrainSettings,
                      nproc: int, device: str | None = None, final_weights: Path | None = None,
                      quiet: bool = False) -> Checkpoint:
    """``nproc`` processes on this machine under DistributedDataParallel (gloo on the CPU, NCCL
    on GPUs); the checkpoint rank 0 wrote is returned."""
    from lutfarm.search.supernets.distributed import spawn

    spawn(_quiet_train, (checkpoint, output, settings, device, final_weights, quiet), nproc,
          device)
    return Checkpoint.load(output)
