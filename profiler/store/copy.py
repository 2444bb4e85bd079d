"""Copy one store into another (SQLite file <-> a lab's PostgreSQL store), row for row.

Every context, campaign (with its timeline), measurement (raw samples included) and report is
copied with its values unchanged; ids are the target's own, and the links between rows (a
measurement's campaign and context, a timeline span's campaign) are remapped to them. This
machine's ``local`` device takes the target's name for it (``local@<hostname>`` in a shared
store, ``local`` in a file), so a round trip from the same machine gives back the original. Rows the target already holds are skipped, so a copy
that was interrupted is simply run again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from lutfarm.profiler.store import Store, table_columns

BATCH = 2000

# table -> (its columns other than id, from the schema; the columns that say "this row is
# already there"). The shared queue's tables (case_queue, board_waits, queue_controllers) are live
# coordination state, not data, and are not copied.
_TABLES = {
    "contexts": (table_columns("contexts"), ("device", "created", "fingerprint")),
    "campaigns": (table_columns("campaigns"), ("device", "runtime", "created")),
    "reports": (table_columns("reports"), ("target", "runtime", "kind", "created")),
}
_DEVICE_COLUMNS = {"device", "kind", "target"}


@dataclass
class CopySummary:
    copied: dict[str, int] = field(default_factory=dict)     # table -> rows written
    skipped: dict[str, int] = field(default_factory=dict)    # table -> rows already there

    def line(self) -> str:
        parts = [f"{self.copied.get(t, 0)} {t}" + (f" ({self.skipped[t]} already there)"
                                                   if self.skipped.get(t) else "")
                 for t in ("measurements", "contexts", "campaigns", "reports", "timeline")]
        return "copied " + ", ".join(parts)


def copy_store(source: Store, target: Store,
               progress: Callable[[int, int], None] | None = None) -> CopySummary:
    """Copy everything in ``source`` that ``target`` lacks; ``progress(done, total)`` is called
    per batch of measurements."""
    summary = CopySummary()

    def rename(name):
        return target.local_name if name == source.local_name else name

    def keyed(row: dict, key_columns) -> tuple:
        return tuple(rename(row[c]) if c in _DEVICE_COLUMNS else row[c] for c in key_columns)

    ids: dict[str, dict[int, int]] = {}
    new_campaigns: set[int] = set()      # source ids of campaigns the target did not have
    for table, (columns, key_columns) in _TABLES.items():
        have = {}
        for row in target.db.execute(f"SELECT id, {', '.join(key_columns)} FROM {table}"):
            have[tuple(row[1:])] = row[0]
        ids[table] = {}
        copied = skipped = 0
        rows = source.db.execute(f"SELECT id, {', '.join(columns)} FROM {table} ORDER BY id")
        with target.db.transaction():
            for row in rows.fetchall():
                row = dict(row)
                key = keyed(row, key_columns)
                if key in have:
                    ids[table][row["id"]] = have[key]
                    skipped += 1
                    continue
                values = [rename(row[c]) if c in _DEVICE_COLUMNS else row[c] for c in columns]
                new_id = target.db.insert(
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})", values)
                ids[table][row["id"]] = have[key] = new_id
                copied += 1
                if table == "campaigns":
                    new_campaigns.add(row["id"])
        summary.copied[table], summary.skipped[table] = copied, skipped

    columns = table_columns("measurements")
    key_columns = ("device", "runtime", "case_key", "created", "status")
    have_m = {tuple(r) for r in target.db.execute(
        f"SELECT {', '.join(key_columns)} FROM measurements")}
    total = source.db.execute("SELECT COUNT(*) FROM measurements").fetchone()[0]
    done = copied = skipped = 0
    last_id = 0
    insert = (f"INSERT INTO measurements ({', '.join(columns)}) "
              f"VALUES ({', '.join('?' * len(columns))})")
    while True:   # in id order, a batch at a time: a store of millions never sits in memory
        batch = source.db.execute(
            f"SELECT id, {', '.join(columns)} FROM measurements WHERE id > ? ORDER BY id LIMIT ?",
            (last_id, BATCH)).fetchall()
        if not batch:
            break
        out = []
        for row in batch:
            row = dict(row)
            key = keyed(row, key_columns)
            if key in have_m:
                skipped += 1
                continue
            have_m.add(key)
            row["campaign_id"] = ids["campaigns"].get(row["campaign_id"])
            row["context_id"] = ids["contexts"].get(row["context_id"])
            out.append([rename(row[c]) if c in _DEVICE_COLUMNS else row[c] for c in columns])
        with target.db.transaction():
            target.db.insert_many(insert, out)
        copied += len(out)
        done += len(batch)
        last_id = batch[-1]["id"]
        if progress:
            progress(done, total)
    summary.copied["measurements"], summary.skipped["measurements"] = copied, skipped
    # a campaign's timeline comes with it (a campaign already there has its own)
    columns = table_columns("timeline")
    spans = []
    for row in source.db.execute(f"SELECT {', '.join(columns)} FROM timeline ORDER BY id"):
        row = dict(row)
        if row["campaign_id"] in new_campaigns:
            row["campaign_id"] = ids["campaigns"][row["campaign_id"]]
            spans.append([rename(row[c]) if c in _DEVICE_COLUMNS else row[c] for c in columns])
    with target.db.transaction():
        target.db.insert_many(f"INSERT INTO timeline ({', '.join(columns)}) "
                              f"VALUES ({', '.join('?' * len(columns))})", spans)
    summary.copied["timeline"] = len(spans)
    return summary


def dump(store: Store) -> dict[str, list[dict]]:
    """Every row of every table without its ids, links as the rows they point at, JSON parsed:
    what two stores holding the same data agree on (the round-trip tests compare these)."""
    contexts = {r["id"]: dict(r) for r in store.db.execute("SELECT * FROM contexts")}
    campaigns = {r["id"]: dict(r) for r in store.db.execute("SELECT * FROM campaigns")}

    def plain(row: dict) -> dict:
        row = {k: v for k, v in row.items() if k != "id"}
        for k in ("fingerprint", "settings", "summary", "report", "samples", "extra", "detail"):
            if isinstance(row.get(k), str):
                row[k] = json.loads(row[k])
        return row

    out = {t: [plain(dict(r)) for r in store.db.execute(f"SELECT * FROM {t} ORDER BY id")]
           for t in ("contexts", "campaigns", "reports")}
    out["measurements"] = []
    for r in store.db.execute("SELECT * FROM measurements ORDER BY id"):
        row = dict(r)
        row["campaign"] = plain(campaigns[row["campaign_id"]]) if row["campaign_id"] else None
        row["context"] = plain(contexts[row["context_id"]]) if row["context_id"] else None
        del row["campaign_id"], row["context_id"]
        out["measurements"].append(plain(row))
    out["timeline"] = []
    for r in store.db.execute("SELECT * FROM timeline ORDER BY id"):
        row = dict(r)
        row["campaign"] = plain(campaigns[row.pop("campaign_id")])
        out["timeline"].append(plain(row))
    return out
