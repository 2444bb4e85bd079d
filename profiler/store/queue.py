"""One device kind's cases claimed in a shared (PostgreSQL) store: several controllers, one farm.

``WorkQueue``'s interface over the ``case_queue`` table. Every controller that plans a case
puts it there (once: the row is keyed by target, runtime configuration and case); a device
takes a chunk with ``SELECT … FOR UPDATE SKIP LOCKED``, so two controllers never claim the same
case, and holds it under a lease a heartbeat renews. A controller killed with ``kill -9`` stops
renewing: when its leases expire, its cases are pending again for whoever is still running.
Its measurement and the end of its claim are one transaction (``Store.add(m, claim=…)``), so a
case is stored once even when a lease was lost to a slow controller: the late writer's insert
is rolled back. Higher-priority campaigns' cases are taken first, and a board another
controller's higher-priority campaign waits for is handed over between chunks
(``board_waits``).
"""

from __future__ import annotations

import logging
import threading
import time

from lutfarm.profiler.store.store import LeaseLost, Store  # noqa: F401 (LeaseLost: raised by Store.add)

log = logging.getLogger(__name__)

LEASE_S = 60.0
POLL_S = 0.5
BOARDS_TTL_S = 2.0    # how stale the other controllers' board count may be
PENDING_TTL_S = 0.5   # how stale the count of claimable cases may be
PATIENCE_S = 300.0    # how long queue operations wait for a restarting server


