"""Is a search's winner really more accurate than a random feasible subnet?

A search maximises what its accuracy source (a supernet, or a predictor fitted to one) says.
This trains the winner and K random subnets that meet the same limits stand-alone, with the
ranking benchmark's recipe (``ranking.Recipe``) and the same held-out images, each with
``seeds`` seeds, and reports measured beside predicted accuracy. The seed noise (the pooled
standard deviation of one subnet's accuracy across seeds) says whether the winner's margin over
the random subnets' mean is more than luck.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from lutfarm.search.supernets.ranking import Recipe, kendall, train_standalone


@dataclass
class CheckedSubnet:
    role: str                 # "winner" or "random"
    arch: str                 # as the layout writes it
    predicted: float          # what the accuracy source said (%)
    measured: list[float]     # stand-alone held-out accuracy (%) per seed

    @property
    def mean(self) -> float:
        return float(np.mean(self.measured))


@dataclass
class AccuracyCheck:
    data: str
    recipe: dict
    seeds: int
    torch_device: str
    subnets: list[CheckedSubnet] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def winner(self) -> CheckedSubnet:
        return next(s for s in self.subnets if s.role == "winner")

    @property
    def randoms(self) -> list[CheckedSubnet]:
        return [s for s in self.subnets if s.role == "random"]

    def seed_noise(self) -> float:
        """Pooled standard deviation of one subnet's accuracy across seeds (NaN with one)."""
        if self.seeds < 2:
            return float("nan")
        return float(np.sqrt(np.mean([np.var(s.measured, ddof=1) for s in self.subnets])))

    def summary(self) -> dict:
        random_mean = float(np.mean([s.mean for s in self.randoms])) if self.randoms else \
            float("nan")
        margin = self.winner.mean - random_mean
        noise = self.seed_noise()
        both = [(s.predicted, s.mean) for s in self.subnets]
        return {"winner_measured": self.winner.mean, "winner_predicted": self.winner.predicted,
                "random_measured_mean": random_mean,
                "random_predicted_mean": float(np.mean([s.predicted for s in self.randoms]))
                if self.randoms else float("nan"),
                "random_measured_best": max((s.mean for s in self.randoms), default=float("nan")),
                "margin": margin, "seed_noise": noise,
                "winner_beats_random": bool(margin > noise) if noise == noise else None,
                "kendall_predicted_vs_measured": kendall(*zip(*both)) if len(both) > 2 else
                float("nan")}

    def to_dict(self) -> dict:
        """JSON-ready: a figure that cannot exist (the seed noise of one seed) is None."""
        figures = {k: (None if isinstance(v, float) and v != v else v)
                   for k, v in self.summary().items()}
        return {"data": self.data, "recipe": self.recipe, "seeds": self.seeds,
                "torch_device": self.torch_device, "seconds": self.seconds,
                "subnets": [dict(asdict(s), mean=s.mean) for s in self.subnets], **figures}


def check_accuracy(layout, winner, randoms: list, predict: Callable[[list], np.ndarray],
                   train_set, held_out, recipe: Recipe, seeds: int = 2, device: str = "cpu",
                   data: str = "", on_trained: Callable[[int, int], None] | None = None
                   ) -> AccuracyCheck:
    """Train ``winner`` and each of ``randoms`` (layout archs) ``seeds`` times; ``predict``
    gives the accuracy source's value for a list of archs."""
    archs = [winner, *randoms]
    predicted = np.asarray(predict(archs), float)
    check = AccuracyCheck(data, asdict(recipe), seeds, device)
    total = len(archs) * seeds
    t0 = time.perf_counter()
    for k, (arch, value) in enumerate(zip(archs, predicted)):
        measured = []
        for seed in range(seeds):
            measured.append(train_standalone(layout, arch, train_set, held_out, recipe, device,
                                             seed))
            if on_trained:
                on_trained(k * seeds + seed + 1, total)
        check.subnets.append(CheckedSubnet("winner" if k == 0 else "random",
                                           layout.arch_to_text(arch), float(value), measured))
    check.seconds = time.perf_counter() - t0
    return check
