"""Measuring whole networks (and block pairs) end to end: what LUT validation and search
verification compare LUT sums against. Stored results are reused like any other case."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lutfarm.profiler.campaign import CampaignSettings, run_farm
from lutfarm.profiler.devices import Device
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.store import Store
from lutfarm.spaces import NetworkCase
from lutfarm.spaces.fbnet import FBNetLayout


@dataclass
class MeasuredNetworks:
    """Median milliseconds of each measured arch (and of the extra cases, by key)."""

    networks: dict[tuple[int, ...], float]
    other: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)   # case key -> why, for the rest

    def why_failed(self) -> str:
        return next(iter(self.failures.values()), "see the campaign summary")


def measure_networks(store: Store, layout: FBNetLayout, archs: list[tuple[int, ...]],
                     devices: list[Device], runtime: RuntimeConfig,
                     settings: CampaignSettings | None = None, extra: list = (),
                     target: str | None = None) -> MeasuredNetworks:
    """Measure ``archs`` as whole networks (plus ``extra`` cases, e.g. fusion pairs) on
    ``devices`` of one kind; what the store already has for ``target`` (default: their
    kind) is not measured again."""
    cases = [NetworkCase(layout, tuple(a)) for a in archs]
    settings = replace(settings or CampaignSettings(), cases=cases + list(extra))
    run_farm(store, layout, devices, runtime, settings)
    target = target or devices[0].kind
    medians = {k: m.median_ms for k, m in store.latest(target, runtime.key).items()}
    failed = store.failures(target, runtime.key)
    return MeasuredNetworks(
        {tuple(a): medians[c.key] for a, c in zip(archs, cases) if c.key in medians},
        {c.key: medians[c.key] for c in extra if c.key in medians},
        {c.key: failed[c.key] for c in cases if c.key in failed and c.key not in medians})
