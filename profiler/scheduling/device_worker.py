"""One device's part of a campaign: connect, (drift guard), take chunks of cases from the
kind's queue, run them as agent jobs, hand results to the recorder; retry a faulty device
with backoff and give it up after too many faults in a row."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from lutfarm.errors import LutfarmError
from lutfarm.profiler.devices.lock import STALE_S, LockHeld
from lutfarm.profiler.devices.record import Device
from lutfarm.profiler.devices.ssh import TRANSIENT_ERRORS, AuthError, DeviceError, HostKeyError
from lutfarm.profiler.devices.timeline import Timeline
from lutfarm.profiler.devices.transport import AgentDied, CaseTimeout, transport_for
from lutfarm.profiler.export.cache import ExportedModel
from lutfarm.profiler.runtime_config import RuntimeConfig
from lutfarm.profiler.scheduling.recorder import Recorder
from lutfarm.profiler.scheduling.work_queue import CaseQueue
from lutfarm.profiler.store.queue import LEASE_S
from lutfarm_agent.timing import TimingSettings

log = logging.getLogger(__name__)

CRASHES_PER_CASE = 2   # a case the agent dies on this often is failed, not retried again
DRIFT_TOLERANCE = 0.10  # a reference case this much off its stored median means the device changed
CONTEXT_FIELDS = ("cpu_model", "cores", "governor", "machine", "python")
FIRST_CHUNK = 2        # a board's first job: it starts once this many models are uploaded


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
    lease_s: float = LEASE_S              # shared store: a dead controller's cases return after this

    def case_timeout(self, timing: TimingSettings) -> float:
        if self.case_timeout_s:
            return self.case_timeout_s
        return 60.0 + 2 * timing.max_s * (timing.retries + 1)


@dataclass
class KindWork:
    """What every device worker of one kind shares: the cases, their models, the rules."""

    kind: str
    devices: int
    runtime: RuntimeConfig
    timing: TimingSettings
    farm: FarmSettings
    queue: CaseQueue
    recorder: Recorder
    owner: dict                                   # who holds the boards' locks
    models: dict[str, ExportedModel] = field(default_factory=dict)
    references: dict[str, float] = field(default_factory=dict)   # drift guard: key -> ms
    reference_context: dict = field(default_factory=dict)
    interleave: bool = False       # all cases in one job, timed sample by sample in turn
    case_options: dict[str, dict] = field(default_factory=dict)   # key -> the case's extras
    timeline: Timeline = field(default_factory=Timeline)          # where the boards' time goes

    def alive(self) -> int:
        """Boards serving the kind's queue: this controller's that are not given up, and on a
        shared queue the other controllers' too."""
        return max(1, self.queue.boards(self.devices - self.recorder.devices_given_up()))

    def chunk_size(self, first: bool = False) -> int:
        """Cases per job: ~4 jobs per device over what is pending, at most 16 (so the next
        chunk's uploads overlap a job, and the queue's tail splits finely). A device's first
        job is ``FIRST_CHUNK`` cases: it starts once they are uploaded, not a whole chunk."""
        pending = self.queue.pending()
        if self.interleave:        # the cases are compared with each other: one job
            return max(1, pending)
        size = max(1, min(16, math.ceil(pending / (4 * self.alive()))))
        return min(size, FIRST_CHUNK) if first else size