class StoreQueue:
    """A kind's cases, shared through the store with every controller planning them."""

    shared = True       # other controllers take from it too: never claim everything at once

    def __init__(self, store: Store, target: str, runtime: str, keys: list[str],
                 campaign_id: int, holder: str, priority: int = 0, lease_s: float = LEASE_S,
                 planned_at: float | None = None, boards: int = 1):
        self.store, self.target, self.runtime = store, store._name(target), runtime
        self.holder, self.lease_s, self.priority = holder, lease_s, priority
        self.keys = list(keys)
        self._crashes: dict[str, int] = {}
        self._stopped = False
        self._held: set[str] = set()
        self._lock = threading.Lock()
        # wakes a device waiting at the queue's tail when a sibling of this controller finishes
        # or gives cases back (other controllers' changes are seen by polling)
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self.patience_s = PATIENCE_S
        self._retrying(lambda: self._enqueue(campaign_id, planned_at if planned_at is not None
                                             else time.time()))
        self._own_boards, self._others, self._others_at = boards, 0, float("-inf")
        self._pending, self._pending_at = 0, float("-inf")
        self._order = {k: i for i, k in enumerate(self.keys)}   # chunks keep the plan's order
        self._retrying(self._register)
        self._beat = threading.Event()
        self._heart = threading.Thread(target=self._heartbeat, daemon=True,
                                       name=f"lease-{target}")
        self._heart.start()

    # -- the table ------------------------------------------------------------------------------

    def _retrying(self, fn):
        """Every queue operation waits out a server restart (the journal keeps results)."""
        return self.store.retrying(fn, self.patience_s, "the case queue")

    def _sql(self, sql: str, args=()):
        def run():
            with self.store._lock:
                return self.store.db.execute(sql, args)
        return self._retrying(run)

    def _enqueue(self, campaign_id: int, planned_at: float) -> None:
        """Put this controller's cases in the queue. A row already there is left alone, except a
        ``done`` one finished before this campaign was planned: its case was found missing,
        so it failed then, and is due again. One finished since was measured by another
        controller meanwhile and stays done."""
        now = time.time()
        with self.store._lock, self.store.db.transaction():
            self.store.db.insert_many(
                "INSERT INTO case_queue (target, runtime, case_key, campaign_id, priority, state, "
                "updated) VALUES (?, ?, ?, ?, ?, 'pending', ?) "
                "ON CONFLICT (target, runtime, case_key) DO UPDATE SET state = 'pending', "
                "campaign_id = excluded.campaign_id, priority = excluded.priority, "
                "holder = NULL, lease_until = NULL, updated = excluded.updated "
                "WHERE case_queue.state = 'done' AND case_queue.updated < ?",
                [(self.target, self.runtime, k, campaign_id, self.priority, now, planned_at)
                 for k in self.keys])
            # a pending row of a lower-priority campaign rises to this one's priority
            self.store.db.execute(
                "UPDATE case_queue SET priority = ? WHERE target = ? AND runtime = ? "
                "AND case_key = ANY(?) AND state <> 'done' AND priority < ?",
                (self.priority, self.target, self.runtime, self.keys, self.priority))

    def _claimable(self) -> str:
        return ("target = ? AND runtime = ? AND case_key = ANY(?) AND "
                "(state = 'pending' OR (state = 'leased' AND lease_until < ?))")

    def _register(self) -> None:
        """Say how many boards this controller brings (renewed with the leases): every
        controller sizes its chunks over all the campaign's boards, not its own."""
        with self.store._lock, self.store.db.transaction():
            self.store.db.execute(
                "INSERT INTO queue_controllers (target, runtime, holder, boards, until) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, runtime, holder) DO UPDATE SET "
                "boards = excluded.boards, until = excluded.until",
                (self.target, self.runtime, self.holder, self._own_boards,
                 time.time() + self.lease_s))

    def boards(self, own: int) -> int:
        """Boards serving this queue: ``own`` (this controller's live ones) and those the other
        controllers registered (read at most every ``BOARDS_TTL_S``)."""
        self._own_boards = own
        if time.monotonic() - self._others_at > BOARDS_TTL_S:
            self._others = int(self._sql(
                "SELECT COALESCE(SUM(boards), 0) FROM queue_controllers WHERE target = ? AND "
                "runtime = ? AND holder <> ? AND until > ?",
                (self.target, self.runtime, self.holder, time.time())).fetchone()[0])
            self._others_at = time.monotonic()
        return own + self._others

    def _heartbeat(self) -> None:
        """Renew this controller's leases (and its board count) well before they expire."""
        while not self._beat.wait(self.lease_s / 4):
            try:
                self._register()
            except Exception as exc:
                log.warning("board count not renewed: %s", exc)
            with self._lock:
                held = list(self._held)
            if not held:
                continue
            try:
                with self.store._lock:
                    self.store.db.execute(
                        "UPDATE case_queue SET lease_until = ? WHERE target = ? AND runtime = ? "
                        "AND holder = ? AND state = 'leased' AND case_key = ANY(?)",
                        (time.time() + self.lease_s, self.target, self.runtime, self.holder, held))
            except Exception as exc:    # the server is away: the journal keeps results meanwhile
                log.warning("lease renewal failed: %s", exc)

    # -- WorkQueue's interface -------------------------------------------------------------------

    @property
    def stopped(self) -> bool:
        return self._stopped

    def pending(self) -> int:
        """Claimable cases, read at most every ``PENDING_TTL_S``: every board asks before each
        job (to size its chunk, and whether to take one ahead), and the count scans the
        campaign's keys; an estimate this fresh sizes chunks as well."""
        with self._lock:
            if time.monotonic() - self._pending_at <= PENDING_TTL_S:
                return self._pending
        count = int(self._sql(f"SELECT COUNT(*) FROM case_queue WHERE {self._claimable()}",
                              (self.target, self.runtime, self.keys, time.time())).fetchone()[0])
        with self._lock:
            self._pending, self._pending_at = count, time.monotonic()
        return count

    def _claim(self, n: int) -> list[str]:
        """Lease up to ``n`` claimable cases now (never one another controller holds)."""
        rows = self._retrying(lambda: self._lease(n))
        chunk = sorted((r[0] for r in rows), key=self._order.__getitem__)
        with self._lock:
            self._held.update(chunk)
            self._pending = max(0, self._pending - len(chunk))
        return chunk

    def _lease(self, n: int) -> list:
        now = time.time()
        with self.store._lock, self.store.db.transaction():
            return self.store.db.execute(
                "UPDATE case_queue SET state = 'leased', holder = ?, lease_until = ?, "
                "updated = ? WHERE (target, runtime, case_key) IN ("
                f" SELECT target, runtime, case_key FROM case_queue WHERE {self._claimable()}"
                " ORDER BY priority DESC, updated, case_key LIMIT ? FOR UPDATE SKIP LOCKED)"
                " RETURNING case_key",
                (self.holder, now + self.lease_s, now, self.target, self.runtime, self.keys,
                 now, n)).fetchall()

    def take(self, n: int, wait: bool = True) -> list[str]:
        """Claim up to ``n`` cases; wait while cases of this campaign are held elsewhere (they
        return if their controller dies); [] once every case is done or the queue stopped.
        ``wait=False``: only what can be claimed now."""
        while not self._stopped:
            with self._changed:
                generation = self._generation
            chunk = self._claim(n)
            if chunk or not wait:
                return chunk
            open_ = self._sql("SELECT COUNT(*) FROM case_queue WHERE target = ? AND runtime = ? "
                              "AND case_key = ANY(?) AND state <> 'done'",
                              (self.target, self.runtime, self.keys)).fetchone()[0]
            if not open_:
                return []
            with self._changed:
                if generation == self._generation:
                    self._changed.wait(POLL_S)
        return []

    def done(self, keys: list[str]) -> None:
        """Nothing to write: the case's record closed its claim in the same transaction
        (``Store.add(m, claim)``), or will when the journal is replayed; closing it here first
        would make that replay look like a lost lease."""
        self._release(keys)

    def _release(self, keys: list[str]) -> None:
        """Cases no longer held here (done or given back): wake the devices at the tail."""
        with self._changed:
            self._held.difference_update(keys)
            self._generation += 1
            self._changed.notify_all()

    def give_back(self, keys: list[str]) -> None:
        if not keys:
            return
        self._sql("UPDATE case_queue SET state = 'pending', holder = NULL, lease_until = NULL, "
                  "updated = ? WHERE target = ? AND runtime = ? AND holder = ? "
                  "AND case_key = ANY(?)",
                  (time.time(), self.target, self.runtime, self.holder, list(keys)))
        self._release(keys)

    def crashed(self, key: str) -> int:
        self._crashes[key] = self._crashes.get(key, 0) + 1
        return self._crashes[key]

    def remove(self, key: str) -> bool:
        """Take out a case nobody holds (it cannot be measured here); False if not pending."""
        cur = self._sql("UPDATE case_queue SET state = 'done', updated = ? WHERE target = ? "
                        "AND runtime = ? AND case_key = ? AND state = 'pending'",
                        (time.time(), self.target, self.runtime, key))
        return cur.rowcount > 0

    def drain(self) -> list[str]:
        """Claim every case still claimable, without waiting (no device here is left to take
        them): the campaign records them failed, which closes their claims."""
        return [] if self._stopped else self._claim(len(self.keys))

    def stop(self) -> None:
        """Stop taking; what this controller holds goes back to the queue at once."""
        self._stopped = True
        self._release([])
        with self._lock:
            held = list(self._held)
        try:
            self.give_back(held)
        except Exception as exc:
            log.warning("could not hand back %d leased cases (they return when their leases "
                        "expire): %s", len(held), exc)

    def close(self) -> None:
        self._beat.set()
        self._heart.join(5)
        try:
            self._sql("DELETE FROM queue_controllers WHERE target = ? AND runtime = ? AND "
                      "holder = ?", (self.target, self.runtime, self.holder))
        except Exception as exc:      # it expires by itself
            log.info("board count not withdrawn: %s", exc)

    # -- boards serve the higher priority first ---------------------------------------------------

    def want_board(self, device: str) -> None:
        """Say in the store that this campaign waits for ``device`` (whoever holds it yields
        between chunks if this campaign's priority is higher)."""
        self._sql("INSERT INTO board_waits (device, holder, priority, since) VALUES (?, ?, ?, ?) "
                  "ON CONFLICT (device, holder) DO UPDATE SET priority = excluded.priority",
                  (device, self.holder, self.priority, time.time()))

    def got_board(self, device: str) -> None:
        self._sql("DELETE FROM board_waits WHERE device = ? AND holder = ?", (device, self.holder))

    def board_wanted(self, device: str) -> bool:
        """A campaign of higher priority than this one waits for ``device``."""
        top = self._sql("SELECT MAX(priority) FROM board_waits WHERE device = ? AND holder <> ?",
                        (device, self.holder)).fetchone()[0]
        return top is not None and top > self.priority

    def wait_while_wanted(self, device: str, timeout_s: float) -> None:
        """After yielding ``device``: let the higher-priority waiter take it first."""
        deadline = time.monotonic() + timeout_s
        while self.board_wanted(device) and time.monotonic() < deadline and not self._stopped:
            time.sleep(POLL_S)

    def claim_of(self, key: str) -> tuple[str, str, str, str]:
        """What ``Store.add`` checks in the measurement's own transaction: this controller
        still holds ``key`` (and, committing, closes the claim)."""
        return (self.target, self.runtime, key, self.holder)
