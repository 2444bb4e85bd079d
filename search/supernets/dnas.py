"""FBNet DNAS: a supernet whose layers mix the 9 candidates with Gumbel-softmax weights, and a
latency term read from the device's LUT.

Loss = CE · α · (log LAT)^β (α = 0.2, β = 0.6), LAT = Σ_l Σ_i m_{l,i} · LUT[l, i] + fixed
layers, m = softmax((θ + g) / τ), g ~ Gumbel(0, 1). Not α·β·CE·log LAT: that popular
reimplementation's form is a different loss. log LAT must be positive for the power to be
defined, so LAT is taken in microseconds when the fastest network is under e ms (the LUTs of
fast CPUs). τ starts at 5 and is multiplied by exp(−0.045) every epoch; weights train on 80 %
of the data (SGD, cosine), θ on the other 20 % (Adam), θ frozen during warm-up epochs.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, random_split

from lutfarm.errors import LutfarmError
from lutfarm.lut import LatencyTable
from lutfarm.seeding import torch_seeded
from lutfarm.spaces.fbnet import NUM_OPS
from lutfarm.spaces.modules import Flatten, build_block


class MixedLayer(nn.Module):
    def __init__(self, cases):
        super().__init__()
        self.ops = nn.ModuleList(build_block(c) for c in cases)

    def forward(self, x, weights):
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class SuperNet(nn.Module):
    """FBNet's supernet; with ``widths`` also FBNetV2's channel masks per stage."""

    def __init__(self, table: LatencyTable, classes: int, widths: tuple[float, ...] | None = None):
        super().__init__()
        layout = table.layout
        self.stem = build_block(layout.stem_case())
        self.layers = nn.ModuleList(MixedLayer(row) for row in layout.choice_cases())
        head, pool, _ = layout.head_cases()
        self.head = nn.Sequential(build_block(head), build_block(pool), Flatten(),
                                  nn.Linear(layout.head_channels, classes))
        self.theta = nn.Parameter(torch.zeros(layout.num_layers, NUM_OPS))
        table.check_complete()      # the expected latency mixes every entry: none may be NaN
        unit = 1.0 if min(table.latency([table.extremes()["fastest"]])) >= math.e else 1000.0
        self.unit = unit                                    # 1: milliseconds, 1000: µs
        self.register_buffer("lut", torch.tensor(table.matrix * unit, dtype=torch.float32))
        self.fixed = float(table.fixed_ms * unit)
        self.widths = widths
        if widths:
            self._init_widths(table, widths, unit)

    def _init_widths(self, table: LatencyTable, widths, unit: float) -> None:
        """FBNetV2: one shared weight tensor per layer at full width, a Gumbel choice of width
        per stage applied as a soft channel mask, latency from ``search.widths``."""
        from lutfarm.search.objectives.widths import stage_widths, width_table

        layout = table.layout
        chans = stage_widths(layout, widths)
        n = len(widths)
        self.phi = nn.Parameter(torch.zeros(len(layout.stage_channels), n))
        self.masks = [torch.tensor([[1.0 if c < chans[s, i] else 0.0
                                     for c in range(layout.stage_channels[s])]
                                    for i in range(n)]) for s in range(len(chans))]
        t, head, self.width_counts = width_table(table, widths)
        self.register_buffer("wlut", torch.tensor(np.nan_to_num(t) * unit, dtype=torch.float32))
        self.register_buffer("whead", torch.tensor(head * unit, dtype=torch.float32))
        head_full = table.lut.latency_ms[layout.head_cases()[0].key] * unit
        self.fixed_wo_head = self.fixed - head_full
        slots = layout.layer_slots()
        self.stage_of = [s.stage for s in slots]
        self.first = [s.first for s in slots]

    def weight_parameters(self):
        return [p for n, p in self.named_parameters() if n not in ("theta", "phi")]

    def arch_parameters(self):
        return [self.theta] + ([self.phi] if self.widths else [])

    def _width_latency(self, m, g):
        n = g.shape[1]
        full = torch.zeros(n)
        full[-1] = 1.0
        total = self.fixed_wo_head + (g[-1] * self.whead).sum()
        for i, s in enumerate(self.stage_of):
            t = self.wlut[i]                                         # (ops, a, b)
            if not self.first[i]:
                per_op = (torch.diagonal(t, dim1=1, dim2=2) * g[s]).sum(-1)
            else:
                gin = full if s == 0 else g[s - 1]
                per_op = torch.einsum("oab,a,b->o", t, gin, g[s])
            total = total + (m[i] * per_op).sum()
        return total

    def forward(self, x, tau: float):
        m = F.gumbel_softmax(self.theta.expand(x.shape[0], -1, -1).reshape(-1, NUM_OPS),
                             tau=tau).reshape(x.shape[0], *self.theta.shape).mean(0)
        g = F.gumbel_softmax(self.phi, tau=tau) if self.widths else None
        x = self.stem(x)
        for i, (layer, w) in enumerate(zip(self.layers, m)):
            x = layer(x, w)
            if g is not None:
                s = self.stage_of[i]
                x = x * (g[s] @ self.masks[s].to(x.device))[None, :, None, None]
        if g is not None:
            return self.head(x), self._width_latency(m, g)
        latency = self.fixed + (m * self.lut).sum()
        return self.head(x), latency


def fbnet_loss(ce: torch.Tensor, latency: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """CE · α · (log LAT)^β — the paper's form; α = 0 trains for accuracy alone."""
    if alpha == 0:
        return ce
    return ce * alpha * torch.log(latency) ** beta


