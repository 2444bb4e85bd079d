"""Accuracy predictors for search: what matters is the order they put architectures in.

``MLPPredictor`` is OFA's: 3 hidden layers of 400 ReLU units on the one-hot encoding, plus a
constant base value (the training mean). Training losses: ``mse``, ``l1`` (OFA's), ``huber``, or ReNAS's
pairwise ranking loss log(1 + exp(−(ŷi − ŷj)·sign(yi − yj))). ``fbnetv3`` follows FBNetV3:
pretrain the encoder on free statistics of many unlabelled archs (FLOPs, params, latency)
through a proxy head, then fit accuracy with a Huber loss, the encoder frozen for the first
half of the epochs. Parameters save to JSON (no pickles: nn-Meter's broke with scikit-learn 1.0).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lutfarm.predictors.persistence import PredictorError, check_identity, read_model
from lutfarm.seeding import torch_seeded

FORMAT = "lutfarm-accuracy-mlp-v1"
LOSSES = ("mse", "l1", "huber", "pairwise")


def _mlp(inputs: int, hidden: int, layers: int) -> nn.Sequential:
    mods, width = [], inputs
    for _ in range(layers):
        mods += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    return nn.Sequential(*mods)


def pairwise_loss(pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """ReNAS: every ordered pair whose predicted order disagrees with the truth costs."""
    dp = pred[:, None] - pred[None, :]
    sign = torch.sign(y[:, None] - y[None, :])
    mask = sign != 0
    return torch.nn.functional.softplus(-dp * sign)[mask].mean()


@dataclass
class MLPPredictor:
    inputs: int
    hidden: int = 400
    layers: int = 3
    seed: int = 0
    meta: dict = field(default_factory=dict)      # what it was trained on, its metrics

    def __post_init__(self):
        with torch_seeded(self.seed):
            self.encoder = _mlp(self.inputs, self.hidden, self.layers)
            self.head = nn.Linear(self.hidden, 1)
        self.base = 0.0
        self.scale = 1.0

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x)).squeeze(-1)

    def pretrain(self, x: np.ndarray, stats: np.ndarray, epochs: int = 200,
                 lr: float = 1e-3) -> MLPPredictor:
        """FBNetV3's first step: learn the encoder from free statistics (FLOPs, params, …)."""
        s = np.asarray(stats, float)
        s = (s - s.mean(0)) / (s.std(0) + 1e-12)
        with torch_seeded(self.seed + 1):
            proxy = nn.Linear(self.hidden, s.shape[1])
        gen = torch.Generator().manual_seed(self.seed + 2)
        xt, st = torch.tensor(x, dtype=torch.float32), torch.tensor(s, dtype=torch.float32)
        opt = torch.optim.Adam([*self.encoder.parameters(), *proxy.parameters()], lr=lr)
        for _ in range(epochs):
            for idx in torch.randperm(len(xt), generator=gen).split(256):
                loss = nn.functional.mse_loss(proxy(self.encoder(xt[idx])), st[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        return self

    def fit(self, x: np.ndarray, y: np.ndarray, loss: str = "mse", epochs: int = 300,
            lr: float = 1e-3, freeze_epochs: int = 0, batch: int = 128) -> MLPPredictor:
        if loss not in LOSSES:
            raise PredictorError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")
        y = np.asarray(y, float)
        self.base, self.scale = float(y.mean()), float(y.std() + 1e-12)
        xt = torch.tensor(x, dtype=torch.float32)
        yt = torch.tensor((y - self.base) / self.scale, dtype=torch.float32)
        params = [*self.encoder.parameters(), *self.head.parameters()]
        opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-5)
        gen = torch.Generator().manual_seed(self.seed + 3)
        for epoch in range(epochs):
            train_encoder = epoch >= freeze_epochs
            for p in self.encoder.parameters():
                p.requires_grad_(train_encoder)
            for idx in torch.randperm(len(xt), generator=gen).split(batch):
                pred = self._forward(xt[idx])
                if loss == "mse":
                    value = nn.functional.mse_loss(pred, yt[idx])
                elif loss == "l1":       # OFA's accuracy predictor
                    value = nn.functional.l1_loss(pred, yt[idx])
                elif loss == "huber":
                    value = nn.functional.huber_loss(pred, yt[idx], delta=1.0)
                else:
                    value = pairwise_loss(pred, yt[idx]) if len(idx) > 1 else pred.sum() * 0
                opt.zero_grad()
                value.backward()
                opt.step()
        for p in self.encoder.parameters():
            p.requires_grad_(True)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = self._forward(torch.tensor(x, dtype=torch.float32)).numpy()
        return out * self.scale + self.base

    def save(self, path: str | Path) -> None:
        state = {k: v.tolist() for k, v in {**{f"encoder.{k}": v for k, v in
                                                self.encoder.state_dict().items()},
                                             **{f"head.{k}": v for k, v in
                                                self.head.state_dict().items()}}.items()}
        Path(path).write_text(json.dumps({
            "format": FORMAT, "inputs": self.inputs, "hidden": self.hidden,
            "layers": self.layers, "base": self.base, "scale": self.scale,
            "meta": self.meta, "state": state}))

    @classmethod
    def load(cls, path: str | Path, space: str | None = None) -> MLPPredictor:
        data = read_model(path, FORMAT, "accuracy predictor")
        check_identity(path, data["meta"], space=space)
        p = cls(data["inputs"], data["hidden"], data["layers"], meta=data["meta"])
        p.base, p.scale = data["base"], data["scale"]
        enc = {k[8:]: torch.tensor(v) for k, v in data["state"].items() if k.startswith("encoder.")}
        head = {k[5:]: torch.tensor(v) for k, v in data["state"].items() if k.startswith("head.")}
        p.encoder.load_state_dict(enc)
        p.head.load_state_dict(head)
        return p
