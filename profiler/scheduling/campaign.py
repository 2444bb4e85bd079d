"""A campaign: measure every missing case of a layout on devices, one runtime configuration.

cases -> (skip what the store already has) -> export (cached) -> per device kind, one shared
work queue (``work_queue``) served by every device of that kind (``device_worker``) -> each
result committed to the store as it arrives (``recorder``). One job at a time per device,
under the board's lock. A device that fails (lost connection, agent crash) is retried with
backoff and its unfinished cases go back to the queue for its siblings; a case that hangs is
failed after the per-case timeout; a case the agent crashes on twice is failed. Stopping at
any point loses nothing; the same campaign run again measures only what is still missing,
failures included.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from lutfarm.profiler.devices.firmware import with_firmware
from lutfarm.profiler.devices.lock import owner_info
from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.devices.timeline import CONTROLLER, summarise
from lutfarm.profiler.export.cache import ExportedModel, ExportError, ModelCache
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.device_worker import (
    CampaignError,
    DeviceWorker,
    FarmSettings,
    KindWork,
    start_workers,
)
from lutfarm.profiler.scheduling.recorder import CampaignSummary, Progress, Recorder
from lutfarm.profiler.scheduling.work_queue import WorkQueue
from lutfarm.profiler.store import Store, StoreError
from lutfarm.profiler.store.queue import StoreQueue
from lutfarm.spaces import parse_case_key
from lutfarm.spaces.cases import BlockCase, ModelFileCase
from lutfarm.spaces.fbnet import FBNetLayout
from lutfarm_agent.timing import TimingSettings

__all__ = ["CampaignError", "CampaignSettings", "CampaignSummary", "FarmSettings", "Progress",
           "plan_cases", "run_campaign", "run_farm"]
log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class CampaignSettings:
    """Everything about a campaign except what it measures (store, layout, devices, runtime).

    ``cases`` replaces the layout's own cases (e.g. whole networks for validation); ``fresh``
    measures them again even where the store has them (repeatability); ``interleave`` sends
    them to a device as one job that times them sample by sample in turn (a network and its
    blocks, compared on a machine whose speed wanders)."""

    timing: TimingSettings | None = None
    cache: ModelCache | None = None        # None: the default cache directory
    only: str | None = None                # comma-separated key globs
    progress: Progress | None = None
    on_transport: Callable[[object], None] | None = None   # tests and front ends watch agents
    farm: FarmSettings | None = None
    cases: list | None = None
    fresh: bool = False
    export_workers: int | None = None      # TFLite export processes (None: one per CPU)
    priority: int = 0                      # shared store: higher-priority cases are taken first
    owner: str | None = None               # who asked (default user@host)
    interleave: bool = False               # one job per device, its cases timed in turn
    models: dict | None = None             # key -> ExportedModel: ready-made files, not exported
    case_options: dict | None = None       # key -> what the agent gets with that case (shapes, ops)
    notes: dict | None = None              # added to the campaign's stored settings
    stop: threading.Event | None = None    # set from another thread: stops as Ctrl-C does

    def __post_init__(self) -> None:   # None means "the default", as everywhere in the API
        self.timing = self.timing or TimingSettings()
        self.progress = self.progress or Progress()
        self.farm = self.farm or FarmSettings()


def plan_cases(layout: FBNetLayout, only: str | None = None,
               widths: tuple[float, ...] | None = None) -> list[BlockCase]:
    """The empty model first (per-call overhead), then every unique case of the layout, then
    (with ``widths``) the blocks of every FBNetV2 stage-width variant."""
    cases = [layout.overhead_case(), *layout.unique_cases()]
    if widths:
        have = {c.key for c in cases}
        cases += [c for c in layout.width_cases(widths) if c.key not in have]
    if only:
        patterns = [p.strip() for p in only.split(",") if p.strip()]
        matched = [c for c in cases if any(fnmatch.fnmatchcase(c.key, p) for p in patterns)]
        if not matched:
            raise CampaignError(f"--only {only!r} matches none of the layout's {len(cases)} "
                                f"cases (keys look like {cases[-1].key})")
        cases = matched
    return cases


def run_campaign(store: Store, layout: FBNetLayout, device: Device | list[Device],
                 runtime: RuntimeConfig, settings: CampaignSettings | None = None
                 ) -> CampaignSummary:
    """Measure what is missing on one device, or on several devices of one kind."""
    devices = device if isinstance(device, list) else [device]
    kinds = {d.kind for d in devices}
    if len(kinds) != 1:
        raise CampaignError(f"run_campaign takes devices of one kind, got {sorted(kinds)}; "
                            f"use run_farm")
    return run_farm(store, layout, devices, runtime, settings)[0]


def run_farm(store: Store, layout: FBNetLayout | None, devices: list[Device],
             runtime: RuntimeConfig, settings: CampaignSettings | None = None
             ) -> list[CampaignSummary]:
    """One campaign per device kind (and per runtime configuration its devices resolve to: a
    board with its own ``threads`` measures under its own key), all at once; one summary each
    (inventory order). ``layout`` None: ``settings.cases`` are not a space's (model files)."""
    s = settings or CampaignSettings()
    if layout is None and s.cases is None:
        raise CampaignError("a campaign without a layout measures the cases it is given")
    devices = [with_firmware(d, log=log.info) for d in devices]   # emulated MCUs: build first
    cache = s.cache or ModelCache()
    cases = s.cases if s.cases is not None else plan_cases(layout, s.only)
    groups: dict[tuple[str, RuntimeConfig], list[Device]] = {}
    for d in devices:
        groups.setdefault((d.kind, d.resolve(runtime)), []).append(d)
    kinds = [_plan_kind(store, layout, kind, devs, resolved, cases, s)
             for (kind, resolved), devs in groups.items()]
    workers: list[DeviceWorker] = []
    threads = []
    t0 = time.perf_counter()
    try:
        todo = {key: case for work, planned in kinds for key, case in planned.items()}
        for work, _ in kinds:
            todo.update({k: parse_case_key(k) for k in work.references})
        ready = s.models or {}
        exported_at = time.time()
        models = _export({k: c for k, c in todo.items() if k not in ready}, cache, runtime,
                         kinds, s.progress, s.export_workers)
        for work, _ in kinds:
            work.timeline.add(CONTROLLER, "export", exported_at, models=len(models))
        models.update({k: m for k, m in ready.items() if k in todo})
        s.progress.phase("measure", sum(len(planned) for _, planned in kinds))
        for (work, planned), devs in zip(kinds, groups.values()):
            work.models = models
            if planned:
                workers += [DeviceWorker(d, work, s.on_transport) for d in devs]
        for work, planned in kinds:
            summary = work.recorder.summary
            log.info("campaign %d: %s on %s, %d cases to measure (%d already stored), %d "
                     "device(s)", summary.campaign_id, work.runtime.key, work.kind, len(planned),
                     summary.skipped, work.devices)
        threads = start_workers(workers)
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
            if s.stop is not None and s.stop.is_set():   # stopped from another thread
                raise KeyboardInterrupt
        for work, _ in kinds:
            _fail_leftovers(work)
    except KeyboardInterrupt:
        for work, _ in kinds:
            work.queue.stop()
            work.recorder.summary.interrupted = True
        for w in workers:
            w.stop()
        deadline = time.monotonic() + 30   # let every device thread release its lock
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for w in workers:                  # and release any a slow thread still holds
            w.release_lock()
        raise
    finally:
        unwritten = []
        for work, _ in kinds:
            work.queue.close()
            left = work.recorder.flush()
            if left is not None:
                unwritten.append(left)
            summary = work.recorder.summary
            summary.exported, summary.export_s = cache.stats.exported, cache.stats.seconds
            summary.wall_s = time.perf_counter() - t0
            spans = work.timeline.spans()
            board_time = summarise(spans)
            summary.efficiency, summary.phase_shares = board_time.efficiency, board_time.share
            try:
                store.retrying(lambda c=summary.campaign_id, sp=spans: store.add_spans(c, sp),
                               what="the campaign's timeline")
            except StoreError as exc:
                log.warning("campaign %d: timeline not stored: %s", summary.campaign_id, exc)
            try:
                store.retrying(lambda s=summary: store.finish_campaign(s.campaign_id, s.as_dict()),
                               what="the campaign's summary")
            except StoreError as exc:
                log.warning("campaign %d: summary not stored: %s", summary.campaign_id, exc)
            log.info("campaign %d: %d measured, %d failed, %.1f s", summary.campaign_id,
                     summary.measured, len(summary.failed), summary.wall_s)
    if unwritten:
        raise CampaignError(
            f"the store {store.location} stayed unreachable: {sum(map(len, unwritten))} results "
            f"are kept in {', '.join(str(j.path) for j in unwritten)}; when it is back, run "
            f"lutfarm db replay {unwritten[0].path} --db URL")
    fatal = [w.fatal for w in workers if w.fatal]
    if fatal:
        raise CampaignError(fatal[0])
    return [work.recorder.summary for work, _ in kinds]


