"""The measurement store: one SQLite file (WAL mode) or a lab's PostgreSQL database, a
versioned schema.

Every measurement is committed the moment it arrives, so killing the controller (or the agent)
loses nothing already measured; a campaign run again asks ``measured_keys`` and measures only
what is missing. Times are milliseconds; raw samples are kept as JSON. In a shared
(PostgreSQL) store device names are global, so this machine's ``local`` is kept as
``local@<hostname>``; asking for ``local`` means this machine there too.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path

from lutfarm import environment
from lutfarm.profiler.store.drivers import (
    StoreError,
    StoreUnavailable,
    connect,
    is_postgres,
    local_device_name,
)
from lutfarm.profiler.store.records import (
    _JSON_COLUMNS,
    MEASUREMENT_COLUMNS,
    Measurement,
    Span,
    _to_measurement,
)
from lutfarm.profiler.store.schema import _MIGRATIONS, _SCHEMA, APP_ID, SCHEMA_VERSION

log = logging.getLogger(__name__)


def default_db_path() -> str | Path:
    return environment.db_path()


class LeaseLost(StoreError):
    """A case's claim in a shared queue expired and another controller took the case over."""


class Store:
    """Thread-safe access to one store; open with ``Store(path)`` or
    ``Store("postgresql://user@host:port/dbname")``."""

    def __init__(self, location: str | os.PathLike):
        postgres = is_postgres(location)
        self.path = None if postgres else Path(location)
        is_new = False
        if self.path is not None:
            if self.path.is_dir():
                raise StoreError(f"{self.path} is a directory; give --db a file path such as "
                                 f"lutfarm.db")
            is_new = not self.path.exists() or self.path.stat().st_size == 0
            if not is_new and not _sqlite_header(self.path):
                raise StoreError(f"{self.path} is not a lutfarm database (not an SQLite file); "
                                 f"give --db a new file name or an existing lutfarm store")
            if is_new:
                self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.db = connect(location)
        self.location = self.db.location
        self.shared = self.db.shared
        self.local_name = local_device_name() if self.shared else "local"
        try:
            if is_new or (postgres and not self.db.tables()):   # an empty database is new
                self._create()
            else:
                self._check()
            self.db.pragmas()
        except StoreError:
            self.db.close()
            raise
        except _database_errors() as exc:      # not a store we can read
            self.db.close()
            raise StoreError(f"{self.location} is not a lutfarm database ({exc}); "
                             f"give --db a new file name or an existing lutfarm store") from None

    @property
    def conn(self):
        """The driver's connection (a shared store's is replaced after the server drops it)."""
        return self.db.conn

    def _name(self, device: str | None) -> str | None:
        """``local`` means this machine; in a shared store it has a global name."""
        return self.local_name if device == "local" else device

    def _create(self) -> None:
        """Create the schema under the database's write lock: of two processes opening the same
        new store (a controller and a watcher), one creates it and the other finds it made."""
        with self.db.transaction(exclusive=True):
            made = "meta" in self.db.tables()
            if not made:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    self.db.execute(self.db.ddl(statement))
                for key, value in (("app", APP_ID), ("schema_version", str(SCHEMA_VERSION))):
                    self.db.execute("INSERT INTO meta VALUES (?, ?)", (key, value))
        if made:
            self._check()

    def _check(self) -> None:
        tables = self.db.tables()
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall()) \
            if "meta" in tables else {}
        if meta.get("app") != APP_ID:
            what = "a PostgreSQL database" if self.shared else "an SQLite file"
            raise StoreError(f"{self.location} is {what} but not a lutfarm database; "
                             f"give --db a new file name or an existing lutfarm store")
        version = int(meta.get("schema_version", "0"))
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.location} has store schema v{version}, newer than this "
                             f"lutfarm (v{SCHEMA_VERSION}); upgrade lutfarm to read it")
        if version < 1:
            raise StoreError(f"{self.location} has unknown store schema v{version}")
        if version < SCHEMA_VERSION:   # migrate in place, one version at a time, atomically
            with self.db.transaction(exclusive=True):
                for v in range(version + 1, SCHEMA_VERSION + 1):
                    for statement in _MIGRATIONS[v]:
                        self.db.execute(self.db.ddl(statement))
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'",
                                (str(SCHEMA_VERSION),))

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def row_counts(self) -> dict[str, int]:
        """Rows per data table (what ``db info`` and ``db backup`` report)."""
        with self._lock:
            return {t: int(self.db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
                    for t in ("measurements", "contexts", "campaigns", "reports")}

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def check(self) -> list[str]:
        """What is wrong with the store's pages ([] when sound): SQLite's integrity check, or
        for PostgreSQL that the server answers with a lutfarm schema."""
        with self._lock:
            return self.db.check()

    def backup(self, target: str | os.PathLike) -> Path:
        """A consistent copy of an SQLite store into a new file, while campaigns write."""
        target = Path(target)
        if target.exists():
            raise StoreError(f"{target} exists; give the backup a new file name")
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.db.backup(target)
        return target

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing: each call is its own committed transaction ---------------------------------

    def start_campaign(self, device: str, runtime: str, space: str | None = None,
                       layout: str | None = None, classes: int | None = None,
                       settings: dict | None = None, owner: str | None = None,
                       priority: int = 0) -> int:
        with self._lock, self.db.transaction():
            return self.db.insert(
                "INSERT INTO campaigns (created, space, layout, classes, device, runtime, "
                "settings, owner, priority) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (time.time(), space, layout, classes, self._name(device), runtime,
                 json.dumps(settings or {}), owner, priority))

    def finish_campaign(self, campaign_id: int, summary: dict) -> None:
        with self._lock, self.db.transaction():
            self.db.execute("UPDATE campaigns SET finished = ?, summary = ? WHERE id = ?",
                            (time.time(), json.dumps(summary), campaign_id))

    def add_context(self, device: str, fingerprint: dict) -> int:
        with self._lock, self.db.transaction():
            return self.db.insert(
                "INSERT INTO contexts (device, created, fingerprint) VALUES (?, ?, ?)",
                (self._name(device), time.time(), json.dumps(fingerprint)))

    def retrying(self, fn, patience_s: float = 300.0, what: str = "the store"):
        """``fn()``, retried while a shared store's server is away (restart, network), for up
        to ``patience_s``; then the last ``StoreUnavailable`` is raised."""
        deadline, delay = time.monotonic() + patience_s, 0.25
        while True:
            try:
                return fn()
            except StoreUnavailable as exc:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("%s; retrying %s in %.1f s", exc, what, delay)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def add(self, m: Measurement, claim: tuple[str, str, str, str] | None = None,
            replay: bool = False) -> int:
        """Store ``m``. With ``claim`` (target, runtime, case, holder: a shared queue's lease)
        the claim is closed in the same transaction, and if it is no longer held (it expired
        and another controller took the case) nothing is stored: ``LeaseLost``. ``replay``
        (a journal written while the server was away): a measurement already stored (its
        commit arrived, its answer did not) is not stored twice."""
        with self._lock, self.db.transaction():
            if replay:
                row = self.db.execute(
                    "SELECT id FROM measurements WHERE device = ? AND runtime = ? AND "
                    "case_key = ? AND created = ?",
                    (self._name(m.device), m.runtime, m.case_key, m.created)).fetchone()
                if row:
                    m.id = int(row[0])
                    return m.id
            if claim is not None:
                target, runtime, key, holder = claim
                closed = self.db.execute(
                    "UPDATE case_queue SET state = 'done', holder = NULL, lease_until = NULL, "
                    "updated = ? WHERE target = ? AND runtime = ? AND case_key = ? "
                    "AND holder = ? AND state = 'leased'",
                    (time.time(), self._name(target), runtime, key, holder))
                if closed.rowcount != 1:
                    raise LeaseLost(f"{key}: another controller took it over after this "
                                    f"controller's lease expired; this measurement is dropped")
            m.id = self.db.insert(
                f"INSERT INTO measurements ({', '.join(MEASUREMENT_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(MEASUREMENT_COLUMNS))})", self._row(m))
            return m.id

    def _row(self, m: Measurement) -> list:
        """A record's column values as stored: JSON text, integer flags, global device names."""
        values = []
        for c in MEASUREMENT_COLUMNS:
            v = getattr(m, c)                      # shallow: asdict would deep-copy samples
            if c in _JSON_COLUMNS and v is not None:
                v = json.dumps(v)
            elif c in ("device", "kind"):
                v = self._name(v)
            elif isinstance(v, bool):
                v = int(v)
            values.append(v)
        return values

    def add_spans(self, campaign_id: int, spans: list[Span]) -> None:
        """A campaign's timeline, written once as it ends (one transaction, not one per span:
        the timeline must not cost the campaign commits)."""
        with self._lock, self.db.transaction():
            self.db.insert_many(
                "INSERT INTO timeline (campaign_id, device, phase, began, ended, detail) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(campaign_id, self._name(s.device), s.phase, s.began, s.ended,
                  json.dumps(s.detail) if s.detail else None) for s in spans])

    def add_report(self, target: str, runtime: str, kind: str, report: dict) -> int:
        """A report about a configuration (e.g. kind="validation"), kept with its LUT."""
        with self._lock, self.db.transaction():
            return self.db.insert(
                "INSERT INTO reports (created, target, runtime, kind, report) VALUES (?, ?, ?, ?, ?)",
                (time.time(), self._name(target), runtime, kind, json.dumps(report)))

    # -- reading -------------------------------------------------------------------------------

    def latest_report(self, target: str, runtime: str, kind: str) -> dict | None:
        with self._lock:
            row = self.db.execute(
                "SELECT report FROM reports WHERE target = ? AND runtime = ? AND kind = ? "
                "ORDER BY id DESC LIMIT 1", (self._name(target), runtime, kind)).fetchone()
        return json.loads(row[0]) if row else None

    def measured_keys(self, target: str, runtime: str) -> set[str]:
        """Cases with a good measurement on ``target`` (a device kind, or one device's name):
        what a resumed campaign skips."""
        with self._lock:
            rows = self.db.execute(
                "SELECT DISTINCT case_key FROM measurements WHERE (kind = ? OR device = ?) "
                "AND runtime = ? AND status = 'ok'", (self._name(target), self._name(target), runtime))
            return {r[0] for r in rows}

    def latest(self, target: str, runtime: str, with_samples: bool = False) -> dict[str, Measurement]:
        """The newest good measurement of every case on ``target`` (a kind or a device)."""
        cols = [c for c in MEASUREMENT_COLUMNS if with_samples or c != "samples"]
        with self._lock:
            rows = self.db.execute(
                f"SELECT id, {', '.join(cols)} FROM measurements WHERE id IN ("
                " SELECT MAX(id) FROM measurements WHERE (kind = ? OR device = ?)"
                " AND runtime = ? AND status = 'ok' GROUP BY case_key)",
                (self._name(target), self._name(target), runtime)).fetchall()
        return {r["case_key"]: _to_measurement(r) for r in rows}

    def failures(self, target: str, runtime: str) -> dict[str, str]:
        """The newest error of every case on ``target`` whose newest measurement failed."""
        with self._lock:
            rows = self.db.execute(
                "SELECT case_key, status, error FROM measurements WHERE id IN ("
                " SELECT MAX(id) FROM measurements WHERE (kind = ? OR device = ?)"
                " AND runtime = ? GROUP BY case_key)", (self._name(target), self._name(target), runtime)).fetchall()
        return {r[0]: r[2] or "unknown error" for r in rows if r[1] == "failed"}

    def measurements(self, device: str | None = None, runtime: str | None = None,
                     campaign_id: int | None = None):
        """Every measurement (filtered by device, runtime or campaign) as a pandas DataFrame,
        one row per measurement in the order taken, one column per ``Measurement`` field (raw
        samples left out: ``iter_measurements`` has them)."""
        import pandas as pd

        rows = [asdict(m) for m in self.iter_measurements(device, runtime, campaign_id)]
        columns = [f.name for f in fields(Measurement)]
        frame = pd.DataFrame(rows, columns=columns).drop(columns=["samples"])
        frame["created"] = pd.to_datetime(frame["created"], unit="s")
        return frame

    def iter_measurements(self, device: str | None = None, runtime: str | None = None,
                          campaign_id: int | None = None) -> Iterator[Measurement]:
        """The same measurements as records."""
        clauses, args = [], []
        for col, value in (("device", self._name(device)), ("runtime", runtime),
                           ("campaign_id", campaign_id)):
            if value is not None:
                clauses.append(f"{col} = ?")
                args.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self.db.execute(
                f"SELECT id, {', '.join(MEASUREMENT_COLUMNS)} FROM measurements {where} ORDER BY id",
                args).fetchall()
        return (_to_measurement(r) for r in rows)

    def history(self, target: str, runtime: str, keys: list[str] | None = None,
                depth: int = 2) -> dict[str, list[Measurement]]:
        """The ``depth`` newest good measurements of each case, newest first."""
        out: dict[str, list[Measurement]] = {}
        cols = [c for c in MEASUREMENT_COLUMNS if c != "samples"]
        with self._lock:
            rows = self.db.execute(
                f"SELECT id, {', '.join(cols)} FROM measurements WHERE (kind = ? OR device = ?) "
                "AND runtime = ? AND status = 'ok' ORDER BY id DESC",
                (self._name(target), self._name(target), runtime)).fetchall()
        wanted = set(keys) if keys is not None else None
        for r in rows:
            k = r["case_key"]
            if (wanted is None or k in wanted) and len(out.setdefault(k, [])) < depth:
                out[k].append(_to_measurement(r))
        return out

    def configurations(self) -> list[tuple[str, str, int]]:
        """(device kind, runtime, number of measured cases) for every configuration stored:
        the LUTs it can build (model files timed by ``lutfarm bench`` are no LUT's cases)."""
        with self._lock:
            return [tuple(r) for r in self.db.execute(
                "SELECT COALESCE(kind, device), runtime, COUNT(DISTINCT case_key) "
                "FROM measurements WHERE status = 'ok' AND substr(case_key, 1, 6) <> 'Model_' "
                "GROUP BY COALESCE(kind, device), runtime ORDER BY 1, 2")]

    def model_measurements(self, limit: int = 200) -> list[Measurement]:
        """The newest measurements of model files (``lutfarm bench``), newest first."""
        cols = [c for c in MEASUREMENT_COLUMNS if c != "samples"]
        with self._lock:
            rows = self.db.execute(
                f"SELECT id, {', '.join(cols)} FROM measurements WHERE "
                "substr(case_key, 1, 6) = 'Model_' ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [_to_measurement(r) for r in rows]

    def measurement(self, measurement_id: int) -> Measurement | None:
        """One measurement by its id (with its raw samples)."""
        with self._lock:
            row = self.db.execute(f"SELECT id, {', '.join(MEASUREMENT_COLUMNS)} FROM "
                                  "measurements WHERE id = ?", (measurement_id,)).fetchone()
        return _to_measurement(row) if row else None

    def emulated(self, target: str, runtime: str) -> str | None:
        """Why the measurements of this configuration come from an emulated CPU (their
        contexts say so), or None: emulated timings must never pass for hardware timings."""
        with self._lock:
            rows = self.db.execute(
                "SELECT fingerprint FROM contexts WHERE id IN (SELECT DISTINCT context_id "
                "FROM measurements WHERE (kind = ? OR device = ?) AND runtime = ?)",
                (self._name(target), self._name(target), runtime)).fetchall()
        reasons = [json.loads(r[0]).get("emulated") for r in rows]
        return next((r for r in reasons if r), None)

    def mcu_target(self, target: str, runtime: str) -> dict | None:
        """The microcontroller (board, core, clock, kernels, timer, firmware sizes) the newest
        measurement context of this configuration ran on, or None for other runtimes."""
        from lutfarm.profiler.mcu_target import board_target
        with self._lock:
            row = self.db.execute(
                "SELECT fingerprint FROM contexts WHERE id = (SELECT MAX(context_id) "
                "FROM measurements WHERE (kind = ? OR device = ?) AND runtime = ?)",
                (self._name(target), self._name(target), runtime)).fetchone()
        return board_target(json.loads(row[0]).get("runtime")) if row else None

    def last_campaign_layout(self, target: str, runtime: str) -> tuple[str, str, int] | None:
        """(space, layout, classes) of the newest campaign for this configuration."""
        with self._lock:
            row = self.db.execute(
                "SELECT space, layout, classes FROM campaigns WHERE device = ? AND runtime = ? "
                "AND layout IS NOT NULL ORDER BY id DESC LIMIT 1",
                (self._name(target), runtime)).fetchone()
        return tuple(row) if row else None

    def timeline(self, campaign_id: int) -> list[Span]:
        """The spans a campaign recorded, in time order (empty for one run before schema 4)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT device, phase, began, ended, detail FROM timeline WHERE campaign_id = ? "
                "ORDER BY began, id", (campaign_id,)).fetchall()
        return [Span(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None) for r in rows]

    def last_timeline_campaign(self) -> int | None:
        with self._lock:
            row = self.db.execute("SELECT MAX(campaign_id) FROM timeline").fetchone()
        return int(row[0]) if row and row[0] is not None else None

    def context(self, context_id: int) -> dict:
        with self._lock:
            row = self.db.execute("SELECT fingerprint FROM contexts WHERE id = ?",
                                  (context_id,)).fetchone()
        return json.loads(row[0]) if row else {}


def _sqlite_header(path: Path) -> bool:
    """Whether the file starts as every SQLite database does (a damaged one still does)."""
    with open(path, "rb") as f:
        return f.read(16) == b"SQLite format 3\x00"


def _database_errors() -> tuple[type[BaseException], ...]:
    """The driver errors that mean "this database is not a store we can read"."""
    import sqlite3
    errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
    try:
        import psycopg
        errors += (psycopg.Error,)
    except ImportError:
        pass
    return errors
