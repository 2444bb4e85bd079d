"""A campaign: measure every missing case of a layout on one device and runtime configuration.

cases -> (skip what the store already has) -> export (cached) -> one agent job -> each result
committed to the store as it arrives. Stopping at any point loses nothing; running the same
campaign again measures only what is still missing, failures included.
"""

from __future__ import annotations

import fnmatch
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.timing import TimingSettings
from profiler.devices import Device
from profiler.export import ModelCache
from profiler.runtime_config import RuntimeConfig
from profiler.store import Measurement, Store
from profiler.transport import AgentDied, transport_for
from spaces.cases import BlockCase
from spaces.fbnet import FBNetLayout


class CampaignError(RuntimeError):
    """The campaign could not run at all (e.g. the device lacks the runtime)."""


@dataclass
class CampaignSummary:
    campaign_id: int
    device: str
    runtime: str
    planned: int = 0
    measured: int = 0
    skipped: int = 0                    # already in the store
    failed: list[tuple[str, str]] = field(default_factory=list)   # (case key, error)
    exported: int = 0
    export_s: float = 0.0
    wall_s: float = 0.0
    sampling_s: float = 0.0             # sum of timed-sample durations: the physical floor
    cvs: list[float] = field(default_factory=list)
    rel_cis: list[float] = field(default_factory=list)
    not_converged: int = 0
    interrupted: bool = False

    def as_dict(self) -> dict:
        q = _quartiles
        return {"campaign_id": self.campaign_id, "device": self.device, "runtime": self.runtime,
                "planned": self.planned, "measured": self.measured, "skipped": self.skipped,
                "failed": len(self.failed), "failures": dict(self.failed),
                "exported": self.exported, "export_s": self.export_s, "wall_s": self.wall_s,
                "sampling_s": self.sampling_s, "cv_quartiles": q(self.cvs),
                "rel_ci_quartiles": q(self.rel_cis), "not_converged": self.not_converged,
                "interrupted": self.interrupted}


def _quartiles(values: list[float]) -> list[float] | None:
    if len(values) < 2:
        return list(values) or None
    return [min(values), *statistics.quantiles(values, n=4), max(values)]


def plan_cases(layout: FBNetLayout, only: str | None = None) -> list[BlockCase]:
    """The empty model first (per-call overhead), then every unique case of the layout."""
    cases = [layout.overhead_case(), *layout.unique_cases()]
    if only:
        patterns = [p.strip() for p in only.split(",") if p.strip()]
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c.key, p) for p in patterns)]
    return cases


class Progress:
    """Callbacks a front end overrides; the API itself prints nothing."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, key: str, status: str) -> None: ...


def run_campaign(store: Store, layout: FBNetLayout, device: Device, runtime: RuntimeConfig,
                 timing: TimingSettings | None = None, cache: ModelCache | None = None,
                 only: str | None = None, progress: Progress | None = None,
                 on_transport: Callable[[object], None] | None = None) -> CampaignSummary:
    """Measure what is missing; returns the summary (also stored with the campaign)."""
    t_start = time.perf_counter()
    timing = timing or TimingSettings()
    cache = cache or ModelCache()
    progress = progress or Progress()
    cases = plan_cases(layout, only)
    done = store.measured_keys(device.name, runtime.key)
    todo = [c for c in cases if c.key not in done]
    cid = store.start_campaign(device.name, runtime.key, layout.space, layout.name,
                               layout.classes, {"timing": timing.to_dict(), "only": only,
                                                "runtime": runtime.agent_settings()})
    summary = CampaignSummary(cid, device.name, runtime.key, planned=len(cases),
                              skipped=len(cases) - len(todo))
    try:
        if todo:
            _measure(store, todo, device, runtime, timing, cache, progress, summary,
                     on_transport)
    except KeyboardInterrupt:
        summary.interrupted = True
        raise
    finally:
        summary.exported, summary.export_s = cache.stats.exported, cache.stats.seconds
        summary.wall_s = time.perf_counter() - t_start
        store.finish_campaign(cid, summary.as_dict())
    return summary


def _measure(store: Store, todo: list[BlockCase], device: Device, runtime: RuntimeConfig,
             timing: TimingSettings, cache: ModelCache, progress: Progress,
             summary: CampaignSummary, on_transport) -> None:
    progress.phase("export", len(todo))
    models = {}
    for case in todo:
        models[case.key] = cache.get(case, runtime.model_format, runtime.dtype)
        progress.advance(case.key, "exported")

    transport = transport_for(device)
    if on_transport:
        on_transport(transport)
    job = {"job_id": f"c{summary.campaign_id}-{device.name}",
           "runtime": runtime.agent_settings(device.affinity),
           "timing": timing.to_dict(),
           "cases": [{"key": k, "model": transport.model_path(m.path), "sha256": m.sha256}
                     for k, m in models.items()]}
    progress.phase("measure", len(todo))
    pending = dict.fromkeys(models)
    context_id = None
    try:
        for event in transport.run_job(job):
            kind = event["event"]
            if kind == "fatal":
                raise CampaignError(f"device {device.name}: {event['error']}")
            if kind == "hello":
                context_id = store.add_context(device.name, event["context"])
            elif kind == "result" and event["key"] in pending:
                m = Measurement.from_event(event, device.name, runtime.key,
                                           campaign_id=summary.campaign_id, context_id=context_id,
                                           model_sha256=models[event["key"]].sha256)
                store.add(m)
                del pending[event["key"]]
                _count(summary, m)
                progress.advance(m.case_key, m.status)
    except AgentDied as exc:
        for key in pending:
            m = Measurement(device.name, runtime.key, key, "failed", error=str(exc),
                            campaign_id=summary.campaign_id, context_id=context_id,
                            created=time.time())
            store.add(m)
            _count(summary, m)
            progress.advance(key, "failed")
    finally:
        transport.stop()


def _count(summary: CampaignSummary, m: Measurement) -> None:
    if m.status == "ok":
        summary.measured += 1
        summary.sampling_s += m.sampling_s or 0.0
        summary.cvs.append(m.cv)
        summary.rel_cis.append(m.rel_ci)
        summary.not_converged += not m.converged
    else:
        summary.failed.append((m.case_key, m.error or "unknown error"))