def _plan_kind(store: Store, layout: FBNetLayout | None, kind: str, devices: list[Device],
               runtime: RuntimeConfig, cases: list, s: CampaignSettings
               ) -> tuple[KindWork, dict]:
    """One kind's campaign: what is missing, its stored campaign row, queue and recorder."""
    planned_at = time.time()
    done = set() if s.fresh else store.measured_keys(kind, runtime.key)
    todo = {c.key: c for c in cases if c.key not in done}
    who = owner_info()
    cid = store.start_campaign(kind, runtime.key, *(
                               (layout.space, layout.name, layout.classes) if layout else
                               (None, None, None)),
                               {"timing": s.timing.to_dict(), "only": s.only,
                                "runtime": runtime.agent_settings(),
                                "devices": [d.name for d in devices],
                                "planned": len(cases), "to_measure": len(todo),
                                **(s.notes or {})},
                               owner=s.owner or f"{who['user']}@{who['host']}",
                               priority=s.priority)
    summary = CampaignSummary(cid, kind, runtime.key, planned=len(cases),
                              skipped=len(cases) - len(todo))
    recorder = Recorder(store, summary, kind, s.progress)
    if store.shared and not s.fresh:   # several controllers may plan these cases: claim them
        holder = f"{who['user']}@{who['host']}:{who['pid']}/{who['token'][:8]}"
        queue = StoreQueue(store, kind, runtime.key, list(todo), cid, holder, s.priority,
                           s.farm.lease_s, planned_at, boards=len(devices))
        recorder.claim = queue.claim_of
    else:
        queue = WorkQueue(list(todo))
    work = KindWork(kind, len(devices), runtime, s.timing, s.farm, queue, recorder,
                    {**who, "campaign": f"{cid}"}, interleave=s.interleave,
                    case_options=s.case_options or {})
    if done and todo:
        _pick_references(store, work)
    return work, todo


