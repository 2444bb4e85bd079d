"""The store's schema, in one place: tables, migrations, and the column lists read from them.

Statements are written in SQLite's spelling; the PostgreSQL driver translates them.
"""

from __future__ import annotations

import re

SCHEMA_VERSION = 4
APP_ID = "lutfarm"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, finished REAL,
    space TEXT, layout TEXT, classes INTEGER, device TEXT NOT NULL, runtime TEXT NOT NULL,
    settings TEXT, summary TEXT, owner TEXT, priority INTEGER);
CREATE TABLE contexts (
    id INTEGER PRIMARY KEY, device TEXT NOT NULL, created REAL NOT NULL, fingerprint TEXT NOT NULL);
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER REFERENCES campaigns(id),
    context_id INTEGER REFERENCES contexts(id),
    device TEXT NOT NULL, kind TEXT, runtime TEXT NOT NULL, case_key TEXT NOT NULL,
    model_sha256 TEXT, status TEXT NOT NULL CHECK (status IN ('ok', 'failed')), error TEXT,
    created REAL NOT NULL,
    init_ms REAL, first_ms REAL, batch INTEGER, attempts INTEGER, converged INTEGER,
    count INTEGER, min_ms REAL, max_ms REAL, mean_ms REAL, std_ms REAL, median_ms REAL,
    p90_ms REAL, p95_ms REAL, p99_ms REAL, ci_lo_ms REAL, ci_hi_ms REAL, rel_ci REAL, cv REAL,
    sampling_s REAL, samples TEXT, extra TEXT, peak_mem_bytes INTEGER, mem_method TEXT);
CREATE TABLE reports (
    id INTEGER PRIMARY KEY, created REAL NOT NULL, target TEXT NOT NULL, runtime TEXT NOT NULL,
    kind TEXT NOT NULL, report TEXT NOT NULL);
CREATE TABLE case_queue (
    target TEXT NOT NULL, runtime TEXT NOT NULL, case_key TEXT NOT NULL,
    campaign_id INTEGER, priority INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('pending', 'leased', 'done')),
    holder TEXT, lease_until REAL, updated REAL NOT NULL,
    PRIMARY KEY (target, runtime, case_key));
CREATE TABLE board_waits (
    device TEXT NOT NULL, holder TEXT NOT NULL, priority INTEGER NOT NULL, since REAL NOT NULL,
    PRIMARY KEY (device, holder));
CREATE TABLE queue_controllers (
    target TEXT NOT NULL, runtime TEXT NOT NULL, holder TEXT NOT NULL, boards INTEGER NOT NULL,
    until REAL NOT NULL, PRIMARY KEY (target, runtime, holder));
CREATE TABLE timeline (
    id INTEGER PRIMARY KEY, campaign_id INTEGER REFERENCES campaigns(id),
    device TEXT NOT NULL, phase TEXT NOT NULL, began REAL NOT NULL, ended REAL NOT NULL,
    detail TEXT);
CREATE INDEX measurements_lookup ON measurements (device, runtime, status, case_key);
CREATE INDEX measurements_kind ON measurements (kind, runtime, status, case_key);
CREATE INDEX timeline_campaign ON timeline (campaign_id);
"""

# schema version -> the statements that bring a store of the version before it up to it
_MIGRATIONS = {
    2: ["ALTER TABLE measurements ADD COLUMN peak_mem_bytes INTEGER",
        "ALTER TABLE measurements ADD COLUMN mem_method TEXT"],
    # campaigns of several people share one farm: who asked, how urgent; the shared case queue
    3: ["ALTER TABLE campaigns ADD COLUMN owner TEXT",
        "ALTER TABLE campaigns ADD COLUMN priority INTEGER",
        *(t.strip() for t in _SCHEMA[_SCHEMA.index("CREATE TABLE case_queue"):
                                     _SCHEMA.index("CREATE TABLE queue_controllers")].split(";")
       if t.strip())],
    # where each board's time went in a campaign (connect, deploy, uploads, jobs, …); how many
    # boards each controller brings to a shared queue (chunks are sized over all of them)
    4: [*(t.strip() for t in _SCHEMA[_SCHEMA.index("CREATE TABLE queue_controllers"):
                                     _SCHEMA.index("CREATE INDEX")].split(";") if t.strip()),
        "CREATE INDEX timeline_campaign ON timeline (campaign_id)"],
}


def table_columns(table: str) -> tuple[str, ...]:
    """A table's columns other than ``id``, read from the schema above: the one list that
    ``db copy`` and anything else writing whole rows uses, so a new column is never left out."""
    start = _SCHEMA.index(f"CREATE TABLE {table} (")
    body = _SCHEMA[_SCHEMA.index("(", start) + 1:_SCHEMA.index(");", start)]
    names = []
    for part in re.split(r",(?![^()]*\))", body):      # commas outside parentheses
        name = part.split()[0]
        if name not in ("id", "PRIMARY", "CHECK", "FOREIGN", "UNIQUE"):
            names.append(name)
    return tuple(names)
