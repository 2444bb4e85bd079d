"""Measuring whole networks (and block pairs) end to end: what LUT validation and search
verification compare LUT sums against. Stored results are reused like any other case, except
in an interleaved run: there a network's blocks are timed again next to it, so the network
and the block costs it is compared with come from the same moment of the machine."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.export.cache import ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.campaign import CampaignSettings, run_farm
from lutfarm.profiler.store import ARENA_METHODS, Store
from lutfarm.spaces.fbnet import FBNetLayout, NetworkCase


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
                if m.mem_method in ARENA_METHODS and m.peak_mem_bytes:
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
    """Networks measured in small groups, each group interleaved with every block its networks
    use: ``rounds[k]`` holds the block medians (key -> ms) timed with group ``k``."""

    rounds: list[dict[str, float]] = field(default_factory=list)
    group: dict[tuple[int, ...], int] = field(default_factory=dict)


def measure_interleaved(store: Store, layout: FBNetLayout, archs: list[tuple[int, ...]],
                        devices: list[Device], runtime: RuntimeConfig,
                        settings: CampaignSettings | None = None, every: int = 1,
                        extra: list = (), target: str | None = None) -> InterleavedNetworks:
    """Each group of ``every`` networks is timed with the blocks it uses, all afresh, sample by
    sample in turn on one device (network, block, block, …, network, …): on a shared or
    throttling machine, whose speed wanders by tens of per cent within seconds, a network and
    the block costs it is compared with then come from the same moments."""
    if every < 1:
        raise ValueError(f"every must be at least 1 network per group, got {every}")
    settings = replace(settings or CampaignSettings(), fresh=True, interleave=True)
    target = target or devices[0].kind
    nets = [NetworkCase(layout, tuple(a)) for a in archs]
    # convert every network up front, in parallel workers: the groups then hit the cache
    (settings.cache or ModelCache()).get_many({c.key: c for c in nets}, runtime.model_format,
                                              runtime.dtype, settings.export_workers)
    result = InterleavedNetworks({})
    for k in range(0, len(archs), every):
        group, cases = archs[k:k + every], nets[k:k + every]
        blocks = list({c.key: c for a in group for c in
                       [layout.overhead_case(), *layout.arch_cases(a)]}.values())
        last = k + every >= len(archs)
        summaries = run_farm(store, layout, devices[:1], runtime, replace(
            settings, cases=cases + blocks + (list(extra) if last else [])))
        # this campaign's measurements only: an older one never stands in for a failed one
        found = {m.case_key: m for s in summaries
                 for m in store.iter_measurements(campaign_id=s.campaign_id) if m.status == "ok"}
        result.rounds.append({c.key: found[c.key].median_ms for c in blocks if c.key in found})
        result.add(group, cases, found, store.failures(target, runtime.key))
        result.group.update({tuple(a): len(result.rounds) - 1 for a in group
                             if tuple(a) in result.networks})
        if last:
            result.other = {c.key: found[c.key].median_ms for c in extra if c.key in found}
    return result


def measure_pairs(store: Store, layout: FBNetLayout, pairs: list, devices: list[Device],
                  runtime: RuntimeConfig, settings: CampaignSettings | None = None,
                  every: int = 16) -> list[dict[str, float]]:
    """Adjacent block pairs timed in groups of ``every``, each group sample by sample in turn
    with both blocks of its pairs and the empty model, all afresh: a pair's in-context delta is
    a small difference of three times, which only means something if they share a moment.
    Returns each group's medians (case key -> ms)."""
    if every < 1:
        raise ValueError(f"every must be at least 1 pair per group, got {every}")
    settings = replace(settings or CampaignSettings(), fresh=True, interleave=True)
    (settings.cache or ModelCache()).get_many({p.key: p for p in pairs}, runtime.model_format,
                                              runtime.dtype, settings.export_workers)
    rounds = []
    for k in range(0, len(pairs), every):
        group = pairs[k:k + every]
        singles = {c.key: c for p in group for c in (p.first, p.second)}
        cases = [layout.overhead_case(), *group, *singles.values()]
        summaries = run_farm(store, layout, devices[:1], runtime, replace(settings, cases=cases))
        found = {m.case_key: m for s in summaries
                 for m in store.iter_measurements(campaign_id=s.campaign_id) if m.status == "ok"}
        rounds.append({c.key: found[c.key].median_ms for c in cases if c.key in found})
    return rounds
