"""The shared queue of one device kind's cases: the scheduling policy, apart from transport.

Every device of a kind takes chunks from one queue, so N identical boards build one LUT about
N times faster. The queue owns its state and its lock; workers only call its methods. With a
shared (PostgreSQL) store, ``store.queue.StoreQueue`` offers the same methods over the database
so that several controllers split one campaign.
"""

from __future__ import annotations

import threading
from typing import Protocol


class CaseQueue(Protocol):
    """What a device worker asks of the queue of its kind's cases: ``WorkQueue`` in this
    controller, ``store.queue.StoreQueue`` over a shared store's table for several."""

    shared: bool

    @property
    def stopped(self) -> bool: ...
    def pending(self) -> int: ...
    def boards(self, own: int) -> int: ...
    def take(self, n: int, wait: bool = True) -> list[str]: ...
    def done(self, keys: list[str]) -> None: ...
    def give_back(self, keys: list[str]) -> None: ...
    def crashed(self, key: str) -> int: ...
    def remove(self, key: str) -> bool: ...
    def drain(self) -> list[str]: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...
    def want_board(self, device: str) -> None: ...
    def got_board(self, device: str) -> None: ...
    def board_wanted(self, device: str) -> bool: ...
    def wait_while_wanted(self, device: str, timeout_s: float) -> None: ...


class WorkQueue:
    """Cases of one kind, shared by that kind's devices. ``take`` blocks while other devices
    still hold cases that may come back, so no device quits while work can return."""

    shared = False      # only this controller takes from it

    def __init__(self, keys: list[str]):
        self._pending = list(keys)
        self._out = 0
        self._crashes: dict[str, int] = {}
        self._cond = threading.Condition()
        self._stopped = False

    @property
    def stopped(self) -> bool:
        return self._stopped

    def pending(self) -> int:
        with self._cond:
            return len(self._pending)

    def boards(self, own: int) -> int:
        """Boards serving the queue: this controller's alone."""
        return own

    def take(self, n: int, wait: bool = True) -> list[str]:
        """Up to ``n`` cases; ``wait=False``: only what is pending now (maybe nothing)."""
        with self._cond:
            while wait and not self._pending and self._out and not self._stopped:
                self._cond.wait(0.5)
            if self._stopped:
                return []
            chunk, self._pending = self._pending[:n], self._pending[n:]
            self._out += len(chunk)
            return chunk

    def done(self, keys: list[str]) -> None:
        with self._cond:
            self._out -= len(keys)
            self._cond.notify_all()

    def give_back(self, keys: list[str]) -> None:
        with self._cond:
            self._pending = list(keys) + self._pending
            self._out -= len(keys)
            self._cond.notify_all()

    def crashed(self, key: str) -> int:
        """Count an agent death on ``key``; returns how often it has happened."""
        with self._cond:
            self._crashes[key] = self._crashes.get(key, 0) + 1
            return self._crashes[key]

    def remove(self, key: str) -> bool:
        """Take a case out before anyone took it (it cannot be measured); False if not pending."""
        with self._cond:
            if key not in self._pending:
                return False
            self._pending.remove(key)
            return True

    def drain(self) -> list[str]:
        """Everything still pending, removed (no device is left to take it)."""
        with self._cond:
            left, self._pending = self._pending, []
            return left

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()

    def close(self) -> None:
        """Nothing to release (a shared queue stops renewing its leases here)."""

    # boards and priorities across controllers need a shared store: here, no one else asks
    def want_board(self, device: str) -> None:
        pass

    def got_board(self, device: str) -> None:
        pass

    def board_wanted(self, device: str) -> bool:
        return False

    def wait_while_wanted(self, device: str, timeout_s: float) -> None:
        pass
