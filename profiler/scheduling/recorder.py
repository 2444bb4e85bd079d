"""Where a campaign's results go: the store (each measurement committed as it arrives), the
summary a person reads at the end, and the progress display. Thread-safe: every device
worker of a campaign records through one ``Recorder``."""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.export.cache import ExportedModel
from lutfarm.profiler.scheduling.journal import Journal, journal_path
from lutfarm.profiler.store import LeaseLost, Measurement, Store, StoreUnavailable

log = logging.getLogger(__name__)


class Progress:
    """Callbacks a front end overrides; the API itself prints nothing. Called from device
    threads, so implementations must be thread-safe (rich's Progress is)."""

    def phase(self, name: str, total: int) -> None: ...

    def advance(self, key: str, status: str, device: str = "") -> None: ...

    def device_state(self, device: str, state: str) -> None: ...


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
    throttled: list[str] = field(default_factory=list)    # the clock moved while timing them
    clocks: list[str] = field(default_factory=list)       # governor/frequency not set (or restored)
    leases_lost: list[str] = field(default_factory=list)  # shared queue: taken over, not stored
    journaled: int = 0                   # results kept locally while the shared store was away
    efficiency: float | None = None      # busy board time / (boards x wall), from the timeline
    phase_shares: dict[str, float] = field(default_factory=dict)   # phase -> share of it

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
                "drift": self.drift,
                "throttled": self.throttled, "clocks": self.clocks,
                "leases_lost": self.leases_lost, "journaled": self.journaled,
                "efficiency": self.efficiency, "phase_shares": self.phase_shares}


def _quartiles(values: list[float]) -> list[float] | None:
    if len(values) < 2:
        return list(values) or None
    return [min(values), *statistics.quantiles(values, n=4), max(values)]


class Recorder:
    """One device kind's campaign record: store rows, summary figures, progress callbacks."""

    def __init__(self, store: Store, summary: CampaignSummary, kind: str,
                 progress: Progress):
        self.store, self.summary, self.kind, self.progress = store, summary, kind, progress
        self._lock = threading.Lock()
        # a shared queue's claim on a case (None: this controller owns the campaign alone)
        self.claim: Callable[[str], tuple] | None = None
        self.journal: Journal | None = None     # results kept while a shared store is away

    def context(self, device: Device, fingerprint: dict) -> int:
        with self._lock:      # a job cannot start without its context: wait for the server
            return self.store.retrying(lambda: self.store.add_context(device.name, fingerprint),
                                       what="a device context")

    def measured(self, event: dict, device: Device, model: ExportedModel,
                 context_id) -> Measurement:
        """An agent's result event -> a stored measurement."""
        m = Measurement.from_event(event, device.name, self.summary.runtime, kind=self.kind,
                                   campaign_id=self.summary.campaign_id,
                                   context_id=context_id, model_sha256=model.sha256)
        if m.status == "ok" and (m.extra or {}).get("throttled"):
            with self._lock:
                self.summary.throttled.append(m.case_key)
            log.warning("%s: the CPU frequency changed while timing %s, twice", device.name,
                        m.case_key)
        self.record(m)
        return m

    def failed(self, key: str, error: str, device: str | None = None,
               held: bool = True) -> None:
        """A case that will not be measured this time: on ``device``, or by the whole kind.
        ``held=False``: a case taken out before anyone claimed it (its export failed)."""
        self.record(Measurement(device or self.kind, self.summary.runtime, key, "failed",
                                error=error, kind=self.kind,
                                campaign_id=self.summary.campaign_id, created=time.time()),
                    held)

    def record(self, m: Measurement, held: bool = True) -> None:
        s = self.summary
        claim = self.claim(m.case_key) if self.claim and held else None
        with self._lock:
            try:
                if self.journal is not None and len(self.journal):
                    self._replay()         # in order: the journal first (raises while away)
                self.store.add(m, claim)
            except StoreUnavailable as exc:   # the shared store is away: keep it locally
                if self.journal is None:
                    self.journal = Journal(journal_path(s.campaign_id))
                if not len(self.journal):
                    log.warning("%s; keeping results in %s until it is back", exc,
                                self.journal.path)
                self.journal.append(m, claim)
                s.journaled += 1
            except LeaseLost as exc:      # another controller measures it: not ours to store
                s.leases_lost.append(m.case_key)
                log.warning("%s", exc)
                return
            if m.status == "ok":
                s.measured += 1
                s.per_device[m.device] = s.per_device.get(m.device, 0) + 1
                s.sampling_s += m.sampling_s or 0.0
                s.cvs.append(m.cv)
                s.rel_cis.append(m.rel_ci)
                s.not_converged += not m.converged
            else:
                s.failed.append((m.case_key, m.error or "unknown error"))
                log.info("%s failed on %s: %s", m.case_key, m.device, m.error)
        self.progress.advance(m.case_key, m.status, m.device)

    def _replay(self) -> None:
        stored, dropped = self.journal.replay(self.store)
        if dropped:
            self.summary.leases_lost += dropped
            self.summary.measured -= len(dropped)   # counted when journaled
        log.info("wrote %d journaled results to the store", stored)

    def flush(self, patience_s: float = 300.0) -> Journal | None:
        """At the campaign's end: write what the journal holds, waiting up to ``patience_s``
        for the server; the journal if some is still unwritten, else None."""
        with self._lock:
            if self.journal is None or not len(self.journal):
                return None
            try:
                self.store.retrying(self._replay, patience_s, "the journal")
            except StoreUnavailable:
                return self.journal
            return None

    def clock_warning(self, device: Device, why: str) -> None:
        """A board whose requested governor/frequency could not be set (or put back): its
        timings ran at its own clocks. Said once per board and reason."""
        text = f"{device.name}: {why}"
        with self._lock:
            if text in self.summary.clocks:
                return
            self.summary.clocks.append(text)
        log.warning("clocks: %s", text)

    def gave_up(self, device: Device, why: str) -> None:
        with self._lock:
            self.summary.device_errors[device.name] = why
        log.warning("%s given up: %s", device.name, why)
        self.progress.device_state(device.name, f"given up: {why}")

    def devices_given_up(self) -> int:
        with self._lock:
            return len(self.summary.device_errors)

    def drift(self, device: Device, stored: dict, now: dict, warnings: list[str]) -> None:
        with self._lock:
            self.summary.drift.extend(warnings)
            self.store.add_report(self.kind, self.summary.runtime, "drift",
                                  {"device": device.name, "stored": stored, "now": now,
                                   "warnings": warnings})
        for w in warnings:
            log.warning("drift: %s", w)

    def uploaded(self, nbytes: int) -> None:
        with self._lock:
            self.summary.uploaded_bytes += nbytes