class DeviceWorker:
    """Drives one device through the campaign (one thread each)."""

    def __init__(self, device: Device, work: KindWork,
                 on_transport: Callable[[object], None] | None = None):
        self.device, self.work = device, work
        self.transport = transport_for(device)
        self.transport.timeline = work.timeline
        self.fatal: str | None = None
        if on_transport:
            on_transport(self.transport)

    def stop(self) -> None:
        """Kill the agent now (Ctrl-C): the thread then releases the board's lock."""
        try:
            self.transport.stop()
        except Exception:
            pass

    def release_lock(self) -> None:
        """Give the board back now if this worker still holds it (Ctrl-C's last step)."""
        lock = getattr(self.transport, "lock", None)
        if lock is not None and lock.held:
            try:
                lock.release()
            except Exception as exc:
                log.warning("%s: lock not released: %s", self.device.name, exc)

    def run(self) -> None:
        work, device, transport = self.work, self.device, self.transport
        progress = work.recorder.progress
        failures, opened, checked, fresh = 0, False, False, False
        ahead: list[str] = []        # the next chunk, its models uploaded while a job ran
        try:
            while not work.queue.stopped:
                try:
                    if not opened:
                        progress.device_state(device.name, "connecting")
                        work.queue.want_board(device.name)
                        try:
                            transport.open(work.owner, self._lock_wait(), work.farm.stale_lock_s)
                        finally:
                            work.queue.got_board(device.name)
                        opened = fresh = True
                        if work.references and not checked:
                            self._drift_check()
                            checked = True
                        progress.device_state(device.name, "measuring")
                    if work.queue.board_wanted(device.name):   # a higher priority waits
                        if ahead:
                            work.queue.give_back(ahead)
                            ahead = []
                        progress.device_state(device.name, "yielding to a higher priority")
                        log.info("%s: handed to a higher-priority campaign", device.name)
                        transport.close()
                        opened = False
                        with work.timeline.span(device.name, "hand-over"):
                            work.queue.wait_while_wanted(device.name, work.farm.stale_lock_s)
                        continue
                    if not ahead:
                        with work.timeline.span(device.name, "wait"):
                            ahead = work.queue.take(work.chunk_size(first=fresh))
                    chunk, ahead = ahead, []
                    fresh = False
                    if not chunk:
                        break
                    ahead = self._run_chunk(chunk)
                    failures = 0
                except (HostKeyError, AuthError, LockHeld):
                    raise                        # needs a person, not a retry
                except (DeviceError, *TRANSIENT_ERRORS) as exc:   # refused, dropped, agent
                    failures += 1                                   # died: retry, back off
                    if not isinstance(exc, DeviceError):
                        exc = DeviceError(f"{device.name}: {type(exc).__name__}: {exc}")
                    if failures >= work.farm.max_device_failures or work.queue.stopped:
                        raise exc from None
                    log.info("%s: retry %d after %s", device.name, failures, exc)
                    progress.device_state(device.name, f"retry {failures}: {exc}")
                    transport.close()
                    opened = False
                    with work.timeline.span(device.name, "backoff", retry=failures):
                        time.sleep(work.farm.backoff_s * 2 ** (failures - 1))
        except DeviceError as exc:
            work.recorder.gave_up(device, str(exc))
        except CampaignError as exc:
            self.fatal = str(exc)
            work.queue.stop()
        except Exception as exc:  # a bug: stop the campaign and say where, keep what is stored
            log.exception("internal error on %s", device.name)
            self.fatal = f"internal error on {device.name}: {exc!r}"
            work.queue.stop()
        finally:
            transport.close()
            work.recorder.uploaded(transport.upload.bytes)
            progress.device_state(device.name, "done")

    def _lock_wait(self) -> float:
        """With a shared store a busy board is waited for (its holder yields to a higher
        priority between chunks, or finishes); alone, only as long as asked."""
        farm = self.work.farm
        return max(farm.lock_wait_s, farm.stale_lock_s) if self.work.queue.shared \
            else farm.lock_wait_s

    def _job(self, keys: list[str], suffix: str = "") -> dict:
        """An agent job for ``keys`` with this device's threads and affinity."""
        work, device = self.work, self.device
        runtime = work.runtime          # already resolved for this device (Device.resolve)
        return {"job_id": f"c{work.recorder.summary.campaign_id}-{device.name}{suffix}",
                "runtime": dict(runtime.agent_settings(device.affinity),
                                **device.runtime_settings()),
                "timing": work.timing.to_dict(), "interleave": work.interleave,
                "cases": [{"key": k, "model": self.transport.model_path(work.models[k]),
                           "sha256": work.models[k].sha256, **work.case_options.get(k, {})}
                          for k in keys]}

    def _drift_check(self) -> None:
        """Before resuming on a device: time the references again, compare, warn."""
        work, device = self.work, self.device
        keys = list(work.references)
        self.transport.prepare([work.models[k] for k in keys])
        now, context, warnings = {}, {}, []
        for event in self.transport.run_job(self._job(keys, "-drift"),
                                            work.farm.case_timeout(work.timing), "drift guard"):
            if event["event"] == "hello":
                context = event["context"]
            elif event["event"] == "result" and event["status"] == "ok":
                now[event["key"]] = event["stats"]["median"]
        for key, old in work.references.items():
            if key in now and abs(now[key] / old - 1) > DRIFT_TOLERANCE:
                warnings.append(f"{device.name}: {key} takes {now[key]:.4f} ms now, "
                                f"{old:.4f} ms when stored ({now[key] / old - 1:+.0%})")
        before = work.reference_context
        for name in CONTEXT_FIELDS:
            if before.get(name) != context.get(name) and before:
                warnings.append(f"{device.name}: {name} changed from {before.get(name)!r} to "
                                f"{context.get(name)!r}")
        old_rt, new_rt = (before.get("runtime") or {}), (context.get("runtime") or {})
        if before and old_rt.get("version") != new_rt.get("version"):
            warnings.append(f"{device.name}: {work.runtime.name} version changed from "
                            f"{old_rt.get('version')} to {new_rt.get('version')}")
        work.recorder.drift(device, work.references, now, warnings)

    def _run_chunk(self, chunk: list[str]) -> list[str]:
        """One agent job; whatever it does not finish goes back to the queue (or fails). While
        it runs, the next chunk is taken and its models uploaded (uploads would otherwise sit
        between jobs on every board): returned, to run next."""
        ahead = _Prefetch(self)
        try:
            self._job_chunk(chunk, ahead)
        except BaseException:
            ahead.join()
            if ahead.chunk:
                self.work.queue.give_back(ahead.chunk)
            raise
        ahead.join()
        return ahead.chunk

    def _job_chunk(self, chunk: list[str], ahead: _Prefetch) -> None:
        work, device, queue, recorder = self.work, self.device, self.work.queue, self.work.recorder
        pending = dict.fromkeys(chunk)
        try:
            self.transport.prepare([work.models[k] for k in chunk])
            ahead.start()
            context_id = None
            # an interleaved job reports when all its cases are timed: its timeout is theirs
            timeout = work.farm.case_timeout(work.timing) * (len(chunk) if work.interleave else 1)
            for event in self.transport.run_job(self._job(chunk), timeout):
                kind = event["event"]
                if kind == "fatal":
                    raise CampaignError(f"device {device.name}: {event['error']}")
                if kind == "hello":
                    context_id = recorder.context(device, event["context"])
                    clocks = event["context"].get("clocks")
                    if clocks and not clocks["applied"]:
                        recorder.clock_warning(device, f"clocks not set ({clocks['error']}); "
                                                       f"timed at the board's own")
                elif kind == "done" and event.get("clock_restore_errors"):
                    recorder.clock_warning(device, "clocks not restored: "
                                           + "; ".join(event["clock_restore_errors"]))
                elif kind == "result" and event["key"] in pending:
                    key = event["key"]
                    recorder.measured(event, device, work.models[key], context_id)
                    del pending[key]
                    queue.done([key])
        except CaseTimeout as exc:
            self.transport.stop()
            hung = next(iter(pending))
            recorder.failed(hung, f"timed out: {exc}", device.name)
            del pending[hung]
            queue.done([hung])
            queue.give_back(list(pending))
            return
        except (AgentDied, DeviceError) as exc:
            if pending:
                first = next(iter(pending))
                crashes = queue.crashed(first)
                if crashes >= CRASHES_PER_CASE:
                    recorder.failed(first, f"agent died {crashes} times on it: {exc}",
                                    device.name)
                    del pending[first]
                    queue.done([first])
            queue.give_back(list(pending))
            raise
        except BaseException:
            queue.give_back(list(pending))
            raise