@dataclass
class DNASResult:
    arch: list[int]
    latency_ms: float
    samples: list[dict]                 # arch sampled from P_θ with its LUT latency
    theta: list[list[float]]
    epochs: list[dict] = field(default_factory=list)   # per epoch: loss, acc, latency, τ, s
    widths: dict = field(default_factory=dict)         # FBNetV2: chosen width per stage

    def summary(self) -> dict:
        return {"arch": self.arch, "latency_ms": self.latency_ms, "samples": self.samples,
                "epochs": self.epochs, **self.widths}


CHECKPOINT_FORMAT = "lutfarm-dnas-v1"


class DNASCheckpointError(LutfarmError, ValueError):
    """A DNAS checkpoint that belongs to another run."""


@dataclass(frozen=True)
class DNASSettings:
    """FBNet's DNAS hyper-parameters (the paper's, scaled to small data); ``widths`` (e.g.
    (0.5, 0.75, 1.0)) adds FBNetV2 channel search."""

    epochs: int = 10
    warmup_epochs: int = 2           # weights only: the architecture is not trained yet
    batch_size: int = 32
    alpha: float = 0.2               # the latency term: alpha * log(latency) ** beta
    beta: float = 0.6
    tau0: float = 5.0                # Gumbel-softmax temperature, decayed per epoch
    tau_decay: float = 0.045
    lr: float = 0.1                  # weights (SGD)
    theta_lr: float = 0.01           # architecture parameters (Adam)
    max_batches: int | None = None   # cap per epoch (tests, quick looks)
    n_samples: int = 5               # archs sampled from the final distribution
    seed: int = 0
    widths: tuple[float, ...] | None = None


def search(table: LatencyTable, data: Dataset, classes: int,
           settings: DNASSettings | None = None, *, device: str | None = None, log=None,
           on_batch=None, checkpoint: Path | None = None, final_weights: Path | None = None,
           **overrides) -> DNASResult:
    """Train the supernet under ``settings`` (keyword ``overrides`` replace single fields:
    ``search(t, d, 10, epochs=3)``). ``log`` gets each epoch's record, ``on_batch`` each
    batch's running figures; with ``checkpoint`` the run is written there after every epoch
    and resumed from it (the torch random state included, so a resumed run ends where an
    uninterrupted one does). Under torch.distributed (``spawn_search``, torchrun) each rank
    trains on its share of the batches and rank 0 writes; ``final_weights`` (a folder)
    receives every rank's weights."""
    st = dataclass_replace(settings or DNASSettings(), **overrides)
    run = {"lut": table.lut.device + "/" + table.lut.runtime, "classes": classes,
           "epochs": st.epochs, "warmup_epochs": st.warmup_epochs, "batch_size": st.batch_size,
           "alpha": st.alpha, "beta": st.beta, "tau0": st.tau0, "tau_decay": st.tau_decay,
           "lr": st.lr, "theta_lr": st.theta_lr, "max_batches": st.max_batches, "seed": st.seed,
           "widths": list(st.widths) if st.widths else None, "data_size": len(data)}
    with torch_seeded(st.seed):  # repeatable, and the caller's torch RNG is left as it was
        return _search(table, data, classes, st.epochs, st.warmup_epochs, st.batch_size,
                       st.alpha, st.beta, st.tau0, st.tau_decay, st.lr, st.theta_lr,
                       st.max_batches, st.n_samples, st.seed, device, log, st.widths, on_batch,
                       checkpoint, run, final_weights)


