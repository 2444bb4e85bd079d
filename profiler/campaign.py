"""A campaign: measure every missing case of a layout on devices, one runtime configuration.

cases -> (skip what the store already has) -> export (cached) -> per device kind, one shared
work queue served by every device of that kind -> each result committed to the store as it
arrives. One job at a time per device, under the board's lock. A device that fails (lost
connection, agent crash) is retried with backoff and its unfinished cases go back to the
queue for its siblings; a case that hangs is failed after the per-case timeout; a case the
agent crashes on twice is failed. Stopping at any point loses nothing; the same campaign run
again measures only what is still missing, failures included.
"""

from __future__ import annotations

import fnmatch
import math
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lutfarm.errors import LutfarmError
from lutfarm.profiler.devices import Device
from lutfarm.profiler.export import ExportedModel, ExportError, ModelCache
from lutfarm.profiler.lock import STALE_S, LockHeld, owner_info
from lutfarm.profiler.runtime_config import CHECKED_BY, RuntimeConfig
from lutfarm.profiler.ssh import TRANSIENT_ERRORS, AuthError, DeviceError, HostKeyError
from lutfarm.profiler.store import Measurement, Store
from lutfarm.profiler.transport import AgentDied, CaseTimeout, transport_for
from lutfarm.spaces import parse_case_key
from lutfarm.spaces.cases import BlockCase
from lutfarm.spaces.fbnet import FBNetLayout
from lutfarm_agent.timing import TimingSettings

CRASHES_PER_CASE = 2   # a case the agent dies on this often is failed, not retried again
DRIFT_TOLERANCE = 0.10  # a reference case this much off its stored median means the device changed
CONTEXT_FIELDS = ("cpu_model", "cores", "governor", "machine", "python")


class CampaignError(LutfarmError, RuntimeError):
    """The campaign could not run at all (e.g. the device lacks the runtime)."""


@dataclass
class FarmSettings:
    """How a campaign treats devices: patience with locks and faults."""

    case_timeout_s: float | None = None   # None: derived from the timing settings
    max_device_failures: int = 3          # consecutive faults before a device is given up
    backoff_s: float = 1.0                # first retry delay, doubled each time
    lock_wait_s: float = 0.0              # wait this long for a board another controller holds
    stale_lock_s: float = STALE_S

    def case_timeout(self, timing: TimingSettings) -> float:
        if self.case_timeout_s:
            return self.case_timeout_s
        return 60.0 + 2 * timing.max_s * (timing.retries + 1)


@dataclass
class CampaignSummary:
    campaign_id: int
    device: str                          # the target: a device kind (or the device itself)
    runtime: str
    planned: int = 0
    measured: int = 0
    skipped: int = 0                     # already in the store
    failed: list[tuple[str, str]] = field(default_factory=list)   # (case key, error)
    exported: int = 0
    export_s: float = 0.0
    wall_s: float = 0.0
    sampling_s: float = 0.0              # sum of timed-sample durations: the physical floor
    cvs: list[float] = field(default_factory=list)
    rel_cis: list[float] = field(default_factory=list)
    not_converged: int = 0
    interrupted: bool = False
    per_device: dict[str, int] = field(default_factory=dict)      # measured cases per device
    device_errors: dict[str, str] = field(default_factory=dict)   # devices given up, and why
    uploaded_bytes: int = 0
    drift: list[str] = field(default_factory=list)   # drift-guard warnings on resume
    check_flags: list[str] = field(default_factory=list)  # timed models that compute wrongly

    def as_dict(self) -> dict:
        q = _quartiles
        return {"campaign_id": self.campaign_id, "device": self.device, "runtime": self.runtime,
                "planned": self.planned, "measured": self.measured, "skipped": self.skipped,
                "failed": len(self.failed), "failures": dict(self.failed),
                "exported": self.exported, "export_s": self.export_s, "wall_s": self.wall_s,
                "sampling_s": self.sampling_s, "cv_quartiles": q(self.cvs),
                "rel_ci_quartiles": q(self.rel_cis), "not_converged": self.not_converged,
                "interrupted": self.interrupted, "per_device": self.per_device,
                "device_errors": self.device_errors, "uploaded_bytes": self.uploaded_bytes,
                "drift": self.drift, "check_flags": self.check_flags}