class _Prefetch:
    """The chunk after the running one: taken without waiting, its models uploading beside the
    job, both in a thread of its own (a shared store's claim is a database round trip the job
    must not wait for). Not at the tail (no more pending cases than live devices): there a
    sibling that is idle should take them."""

    def __init__(self, worker: DeviceWorker):
        self.worker = worker
        self.chunk: list[str] = []
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._take_and_upload, daemon=True,
                                        name=f"prefetch-{self.worker.device.name}")
        self._thread.start()

    def _take_and_upload(self) -> None:
        work = self.worker.work
        try:
            if work.queue.stopped or work.queue.pending() <= work.alive():
                return
            self.chunk = work.queue.take(work.chunk_size(), wait=False)
        except Exception as exc:      # the store is away: take the next chunk after the job
            log.info("%s: taking the next chunk ahead failed (%s)", self.worker.device.name, exc)
            return
        if not self.chunk:
            return
        try:
            self.worker.transport.prefetch([work.models[k] for k in self.chunk])
        except Exception as exc:      # harmless: the chunk's own prepare uploads what is missing
            log.info("%s: uploading ahead failed (%s); they upload before their job",
                     self.worker.device.name, exc)

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()


def start_workers(workers: list[DeviceWorker]) -> list[threading.Thread]:
    threads = [threading.Thread(target=w.run, name=f"device-{w.device.name}", daemon=True)
               for w in workers]
    for t in threads:
        t.start()
    return threads