def spawn_search(nproc: int, table: LatencyTable, data: Dataset, classes: int,
                 checkpoint: Path, device: str | None = None, **kw) -> DNASResult:
    """``search`` on ``nproc`` ranks (DistributedDataParallel); the result is read back from
    the checkpoint rank 0 wrote."""
    from lutfarm.search.supernets.distributed import spawn

    spawn(_rank_search, (table, data, classes, checkpoint, device, kw), nproc, device)
    return search(table, data, classes, checkpoint=checkpoint, device=device,
                  **{k: v for k, v in kw.items() if k not in ("log", "on_batch", "final_weights")})


def _rank_search(table, data, classes, checkpoint, device, kw) -> None:
    search(table, data, classes, checkpoint=checkpoint, device=device, **kw)


def _load_checkpoint(path: Path | None, run: dict) -> dict | None:
    if path is None or not Path(path).exists():
        return None
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise DNASCheckpointError(f"{path} is not a DNAS checkpoint ({exc}); give another "
                                  f"--checkpoint or delete it") from None
    if not isinstance(d, dict) or d.get("format") != CHECKPOINT_FORMAT:
        raise DNASCheckpointError(f"{path} is not a DNAS checkpoint; give another --checkpoint")
    theirs = {k: v for k, v in d["run"].items() if k != "epochs"}
    mine = {k: v for k, v in run.items() if k != "epochs"}
    if theirs != mine:
        diff = sorted(k for k in mine if theirs.get(k) != mine[k])
        raise DNASCheckpointError(f"{path} is another DNAS run (differs in {', '.join(diff)}); "
                                  f"give another --checkpoint or delete it to start over")
    return d