def _quartiles(values: list[float]) -> list[float] | None:
    if len(values) < 2:
        return list(values) or None
    return [min(values), *statistics.quantiles(values, n=4), max(values)]


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
        cases = [c for c in cases if any(fnmatch.fnmatchcase(c.key, p) for p in patterns)]
    return cases


class Progress:
    """Callbacks a front end overrides; the API itself prints nothing. Called from device
    threads, so implementations must be thread-safe (rich's Progress is)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, key: str, status: str, device: str = "") -> None: ...

    def device_state(self, device: str, state: str) -> None: ...


class WorkQueue:
    """Cases of one kind, shared by that kind's devices. ``take`` blocks while other devices
    still hold cases that may come back, so no device quits while work can return."""

    def __init__(self, keys: list[str]):
        self.pending = list(keys)
        self.out = 0
        self.crashes: dict[str, int] = {}
        self.cond = threading.Condition()
        self.stopped = False

    def take(self, n: int) -> list[str]:
        with self.cond:
            while not self.pending and self.out and not self.stopped:
                self.cond.wait(0.5)
            if self.stopped:
                return []
            chunk, self.pending = self.pending[:n], self.pending[n:]
            self.out += len(chunk)
            return chunk

    def done(self, keys: list[str]) -> None:
        with self.cond:
            self.out -= len(keys)
            self.cond.notify_all()

    def give_back(self, keys: list[str]) -> None:
        with self.cond:
            self.pending = list(keys) + self.pending
            self.out -= len(keys)
            self.cond.notify_all()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def run_campaign(store: Store, layout: FBNetLayout, device: Device | list[Device],
                 runtime: RuntimeConfig, timing: TimingSettings | None = None,
                 cache: ModelCache | None = None, only: str | None = None,
                 progress: Progress | None = None,
                 on_transport: Callable[[object], None] | None = None,
                 farm: FarmSettings | None = None, cases: list | None = None,
                 fresh: bool = False) -> CampaignSummary:
    """Measure what is missing on one device, or on several devices of one kind."""
    devices = device if isinstance(device, list) else [device]
    kinds = {d.kind for d in devices}
    if len(kinds) != 1:
        raise CampaignError(f"run_campaign takes devices of one kind, got {sorted(kinds)}; "
                            f"use run_farm")
    return run_farm(store, layout, devices, runtime, timing, cache, only, progress,
                    on_transport, farm, cases, fresh)[0]


def run_farm(store: Store, layout: FBNetLayout, devices: list[Device], runtime: RuntimeConfig,
             timing: TimingSettings | None = None, cache: ModelCache | None = None,
             only: str | None = None, progress: Progress | None = None,
             on_transport: Callable[[object], None] | None = None,
             farm: FarmSettings | None = None, cases: list | None = None,
             fresh: bool = False) -> list[CampaignSummary]:
    """One campaign per device kind, all kinds at once; one summary each (inventory order).

    ``cases`` replaces the layout's own cases (e.g. whole networks for validation); ``fresh``
    measures them again even where the store has them (repeatability)."""
    timing = timing or TimingSettings()
    cache = cache or ModelCache()
    progress = progress or Progress()
    farm = farm or FarmSettings()
    groups: dict[str, list[Device]] = {}
    for d in devices:
        groups.setdefault(d.kind, []).append(d)
    if cases is None:
        cases = plan_cases(layout, only)
    runs = [_KindRun(store, layout, kind, devs, runtime, timing, cases, only, farm, progress,
                     on_transport, fresh) for kind, devs in groups.items()]
    t0 = time.perf_counter()
    threads: list[threading.Thread] = []
    try:
        todo = {c.key: c for r in runs for c in r.todo}
        for r in runs:
            todo.update({k: parse_case_key(k) for k in r.references})
        progress.phase("export", len(todo))
        models: dict[str, ExportedModel] = {}
        for key, case in todo.items():
            try:
                models[key] = cache.get(case, runtime.model_format, runtime.dtype)
            except ExportError as exc:      # this case only: say why, measure the others
                for r in runs:
                    r.unexportable(key, str(exc))
                progress.advance(key, "failed")
                continue
            progress.advance(key, "exported")
        progress.phase("measure", sum(len(r.todo) for r in runs))
        threads += [t for r in runs for t in r.start(models)]
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
        for r in runs:
            r.fail_leftovers()
    except KeyboardInterrupt:
        for r in runs:
            r.abort()
            r.summary.interrupted = True
        for t in threads:            # let every device thread release its lock
            t.join(10)
        raise
    finally:
        for r in runs:
            s = r.summary
            s.exported, s.export_s = cache.stats.exported, cache.stats.seconds
            s.wall_s = time.perf_counter() - t0
            store.finish_campaign(s.campaign_id, s.as_dict())
    fatal = [r.fatal for r in runs if r.fatal]
    if fatal:
        raise CampaignError(fatal[0])
    return [r.summary for r in runs]


class _KindRun:
    """The campaign of one device kind: its queue, its device threads, its summary."""

    def __init__(self, store, layout, kind, devices, runtime, timing, cases, only, farm,
                 progress, on_transport, fresh=False):
        self.store, self.kind, self.devices, self.runtime = store, kind, devices, runtime
        self.timing, self.farm, self.progress, self.on_transport = timing, farm, progress, on_transport
        done = set() if fresh else store.measured_keys(kind, runtime.key)
        self.todo = [c for c in cases if c.key not in done]
        cid = store.start_campaign(kind, runtime.key, layout.space, layout.name, layout.classes,
                                   {"timing": timing.to_dict(), "only": only,
                                    "runtime": runtime.agent_settings(),
                                    "devices": [d.name for d in devices]})
        self.summary = CampaignSummary(cid, kind, runtime.key, planned=len(cases),
                                       skipped=len(cases) - len(self.todo))
        self.queue = WorkQueue([c.key for c in self.todo])
        self.references: dict[str, float] = {}
        self.reference_context: dict = {}
        if done and self.todo:
            self._pick_references(store)
        self.transports: list = []
        self.fatal: str | None = None
        self.lock = threading.Lock()
        self.owner = owner_info(f"{cid}")

    def _pick_references(self, store) -> None:
        """Drift guard: the empty model, the fastest and the slowest case measured before."""
        prev = store.latest(self.kind, self.runtime.key)
        timed = sorted((m.median_ms, k) for k, m in prev.items() if m.median_ms)
        if not timed:
            return
        picks = {timed[0][1], timed[-1][1], timed[len(timed) // 2][1]}
        self.references = {k: prev[k].median_ms for k in picks}
        contexts = [m.context_id for m in prev.values() if m.context_id is not None]
        self.reference_context = store.context(max(contexts)) if contexts else {}

    def _drift_check(self, device: Device, transport) -> None:
        """Before resuming on a device: time the references again, compare, warn."""
        keys = list(self.references)
        transport.prepare([self.models[k] for k in keys])
        job = self._job(device, transport, keys, "-drift")
        now, context, warnings = {}, {}, []
        for event in transport.run_job(job, self.farm.case_timeout(self.timing)):
            if event["event"] == "hello":
                context = event["context"]
            elif event["event"] == "result" and event["status"] == "ok":
                now[event["key"]] = event["stats"]["median"]
        for key, old in self.references.items():
            if key in now and abs(now[key] / old - 1) > DRIFT_TOLERANCE:
                warnings.append(f"{device.name}: {key} takes {now[key]:.4f} ms now, "
                                f"{old:.4f} ms when stored ({now[key] / old - 1:+.0%})")
        before = self.reference_context
        for name in CONTEXT_FIELDS:
            if before.get(name) != context.get(name) and before:
                warnings.append(f"{device.name}: {name} changed from {before.get(name)!r} to "
                                f"{context.get(name)!r}")
        old_rt, new_rt = (before.get("runtime") or {}), (context.get("runtime") or {})
        if before and old_rt.get("version") != new_rt.get("version"):
            warnings.append(f"{device.name}: {self.runtime.name} version changed from "
                            f"{old_rt.get('version')} to {new_rt.get('version')}")
        with self.lock:
            self.summary.drift.extend(warnings)
        self.store.add_report(self.kind, self.runtime.key, "drift",
                              {"device": device.name, "stored": self.references, "now": now,
                               "warnings": warnings})

    def start(self, models: dict[str, ExportedModel]) -> list[threading.Thread]:
        self.models = models
        if not self.todo:
            return []
        threads = [threading.Thread(target=self._worker, args=(d,), name=f"device-{d.name}",
                                    daemon=True) for d in self.devices]
        for t in threads:
            t.start()
        return threads

    def _chunk_size(self) -> int:
        alive = max(1, len(self.devices) - len(self.summary.device_errors))
        if alive == 1:
            return len(self.todo)            # one job: no agent restarts at all
        return max(1, min(16, math.ceil(len(self.queue.pending) / (4 * alive))))

    def _worker(self, device: Device) -> None:
        transport = transport_for(device)
        with self.lock:
            self.transports.append(transport)
        if self.on_transport:
            self.on_transport(transport)
        failures, opened, checked = 0, False, False
        try:
            while not self.queue.stopped:
                try:
                    if not opened:
                        self.progress.device_state(device.name, "connecting")
                        transport.open(self.owner, self.farm.lock_wait_s, self.farm.stale_lock_s)
                        opened = True
                        if self.references and not checked:
                            self._drift_check(device, transport)
                            checked = True
                        self.progress.device_state(device.name, "measuring")
                    chunk = self.queue.take(self._chunk_size())
                    if not chunk:
                        break
                    self._run_chunk(device, transport, chunk)
                    failures = 0
                except (HostKeyError, AuthError, LockHeld):
                    raise                        # needs a person, not a retry
                except (DeviceError, *TRANSIENT_ERRORS) as exc:   # refused, dropped, agent
                    failures += 1                                   # died: retry, back off
                    if not isinstance(exc, DeviceError):
                        exc = DeviceError(f"{device.name}: {type(exc).__name__}: {exc}")
                    if failures >= self.farm.max_device_failures or self.queue.stopped:
                        raise exc from None
                    self.progress.device_state(device.name, f"retry {failures}: {exc}")
                    transport.close()
                    opened = False
                    time.sleep(self.farm.backoff_s * 2 ** (failures - 1))
        except DeviceError as exc:
            self._give_up(device, str(exc))
        except CampaignError as exc:
            self.fatal = str(exc)
            self.queue.stop()
        except Exception as exc:  # a bug: stop the campaign and say where, keep what is stored
            self.fatal = f"internal error on {device.name}: {exc!r}"
            self.queue.stop()
        finally:
            transport.close()
            self.upload_bytes(transport)
            self.progress.device_state(device.name, "done")

    def upload_bytes(self, transport) -> None:
        with self.lock:
            self.summary.uploaded_bytes += transport.upload.bytes

    def _give_up(self, device: Device, why: str) -> None:
        with self.lock:
            self.summary.device_errors[device.name] = why
        self.progress.device_state(device.name, f"given up: {why}")

    def _job(self, device: Device, transport, keys: list[str], suffix: str = "") -> dict:
        """An agent job for ``keys`` with this device's threads and affinity."""
        runtime = RuntimeConfig(self.runtime.name, device.threads or self.runtime.threads,
                                self.runtime.dtype, self.runtime.provider)
        return {"job_id": f"c{self.summary.campaign_id}-{device.name}{suffix}",
                "runtime": dict(runtime.agent_settings(device.affinity),
                                **device.runtime_settings()),
                "timing": self.timing.to_dict(),
                "cases": [{"key": k, "model": transport.model_path(self.models[k]),
                           "sha256": self.models[k].sha256} for k in keys]}

    def _run_chunk(self, device: Device, transport, chunk: list[str]) -> None:
        """One agent job; whatever it does not finish goes back to the queue (or fails)."""
        pending = dict.fromkeys(chunk)
        try:
            transport.prepare([self.models[k] for k in chunk])
            job = self._job(device, transport, chunk)
            context_id = None
            for event in transport.run_job(job, self.farm.case_timeout(self.timing)):
                kind = event["event"]
                if kind == "fatal":
                    raise CampaignError(f"device {device.name}: {event['error']}")
                if kind == "hello":
                    context_id = self.store.add_context(device.name, event["context"])
                elif kind == "result" and event["key"] in pending:
                    model = self.models[event["key"]]
                    m = Measurement.from_event(event, device.name, self.runtime.key,
                                               kind=self.kind,
                                               campaign_id=self.summary.campaign_id,
                                               context_id=context_id,
                                               model_sha256=model.sha256)
                    self._flag_check(m, model)
                    self._record(m)
                    del pending[event["key"]]
                    self.queue.done([m.case_key])
        except CaseTimeout as exc:
            transport.stop()
            hung = next(iter(pending))
            self._fail(device, hung, f"timed out: {exc}")
            del pending[hung]
            self.queue.done([hung])
            self.queue.give_back(list(pending))
            return
        except (AgentDied, DeviceError) as exc:
            if pending:
                first = next(iter(pending))
                crashes = self.queue.crashes.get(first, 0) + 1
                self.queue.crashes[first] = crashes
                if crashes >= CRASHES_PER_CASE:
                    self._fail(device, first, f"agent died {crashes} times on it: {exc}")
                    del pending[first]
                    self.queue.done([first])
            self.queue.give_back(list(pending))
            raise
        except BaseException:
            self.queue.give_back(list(pending))
            raise

    def _flag_check(self, m: Measurement, model: ExportedModel) -> None:
        """A model this runtime computes differently from torch is timed but flagged."""
        bad = model.failed_check(CHECKED_BY.get(self.runtime.name, ""))
        if bad and m.status == "ok":
            m.extra = dict(m.extra or {}, check=bad)
            with self.lock:
                self.summary.check_flags.append(
                    f"{m.case_key}: outputs differ from torch in {bad['runtime']} "
                    f"(error {bad['error']:.3g} > {bad['tolerance']:.3g}"
                    + (f"; {bad['message']}" if bad.get("message") else "") + ")")

    def unexportable(self, key: str, error: str) -> None:
        """A case the controller could not turn into a model: failed, the rest goes on."""
        self.references.pop(key, None)
        with self.queue.cond:
            if key not in self.queue.pending:
                return
            self.queue.pending.remove(key)
        self.todo = [c for c in self.todo if c.key != key]
        self._record(Measurement(self.kind, self.runtime.key, key, "failed", error=error,
                                 kind=self.kind, campaign_id=self.summary.campaign_id,
                                 created=time.time()))

    def _fail(self, device: Device, key: str, error: str) -> None:
        self._record(Measurement(device.name, self.runtime.key, key, "failed", error=error,
                                 kind=self.kind, campaign_id=self.summary.campaign_id,
                                 created=time.time()))

    def _record(self, m: Measurement) -> None:
        self.store.add(m)
        s = self.summary
        with self.lock:
            if m.status == "ok":
                s.measured += 1
                s.per_device[m.device] = s.per_device.get(m.device, 0) + 1
                s.sampling_s += m.sampling_s or 0.0
                s.cvs.append(m.cv)
                s.rel_cis.append(m.rel_ci)
                s.not_converged += not m.converged
            else:
                s.failed.append((m.case_key, m.error or "unknown error"))
        self.progress.advance(m.case_key, m.status, m.device)

    def fail_leftovers(self) -> None:
        """Cases no device could take (every device of the kind was given up)."""
        leftovers = list(self.queue.pending)
        if not leftovers or self.fatal:
            return
        why = "; ".join(f"{d}: {e}" for d, e in self.summary.device_errors.items())
        for key in leftovers:
            self._record(Measurement(self.kind, self.runtime.key, key, "failed",
                                     error=f"no device of kind {self.kind} left ({why})",
                                     kind=self.kind, campaign_id=self.summary.campaign_id,
                                     created=time.time()))
        self.queue.pending.clear()

    def abort(self) -> None:
        self.queue.stop()
        with self.lock:
            transports = list(self.transports)
        for t in transports:
            try:
                t.stop()
            except Exception:
                pass
