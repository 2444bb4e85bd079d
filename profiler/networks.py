"""Measuring whole networks (and block pairs) end to end: what LUT validation and search
verification compare LUT sums against. Stored results are reused like any other case, except
in an interleaved run: there the blocks are timed again around each group of networks, so a
network and the block costs it is compared with come from the same moment of the machine."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lutfarm.profiler.campaign import CampaignSettings, plan_cases, run_farm
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
    arena_bytes: dict[tuple[int, ...], int] = field(default_factory=dict)   # TFLite-Micro's

    def why_failed(self) -> str:
        return next(iter(self.failures.values()), "see the campaign summary")

    def add(self, archs, cases, found: dict, failed: dict[str, str]) -> None:
        """Take the archs' measurements out of ``found`` (case key -> Measurement)."""
        for a, c in zip(archs, cases):
            m = found.get(c.key)
            if m is not None:
                self.networks[tuple(a)] = m.median_ms
                if m.mem_method == "tflm-arena" and m.peak_mem_bytes:
                    self.arena_bytes[tuple(a)] = m.peak_mem_bytes
            elif c.key in failed:
                self.failures[c.key] = failed[c.key]


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
    found = store.latest(target, runtime.key)
    result = MeasuredNetworks({}, {c.key: found[c.key].median_ms for c in extra if c.key in found})
    result.add(archs, cases, found, store.failures(target, runtime.key))
    return result


@dataclass
class InterleavedNetworks(MeasuredNetworks):
    """Networks measured in groups between rounds of block measurements: group k lies
    between ``rounds[k]`` and ``rounds[k + 1]`` (block key -> median ms)."""

    rounds: list[dict[str, float]] = field(default_factory=list)
    group: dict[tuple[int, ...], int] = field(default_factory=dict)

    def blocks_around(self, k: int) -> dict[str, float]:
        """The block costs a network of group ``k`` is compared with: the mean of the rounds
        timed just before and just after it (what a block cost while it ran)."""
        before, after = self.rounds[k], self.rounds[min(k + 1, len(self.rounds) - 1)]
        return {key: (ms + after.get(key, ms)) / 2 for key, ms in before.items()}


def measure_interleaved(store: Store, layout: FBNetLayout, archs: list[tuple[int, ...]],
                        devices: list[Device], runtime: RuntimeConfig,
                        settings: CampaignSettings | None = None, every: int = 10,
                        extra: list = (), target: str | None = None) -> InterleavedNetworks:
    """Block round, ``every`` networks, block round, … , block round: everything measured
    afresh, so slow drift of a shared or throttling machine cancels out of the comparison."""
    if every < 1:
        raise ValueError(f"every must be at least 1 network per block round, got {every}")
    settings = replace(settings or CampaignSettings(), fresh=True)
    target = target or devices[0].kind
    blocks = plan_cases(layout)
    keys = [c.key for c in blocks]
    groups = [list(archs[i:i + every]) for i in range(0, len(archs), every)]
    result = InterleavedNetworks({})

    def measure(cases) -> dict:
        """This round's measurements only: an older one never stands in for a failed one."""
        summaries = run_farm(store, layout, devices, runtime, replace(settings, cases=cases))
        return {m.case_key: m for s in summaries
                for m in store.iter_measurements(campaign_id=s.campaign_id) if m.status == "ok"}

    def block_round() -> None:
        found = measure(blocks)
        result.rounds.append({k: found[k].median_ms for k in keys if k in found})

    block_round()
    for k, group in enumerate(groups):
        cases = [NetworkCase(layout, tuple(a)) for a in group]
        last = k == len(groups) - 1
        found = measure(cases + (list(extra) if last else []))
        result.add(group, cases, found, store.failures(target, runtime.key))
        result.group.update({tuple(a): k for a in group if tuple(a) in result.networks})
        if last:
            result.other = {c.key: found[c.key].median_ms for c in extra if c.key in found}
        block_round()
    return result
