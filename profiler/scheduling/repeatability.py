"""Is a LUT repeatable? The same cases measured twice: per-case difference and rank agreement.

``run_repeatability`` measures the layout again (a fresh campaign, same device and runtime
configuration), compares each case's two newest medians, and re-measures once more the cases
that look unreliable (CV above ``max_cv`` or a difference above ``max_diff``), so the LUT that
is exported afterwards uses the newest, calmer measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from lutfarm.profiler.scheduling.campaign import (
    CampaignError,
    CampaignSettings,
    plan_cases,
    run_farm,
)


@dataclass
class Repeatability:
    cases: int
    median_rel_diff: float
    p90_rel_diff: float
    spearman: float
    kendall: float
    flagged: list[str] = field(default_factory=list)   # high CV or large difference
    remeasured: int = 0

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def compare_runs(store, target: str, runtime: str, keys: list[str], max_cv: float = 0.10,
                 max_diff: float = 0.10) -> Repeatability:
    """The two newest good measurements of each case in ``keys``."""
    hist = store.history(target, runtime, keys, depth=2)
    pairs = [(k, h[0], h[1]) for k, h in hist.items() if len(h) == 2]
    if len(pairs) < 3:
        raise CampaignError(f"need at least 3 cases measured twice on {target}, have "
                            f"{len(pairs)}")
    new = np.array([a.median_ms for _, a, _ in pairs])
    old = np.array([b.median_ms for _, _, b in pairs])
    rel = np.abs(new - old) / old
    flagged = [k for (k, a, b), d in zip(pairs, rel)
               if d > max_diff or (a.cv or 0) > max_cv or (b.cv or 0) > max_cv]
    return Repeatability(len(pairs), float(np.median(rel)), float(np.quantile(rel, 0.9)),
                         float(stats.spearmanr(new, old).statistic),
                         float(stats.kendalltau(new, old).statistic), flagged)


def run_repeatability(store, layout, devices, runtime,
                      settings: CampaignSettings | None = None) -> Repeatability:
    """Measure ``settings.only`` of the layout (default: all of it) again, compare, re-measure
    the unreliable cases once more, store the report."""
    settings = settings or CampaignSettings()
    cases = plan_cases(layout, settings.only)
    target = devices[0].kind
    runtime = devices[0].resolve(runtime)      # the key its results are stored under (an
    #                                            MCU's kernels, a device's own thread count)
    run_farm(store, layout, devices, runtime, replace(settings, cases=cases, fresh=True))
    keys = [c.key for c in cases]
    result = compare_runs(store, target, runtime.key, keys)
    if result.flagged:   # one more, later look at the unreliable ones
        again = [c for c in cases if c.key in set(result.flagged)]
        run_farm(store, layout, devices, runtime, replace(settings, cases=again, fresh=True))
        result.remeasured = len(again)
    store.add_report(target, runtime.key, "repeatability", result.as_dict())
    return result
