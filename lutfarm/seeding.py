"""Reproducible randomness without process-wide seeding: ``torch_seeded`` runs a block with
torch's global generators seeded and gives them back unchanged afterwards, so a predictor or
a search is repeatable and the caller's own random streams are left alone."""

from __future__ import annotations

import contextlib


@contextlib.contextmanager
def torch_seeded(seed: int):
    import torch

    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
