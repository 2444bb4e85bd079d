"""What the dashboard shows, read from a store with aggregate SQL (a lab's store holds hundreds
of thousands of measurements: no page iterates them in Python). Read-only."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from lutfarm.profiler.store.store import Store

RECENT_S = 3600.0       # a board's health is judged on its last hour of work


@dataclass
class Board:
    name: str
    kinds: list[str]
    runtimes: list[str]
    last_seen: float | None          # its newest measurement
    last_check: float | None         # its newest context: when an agent last described it
    measurements: int
    failed_recent: int
    ok_recent: int
    cpu: str = ""
    emulated: str | None = None
    temp_c: dict = field(default_factory=dict)
    freq_khz: dict = field(default_factory=dict)
    holders: list[str] = field(default_factory=list)   # shared queue: who leases its kind's cases

    @property
    def health(self) -> str:
        done = self.failed_recent + self.ok_recent
        if not done:
            return "idle"
        share = self.failed_recent / done
        return "ok" if share == 0 else "degraded" if share < 0.5 else "failing"


@dataclass
class Campaign:
    id: int
    created: float
    finished: float | None
    target: str
    runtime: str
    layout: str
    owner: str | None
    priority: int
    planned: int | None
    to_measure: int | None
    ok: int
    failed: int
    last: float | None
    summary: dict

    @property
    def progress(self) -> float | None:
        if not self.to_measure:
            return 1.0 if self.finished else None
        return min(1.0, (self.ok + self.failed) / self.to_measure)

    @property
    def state(self) -> str:
        if self.finished:
            return "interrupted" if self.summary.get("interrupted") else "finished"
        return "running"


def _sum(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def boards(store: Store, now: float | None = None) -> list[Board]:
    now = time.time() if now is None else now
    db = store.db
    rows = db.execute(
        f"SELECT device, MAX(created), COUNT(*), {_sum('status = ? AND created > ?')}, "
        f"{_sum('status = ? AND created > ?')} FROM measurements GROUP BY device ORDER BY device",
        ("failed", now - RECENT_S, "ok", now - RECENT_S)).fetchall()
    out = {r[0]: Board(r[0], [], [], r[1], None, int(r[2]), int(r[3] or 0), int(r[4] or 0))
           for r in rows}
    for device, kind, runtime in db.execute(
            "SELECT device, kind, runtime FROM measurements GROUP BY device, kind, runtime"):
        b = out[device]
        if kind and kind not in b.kinds:
            b.kinds.append(kind)
        if runtime not in b.runtimes:
            b.runtimes.append(runtime)
    for device, created, fingerprint in db.execute(
            "SELECT device, created, fingerprint FROM contexts WHERE id IN "
            "(SELECT MAX(id) FROM contexts GROUP BY device)"):
        b = out.setdefault(device, Board(device, [], [], None, None, 0, 0, 0))
        fp = json.loads(fingerprint)
        b.last_check, b.cpu, b.emulated = created, fp.get("cpu_model") or "", fp.get("emulated")
        b.temp_c, b.freq_khz = fp.get("temp_c") or {}, fp.get("freq_khz") or {}
    # the newest per-case moment (temperature and clock while timing) beats the job's start
    ids = [r[0] for r in db.execute("SELECT MAX(id) FROM measurements WHERE status = 'ok' "
                                    "GROUP BY device")]
    for i in ids:
        device, extra = db.execute("SELECT device, extra FROM measurements WHERE id = ?",
                                   (i,)).fetchone()
        moment = (json.loads(extra) if extra else {}).get("moment") or {}
        if moment.get("temp_c"):
            out[device].temp_c = moment["temp_c"]
        if moment.get("freq_khz"):
            out[device].freq_khz = moment["freq_khz"]
    holders: dict[str, list[str]] = {}
    for target, holder, n in db.execute(
            "SELECT target, holder, COUNT(*) FROM case_queue WHERE state = 'leased' AND "
            "lease_until > ? GROUP BY target, holder", (now,)):
        holders.setdefault(target, []).append(f"{holder} ({n} cases)")
    for b in out.values():
        b.holders = [h for k in {b.name, *b.kinds} for h in holders.get(k, [])]
    return list(out.values())


def campaigns(store: Store, limit: int = 200, campaign_id: int | None = None) -> list[Campaign]:
    """The newest ``limit`` campaigns (or the one ``campaign_id``), with live counts."""
    only = "campaign_id = ?" if campaign_id is not None else "campaign_id IS NOT NULL"
    counts = {r[0]: (int(r[1] or 0), int(r[2] or 0), r[3]) for r in store.db.execute(
        f"SELECT campaign_id, {_sum('status = ?')}, {_sum('status = ?')}, MAX(created) "
        f"FROM measurements WHERE {only} GROUP BY campaign_id",
        ("ok", "failed", *([campaign_id] if campaign_id is not None else [])))}
    out = []
    for r in store.db.execute(
            "SELECT id, created, finished, device, runtime, space, layout, owner, priority, "
            "settings, summary FROM campaigns WHERE id = ? OR ? ORDER BY id DESC LIMIT ?",
            (campaign_id or 0, campaign_id is None, limit)):
        settings = json.loads(r["settings"] or "{}")
        summary = json.loads(r["summary"] or "{}")
        ok, failed, last = counts.get(r["id"], (0, 0, None))
        to_measure = settings.get("to_measure")
        if to_measure is None and summary:
            to_measure = summary.get("planned", 0) - summary.get("skipped", 0)
        out.append(Campaign(r["id"], r["created"], r["finished"], r["device"], r["runtime"],
                            f"{r['space'] or ''}/{r['layout'] or ''}", r["owner"],
                            int(r["priority"] or 0), settings.get("planned",
                                                                  summary.get("planned")),
                            to_measure, ok, failed, last, summary))
    return out


def campaign_failures(store: Store, campaign_id: int, limit: int = 200) -> list[tuple]:
    return [tuple(r) for r in store.db.execute(
        "SELECT case_key, device, error, created FROM measurements WHERE campaign_id = ? AND "
        "status = 'failed' ORDER BY id DESC LIMIT ?", (campaign_id, limit))]


def configurations(store: Store) -> list[dict]:
    """Every (target, runtime) with measured cases: the LUTs the store can build."""
    from lutfarm.profiler.mcu_target import describe_target
    return [{"target": t, "runtime": r, "cases": n, "emulated": store.emulated(t, r),
             "layout": store.last_campaign_layout(t, r),
             "mcu": describe_target(store.mcu_target(t, r))}
            for t, r, n in store.configurations()]


def reports(store: Store, limit: int = 200) -> list[dict]:
    return [{"id": r[0], "created": r[1], "target": r[2], "runtime": r[3], "kind": r[4]}
            for r in store.db.execute(
                "SELECT id, created, target, runtime, kind FROM reports ORDER BY id DESC LIMIT ?",
                (limit,))]


def report(store: Store, report_id: int) -> dict | None:
    row = store.db.execute("SELECT target, runtime, kind, created, report FROM reports "
                           "WHERE id = ?", (report_id,)).fetchone()
    if row is None:
        return None
    return {"target": row[0], "runtime": row[1], "kind": row[2], "created": row[3],
            "report": json.loads(row[4])}


@dataclass
class ModelBench:
    """One model file timed on one device (``lutfarm bench``), as the dashboard lists it."""

    measurement: object              # the store's Measurement
    model: str                       # the file's name, as the campaign recorded it
    sha256: str
    emulated: str | None

    @property
    def ops(self) -> dict | None:
        return self.measurement.ops


def model_benches(store: Store, limit: int = 200, measurement_id: int | None = None
                  ) -> list[ModelBench]:
    """The newest model-file measurements (or the one ``measurement_id``), with their files'
    names from their campaigns."""
    found = [store.measurement(measurement_id)] if measurement_id is not None else \
        store.model_measurements(limit)
    found = [m for m in found if m is not None and m.case_key.startswith("Model_")]
    files = {}
    for cid in {m.campaign_id for m in found if m.campaign_id is not None}:
        row = store.db.execute("SELECT settings FROM campaigns WHERE id = ?", (cid,)).fetchone()
        files[cid] = json.loads(row[0] or "{}").get("model_file") or {} if row else {}
    contexts = {c: store.context(c) for c in {m.context_id for m in found} if c is not None}
    return [ModelBench(m, files.get(m.campaign_id, {}).get("name", m.case_key),
                       files.get(m.campaign_id, {}).get("sha256", ""),
                       contexts.get(m.context_id, {}).get("emulated")) for m in found]