def _search(table, data, classes, epochs, warmup_epochs, batch_size, alpha, beta, tau0,
            tau_decay, lr, theta_lr, max_batches, n_samples, seed, device, log,
            widths, on_batch, checkpoint, run, final_weights) -> DNASResult:
    from lutfarm.search.supernets.distributed import average_buffers, rank_device, rank_world, wrap

    rank, world = rank_world()
    device = rank_device(device)
    net = SuperNet(table, classes, widths).to(device)
    n_w = int(len(data) * 0.8)
    w_set, t_set = random_split(data, [n_w, len(data) - n_w],
                                generator=torch.Generator().manual_seed(seed))
    samplers = [None, None]
    if world > 1:
        samplers = [torch.utils.data.DistributedSampler(d, world, rank, shuffle=True, seed=seed)
                    for d in (w_set, t_set)]
    w_loader = DataLoader(w_set, batch_size, shuffle=samplers[0] is None, sampler=samplers[0],
                          drop_last=True)
    t_loader = DataLoader(t_set, batch_size, shuffle=samplers[1] is None, sampler=samplers[1],
                          drop_last=True)
    model = wrap(net, device)
    if rank != 0:
        log = on_batch = None
    checkpoint_out = checkpoint if rank == 0 else None
    w_opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=max(epochs, 1))
    t_opt = torch.optim.Adam(net.arch_parameters(), lr=theta_lr, weight_decay=5e-4)
    history, start = [], 0
    saved = _load_checkpoint(checkpoint, run)
    if saved is not None:
        net.load_state_dict(saved["net"])
        w_opt.load_state_dict(saved["w_opt"])
        t_opt.load_state_dict(saved["t_opt"])
        sched.load_state_dict(saved["sched"])
        torch.set_rng_state(saved["rng"])
        history, start = list(saved["history"]), int(saved["epochs_done"])
    steps = len(w_loader) if max_batches is None else min(len(w_loader), max_batches)
    for epoch in range(start, epochs):
        for sampler in samplers:
            if sampler is not None:
                sampler.set_epoch(epoch)
        tau = tau0 * math.exp(-tau_decay * epoch)
        t0, seen, correct, total_loss, total_ce = time.perf_counter(), 0, 0, 0.0, 0.0
        net.train()
        t_iter = iter(t_loader)
        for step, (x, y) in enumerate(w_loader):
            if step >= steps:
                break
            x, y = x.to(device), y.to(device)
            logits, lat = model(x, tau)
            ce = F.cross_entropy(logits, y)
            loss = fbnet_loss(ce, lat, alpha, beta)
            w_opt.zero_grad()
            for p in net.arch_parameters():
                p.grad = None
            loss.backward()
            w_opt.step()
            total_loss += float(loss.detach()) * len(y)
            total_ce += float(ce.detach()) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
            if on_batch:
                on_batch({"epoch": epoch, "step": step + 1, "steps": steps,
                          "loss": total_loss / seen, "ce": total_ce / seen,
                          "latency_ms": float(lat.detach()) / net.unit, "tau": tau,
                          "train_acc": correct / seen})
            if epoch >= warmup_epochs:
                try:
                    xt, yt = next(t_iter)
                except StopIteration:
                    t_iter = iter(t_loader)
                    xt, yt = next(t_iter)
                logits_t, lat_t = model(xt.to(device), tau)
                t_loss = fbnet_loss(F.cross_entropy(logits_t, yt.to(device)), lat_t, alpha, beta)
                t_opt.zero_grad()
                t_loss.backward()
                t_opt.step()
        sched.step()
        average_buffers(net)
        with torch.no_grad():
            m = torch.softmax(net.theta, 1)
            lat = net._width_latency(m, torch.softmax(net.phi, 1)) if net.widths else \
                (m * net.lut).sum() + net.fixed
        expected = float(lat) / net.unit
        argmax = net.theta.detach().argmax(1).cpu().numpy()
        history.append({"epoch": epoch, "tau": tau, "loss": total_loss / max(seen, 1),
                        "ce": total_ce / max(seen, 1), "train_acc": correct / max(seen, 1),
                        "expected_latency_ms": expected,
                        "argmax_arch": "".join(map(str, argmax.tolist())),
                        "argmax_latency_ms": float(table.latency(argmax[None])[0]),
                        "seconds": time.perf_counter() - t0})
        if checkpoint_out is not None:
            state = {"format": CHECKPOINT_FORMAT, "run": run, "epochs_done": epoch + 1,
                     "history": history, "rng": torch.get_rng_state(),
                     "net": {k: v.detach().cpu() for k, v in net.state_dict().items()},
                     "w_opt": w_opt.state_dict(), "t_opt": t_opt.state_dict(),
                     "sched": sched.state_dict()}
            tmp = Path(str(checkpoint_out) + ".tmp")
            torch.save(state, tmp)
            os.replace(tmp, checkpoint_out)
        if log:
            log(history[-1])
    if final_weights is not None:
        Path(final_weights).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in net.state_dict().items()},
                   Path(final_weights) / f"rank{rank}.pt")
    probs = torch.softmax(net.theta.detach(), 1).cpu().numpy()
    arch = probs.argmax(1).tolist()
    rng = np.random.default_rng(seed)
    sampled = [[int(rng.choice(NUM_OPS, p=p / p.sum())) for p in probs] for _ in range(n_samples)]
    if widths:
        from lutfarm.search.objectives.widths import layer_latency, stage_widths
        choice = torch.softmax(net.phi.detach(), 1).argmax(1).tolist()
        t = net.wlut.cpu().numpy() / net.unit
        head = float(net.whead[choice[-1]]) / net.unit
        base = net.fixed_wo_head / net.unit + head

        def price(a):
            return float(base + layer_latency(t, table.layout, a, choice).sum())

        lat = [price(a) for a in [arch] + sampled]
        channels = stage_widths(table.layout, widths)
        width_info = {"width_multipliers": [widths[i] for i in choice],
                      "stage_channels": [int(channels[s, i]) for s, i in enumerate(choice)],
                      "width_latency_sources": net.width_counts}
    else:
        lat, width_info = table.latency(np.array([arch] + sampled)), {}
    return DNASResult(arch, float(lat[0]),
                      [{"arch": a, "latency_ms": float(v)} for a, v in zip(sampled, lat[1:])],
                      net.theta.detach().cpu().tolist(), history, width_info)
