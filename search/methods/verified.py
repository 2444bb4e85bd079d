"""A verified search: search, measure the winner end to end, teach the latency model what it
got wrong, search again, until a winner holds its budget without leaving much of it unused.

The measured networks also answer for themselves from then on: a winner measured over budget
is out of every later round, whatever the model predicts for it.

A machine whose speed wanders (a shared VM, a throttling board) would turn every measurement
into a verdict on the moment instead of on the model. So each winner is measured with its
blocks (sample by sample in turn where the runtime allows): ``speed`` = their time now / their
time in the LUT, and the loop learns from, and judges by, the latency at the LUT's speed
(measured / speed). The raw measurement is reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from lutfarm.search.methods.evolution import SearchResult
from lutfarm.search.objectives.space import GeneSpace

USED_ENOUGH = 0.95     # a winner measured at ≥ 95 % of the budget ends the loop


@dataclass
class VerifiedRound:
    round: int
    arch: list[int]
    objective: float
    predicted_ms: float
    measured_ms: float              # what the device took, at the moment it was measured
    budget_ms: float
    speed: float = 1.0              # the arch's blocks then / in the LUT (1.3: 30 % slower)

    @property
    def at_lut_speed_ms(self) -> float:
        return self.measured_ms / self.speed

    @property
    def within_budget(self) -> bool:
        return self.measured_ms <= self.budget_ms

    @property
    def holds(self) -> bool:
        """Within budget at the LUT's speed: the model's promise kept."""
        return self.at_lut_speed_ms <= self.budget_ms

    def as_dict(self) -> dict:
        return {**asdict(self), "arch_str": "".join(map(str, self.arch)),
                "within_budget": self.within_budget, "at_lut_speed_ms": self.at_lut_speed_ms,
                "holds_at_lut_speed": self.holds,
                "measured_over_budget": self.measured_ms / self.budget_ms,
                "at_lut_speed_over_budget": self.at_lut_speed_ms / self.budget_ms,
                "predicted_over_measured": self.predicted_ms / self.at_lut_speed_ms}


class MeasuredOverride:
    """A latency metric in which every measured arch answers with its measurement."""

    def __init__(self, metric, space: GeneSpace):
        self.metric, self.space = metric, space
        self.name = getattr(metric, "name", "")
        self.known: dict[int, float] = {}

    def __call__(self, archs) -> np.ndarray:
        a = np.asarray(archs)
        out = np.array(self.metric(a), float)
        if self.known:
            codes = self.space.encode(a)
            hit = np.isin(codes, list(self.known))
            out[hit] = [self.known[int(c)] for c in codes[hit]]
        return out

    def learn(self, arch, measured_ms: float) -> None:
        self.known[int(self.space.encode(np.array([arch]))[0])] = measured_ms
        if hasattr(self.metric, "learn"):          # the corrected model refits
            self.metric.learn(arch, measured_ms)


def verified_search(search: Callable[[Callable], SearchResult], latency, space: GeneSpace,
                    measure: Callable[[list[int]], tuple[float, float]], budget_ms: float,
                    rounds: int,
                    report: Callable[[VerifiedRound], None] = lambda r: None
                    ) -> tuple[VerifiedRound, list[VerifiedRound]]:
    """Up to ``rounds`` searches; returns the answer (the best-objective winner that holds its
    budget, else the one that came closest) and every round. ``search(latency)`` runs one
    search under the given latency metric; ``measure(arch)`` times it end to end: (ms, speed).
    A round ends the loop when its winner holds using ≥ 95 % of the budget, or when the search
    returns a winner measured before (what it learned no longer changes its answer)."""
    metric = MeasuredOverride(latency, space)
    history: list[VerifiedRound] = []
    for k in range(1, rounds + 1):
        r = search(metric)
        again = [h for h in history if h.arch == list(r.arch)]   # nothing left to learn here
        predicted = float(metric(np.array([r.arch]))[0])
        ms, speed = (again[0].measured_ms, again[0].speed) if again else measure(r.arch)
        done = VerifiedRound(k, list(r.arch), float(r.objective), predicted, float(ms),
                             budget_ms, float(speed))
        history.append(done)
        report(done)
        if again or (done.holds and done.at_lut_speed_ms >= USED_ENOUGH * budget_ms):
            break
        metric.learn(done.arch, done.at_lut_speed_ms)
    held = [h for h in history if h.holds]
    if held:
        return max(held, key=lambda h: h.objective), history
    return min(history, key=lambda h: h.at_lut_speed_ms / h.budget_ms), history