def _pick_references(store: Store, work: KindWork) -> None:
    """Drift guard: the fastest, the median and the slowest case measured before (a space's:
    a model file's case cannot be made again from its key)."""
    prev = store.latest(work.kind, work.runtime.key)
    timed = sorted((m.median_ms, k) for k, m in prev.items()
                   if m.median_ms and not ModelFileCase.is_key(k))
    if not timed:
        return
    picks = {timed[0][1], timed[-1][1], timed[len(timed) // 2][1]}
    work.references = {k: prev[k].median_ms for k in picks}
    contexts = [m.context_id for m in prev.values() if m.context_id is not None]
    work.reference_context = store.context(max(contexts)) if contexts else {}


def _export(todo: dict, cache: ModelCache, runtime: RuntimeConfig,
            kinds: list[tuple[KindWork, dict]], progress: Progress,
            workers: int | None = None) -> dict[str, ExportedModel]:
    """Every case's model; a case that cannot be exported fails alone, the rest go on."""
    progress.phase("export", len(todo))
    models: dict[str, ExportedModel] = {}

    def done(key: str, result) -> None:
        bad = None if isinstance(result, ExportError) else \
            result.failed_check(runtime.spec.checked_by)
        if bad:             # timing a wrong computation would put a wrong number in the LUT
            result = ExportError(
                f"{key}: the model computes unlike its torch block in {bad['runtime']} (error "
                f"{bad['error']:.3g} > {bad['tolerance']:.3g}"
                + (f"; {bad['message']}" if bad.get("message") else "") + "); not timed")
        if isinstance(result, ExportError):
            for work, planned in kinds:
                work.references.pop(key, None)
                if work.queue.remove(key):
                    del planned[key]
                    work.recorder.failed(key, str(result), held=False)
            progress.advance(key, "failed")
        else:
            models[key] = result
            progress.advance(key, "exported")
    # one model for every resolved configuration: they differ in threads only
    cache.get_many(todo, runtime.model_format, runtime.dtype, workers, on_result=done)
    return models


def _fail_leftovers(work: KindWork) -> None:
    """Cases no device could take (every device of the kind was given up)."""
    if work.queue.stopped:
        return
    leftovers = work.queue.drain()
    why = "; ".join(f"{d}: {e}" for d, e in work.recorder.summary.device_errors.items())
    for key in leftovers:
        work.recorder.failed(key, f"no device of kind {work.kind} left ({why})")
