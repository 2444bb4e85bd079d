"""Measurements a controller could not write because the shared store was away, kept locally.

While a PostgreSQL server restarts (or the network to it is down) the boards keep measuring;
each result that cannot be committed is appended to a JSON-lines file next to the model cache
(fsynced: a controller that dies now still has it). Once the store answers again the journal
is replayed in order: a measurement whose commit did reach the server before the connection
dropped is recognised and not stored twice; one whose lease another controller took over
meanwhile is dropped (that controller measures it). ``lutfarm db replay FILE --db URL`` replays
a journal a controller left behind.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

from lutfarm import environment
from lutfarm.profiler.store import LeaseLost, Measurement, Store

_FIELDS = {f.name for f in fields(Measurement)}


def _line(m: Measurement, claim: tuple | None) -> str:
    record = {k: v for k, v in asdict(m).items() if k != "id"}
    return json.dumps({"measurement": record, "claim": claim}) + "\n"


def journal_path(campaign_id: int) -> Path:
    return environment.cache_dir() / "journal" / f"campaign-{campaign_id}-{os.getpid()}.jsonl"


class Journal:
    """An append-only file of (measurement, claim) entries not yet in the store."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.entries: list[tuple[Measurement, tuple | None]] = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    m = Measurement(**{k: v for k, v in entry["measurement"].items()
                                       if k in _FIELDS})
                    self.entries.append((m, tuple(entry["claim"]) if entry["claim"] else None))

    def __len__(self) -> int:
        return len(self.entries)

    def append(self, m: Measurement, claim: tuple | None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(_line(m, claim))
            f.flush()
            os.fsync(f.fileno())
        self.entries.append((m, claim))

    def replay(self, store: Store) -> tuple[int, list[str]]:
        """Write every entry in order; returns (stored, case keys dropped because another
        controller took them over). Stops at the first ``StoreUnavailable`` with the rest kept."""
        stored, dropped = 0, []
        try:
            while self.entries:
                m, claim = self.entries[0]
                try:
                    store.add(m, claim, replay=True)
                    stored += 1
                except LeaseLost:
                    dropped.append(m.case_key)
                self.entries.pop(0)
        finally:
            self._rewrite()
        return stored, dropped

    def _rewrite(self) -> None:
        if not self.entries:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "w") as f:
            for m, claim in self.entries:
                f.write(_line(m, claim))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
