"""The store's record: one measurement (or failure) of one case, as every layer reads it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, fields

# Memory methods that are an arena a TFLite-Micro interpreter really allocates (the host's
# interpreter, or a microcontroller's firmware), not a process's RSS growth
ARENA_METHODS = ("tflm-arena", "mcu-arena")


@dataclass
class Measurement:
    """One case timed on one device with one runtime configuration (or a failure to)."""

    device: str
    runtime: str
    case_key: str
    status: str                      # "ok" | "failed"
    error: str | None = None
    kind: str | None = None          # the device's kind: interchangeable devices share LUTs
    model_sha256: str | None = None
    campaign_id: int | None = None
    context_id: int | None = None
    created: float = 0.0
    init_ms: float | None = None
    first_ms: float | None = None
    batch: int | None = None
    attempts: int | None = None
    converged: bool | None = None
    count: int | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    median_ms: float | None = None
    p90_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    ci_lo_ms: float | None = None
    ci_hi_ms: float | None = None
    rel_ci: float | None = None
    cv: float | None = None
    sampling_s: float | None = None
    samples: list[float] | None = None
    extra: dict | None = None        # inputs, per-case frequencies/temperatures, …
    peak_mem_bytes: int | None = None  # RSS growth, or a TFLite-Micro arena (mem_method says)
    mem_method: str | None = None
    id: int | None = None

    @property
    def model_bytes(self) -> int | None:
        """The model as the runtime loaded it (its flash on an MCU), where the agent said."""
        return ((self.extra or {}).get("details") or {}).get("model_bytes")

    @property
    def ops(self) -> dict | None:
        """The per-operator profile taken with it, where one was asked for."""
        return (self.extra or {}).get("ops")

    @property
    def persistent_bytes(self) -> int | None:
        """The part of a TFLite-Micro arena that is persistent (interpreter, tensors, per-op
        data), where the firmware said: it adds up over a network's blocks."""
        return ((self.extra or {}).get("details") or {}).get("arena_persistent")

    @classmethod
    def from_event(cls, event: dict, device: str, runtime: str, **ids) -> Measurement:
        """An agent ``result`` event -> a record (see lutfarm_agent.protocol)."""
        m = cls(device=device, runtime=runtime, case_key=event["key"], status=event["status"],
                error=event.get("error"), created=time.time(), **ids)
        m.kind = m.kind or device
        if m.status == "ok":
            st = event["stats"]
            m.init_ms, m.first_ms = event["init_ms"], event["first_ms"]
            m.batch, m.attempts = event["batch"], event["attempts"]
            m.converged, m.sampling_s = event["converged"], event["sampling_s"]
            m.count, m.rel_ci, m.cv = st["count"], st["rel_ci"], st["cv"]
            for name in ("min", "max", "mean", "std", "median", "p90", "p95", "p99",
                         "ci_lo", "ci_hi"):
                setattr(m, f"{name}_ms", st[name])
            m.samples = event["samples_ms"]
            m.extra = {"inputs": event.get("inputs"), "moment": event.get("moment"),
                       "moment_start": event.get("moment_start"),
                       "cooldown_s": event.get("cooldown_s"), "retimed": event.get("retimed"),
                       "throttled": event.get("throttled"),
                       "interleaved": event.get("interleaved"),
                       "warmup_calls": event.get("warmup_calls"),
                       "details": event.get("details") or {}}
            if event.get("ops"):     # the runtime's per-operator profile (lutfarm bench --ops)
                m.extra["ops"] = event["ops"]
            memory = event.get("memory") or {}
            m.peak_mem_bytes, m.mem_method = memory.get("peak_bytes"), memory.get("method")
        return m


@dataclass
class Span:
    """One stretch of a board's time in a campaign (``timeline``): what it was doing, from when
    to when (wall clock, seconds since the epoch). ``device`` "controller" is the controller's
    own (the export before any board starts)."""

    device: str
    phase: str
    began: float
    ended: float
    detail: dict | None = None

    @property
    def seconds(self) -> float:
        return self.ended - self.began


_COLUMNS = [f.name for f in fields(Measurement) if f.name != "id"]
MEASUREMENT_COLUMNS = tuple(_COLUMNS)       # a measurement's stored columns, its id aside
_JSON_COLUMNS = {"samples", "extra"}


def _to_measurement(row) -> Measurement:
    d = dict(row)
    for c in _JSON_COLUMNS & d.keys():
        if d[c] is not None:
            d[c] = json.loads(d[c])
    if d.get("converged") is not None:
        d["converged"] = bool(d["converged"])
    return Measurement(**d)
