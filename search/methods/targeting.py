"""Hardware targeting: the net found for device A should be faster on A than B's net is.

For each target, minimise its LUT latency subject to the same capacity floor (MACs as the
stand-in for accuracy, so every winner has matched "predicted accuracy"), then price every
winner on every target. FBNet's reference: its iPhone X net ran 1.4x faster on iPhone X than
its Samsung S8 net.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lutfarm.lut import LUT, LatencyTable
from lutfarm.search.methods.evolution import constrained_evolution
from lutfarm.search.objectives.space import fbnet_space, lut_latency, macs


@dataclass
class TargetingMatrix:
    targets: list[str]
    winners: dict[str, list[int]]
    latency: dict[str, dict[str, float]]   # winner's target -> target -> ms
    macs: dict[str, float]
    macs_floor: float

    def own_advantage(self) -> dict[str, float]:
        """For each target: the other winners' best latency on it / its own winner's latency."""
        out = {}
        for t in self.targets:
            others = [self.latency[w][t] for w in self.targets if w != t]
            out[t] = min(others) / self.latency[t][t]
        return out

    def summary(self) -> dict:
        return {"targets": self.targets, "macs_floor_m": self.macs_floor,
                "winners": {t: "".join(map(str, a)) for t, a in self.winners.items()},
                "winner_mmacs": self.macs, "latency_ms": self.latency,
                "own_target_speedup": self.own_advantage()}


def targeting_matrix(luts: dict[str, LUT], macs_floor: float | None = None,
                     generations: int = 300, seed: int = 0) -> TargetingMatrix:
    tables = {name: LatencyTable(lut) for name, lut in luts.items()}
    layout = next(iter(tables.values())).layout
    space = fbnet_space(layout)
    cost = macs(layout)
    metrics = {name: lut_latency(t) for name, t in tables.items()}
    if macs_floor is None:   # the median capacity of random archs: a mid-size network
        macs_floor = float(np.median(cost(space.random(10000, np.random.default_rng(seed)))))
    winners = {}
    for name, metric in metrics.items():
        r = constrained_evolution(space, lambda a, m=metric: -m(a),
                                  lambda a: cost(a) >= macs_floor, generations=generations,
                                  seed=seed)
        winners[name] = r.arch
    latency = {w: {t: float(metrics[t](np.array([arch]))[0]) for t in metrics}
               for w, arch in winners.items()}
    return TargetingMatrix(list(luts), winners, latency,
                           {w: float(cost(np.array([a]))[0]) for w, a in winners.items()},
                           macs_floor)
