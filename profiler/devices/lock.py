"""The board lock: one measurement at a time on a board, whoever the controller is.

The lock is a file in the device's work directory, created exclusively (O_EXCL locally,
SFTP's exclusive open remotely) and holding its owner (user, host, pid, campaign, time). The
holder touches it every ``stale_s / 4`` seconds; a lock untouched for ``stale_s`` (judged on the
device's own clock, so clock skew between controllers does not matter) belongs to a dead
controller and is taken over. Takeover renames the stale file first, so of two controllers
seeing the same stale lock only one wins.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from lutfarm.profiler.devices.ssh import DeviceError

log = logging.getLogger(__name__)

LOCK_NAME = "lutfarm.lock"
STALE_S = 600.0
_LIVE_TOKENS: set[str] = set()   # the locks this process holds now


class LockHeld(DeviceError):
    """Another controller measures on this board."""


def owner_info(campaign: str = "") -> dict:
    return {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
            "campaign": campaign, "since": time.time(), "token": uuid.uuid4().hex}


class LocalFS:
    """The lock's file operations on this machine."""

    def retry(self, op: str, *args):
        """Local files do not time out: just the operation (SFTPFS retries on a new channel)."""
        return getattr(self, op)(*args)

    def create_exclusive(self, path: str, data: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def read(self, path: str) -> bytes:
        return Path(path).read_bytes()

    def mtime(self, path: str) -> float:
        return os.stat(path).st_mtime

    def touch(self, path: str) -> None:
        os.utime(path)

    def rename(self, src: str, dst: str) -> None:
        os.rename(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def now(self, directory: str) -> float:
        return time.time()


class SFTPFS:
    """The same operations over SFTP; ``now`` is the device's clock (a probe file's mtime).

    ``reopen`` makes a fresh SFTP channel: ``retry`` gives a call that timed out on the old one
    a second chance there (after Ctrl-C kills an agent, the old channel can stop answering)."""

    def __init__(self, sftp, reopen=None):
        self.sftp, self.reopen = sftp, reopen

    def retry(self, op: str, *args):
        """``getattr(self, op)(*args)``, once more on a fresh channel if it timed out."""
        try:
            return getattr(self, op)(*args)
        except (TimeoutError, OSError) as exc:
            if self.reopen is None or not _timed_out(exc):
                raise
            self.sftp = self.reopen()
            return getattr(self, op)(*args)

    def create_exclusive(self, path: str, data: bytes) -> None:
        try:
            with self.sftp.open(path, "wxb") as f:   # x: O_EXCL, fails if it exists
                f.write(data)
        except OSError as exc:
            if self._exists(path):
                raise FileExistsError(path) from None
            raise exc

    def _exists(self, path: str) -> bool:
        try:
            self.sftp.stat(path)
            return True
        except OSError:
            return False

    def read(self, path: str) -> bytes:
        with self.sftp.open(path, "rb") as f:
            return f.read()

    def mtime(self, path: str) -> float:
        return float(self.sftp.stat(path).st_mtime)

    def touch(self, path: str) -> None:
        self.sftp.utime(path, None)

    def rename(self, src: str, dst: str) -> None:
        self.sftp.rename(src, dst)

    def remove(self, path: str) -> None:
        self.sftp.remove(path)

    def now(self, directory: str) -> float:
        probe = f"{directory}/.clock"
        with self.sftp.open(probe, "wb"):
            pass
        return self.mtime(probe)


class BoardLock:
    def __init__(self, fs, directory: str, device: str, owner: dict, stale_s: float = STALE_S):
        self.fs, self.directory, self.device = fs, directory, device
        self.path = f"{directory}/{LOCK_NAME}"
        self.owner, self.stale_s = owner, stale_s
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self.held = False

    def acquire(self, wait_s: float = 0.0, poll_s: float = 1.0) -> None:
        """Take the lock, waiting up to ``wait_s`` for a live holder; LockHeld otherwise."""
        deadline = time.monotonic() + wait_s
        data = json.dumps(self.owner).encode()
        while True:
            try:
                self.fs.create_exclusive(self.path, data)
                break
            except FileExistsError:
                holder = self._holder()
                if self._is_stale(holder):
                    self._take_over()
                    continue
                if time.monotonic() >= deadline:
                    raise LockHeld(f"{self.device} is being measured by {_who(holder)}; wait "
                                   f"for it (--lock-wait SECONDS) or, if that controller is "
                                   f"gone, the lock is taken over {self.stale_s:.0f} s after its "
                                   f"last heartbeat") from None
                time.sleep(min(poll_s, max(deadline - time.monotonic(), 0.01)))
        self.held = True
        _LIVE_TOKENS.add(self.owner["token"])
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, daemon=True,
                                      name=f"lock-{self.device}")
        self._beat.start()

    def _holder(self) -> dict:
        try:
            return json.loads(self.fs.retry("read", self.path))
        except Exception:   # unreadable, half-written, or the connection is gone
            return {}

    def _is_stale(self, holder: dict) -> bool:
        if holder.get("host") == socket.gethostname() and (
                not _pid_alive(holder.get("pid")) or (holder.get("pid") == os.getpid()
                                                      and holder.get("token") not in _LIVE_TOKENS)):
            return True     # its controller ran on this machine and is gone (or is this
                            # process, whose earlier campaign lost the board mid-way)
        try:
            age = self.fs.now(self.directory) - self.fs.mtime(self.path)
        except OSError:
            return False    # it vanished: the next create decides
        return age > self.stale_s

    def _take_over(self) -> None:
        grave = f"{self.path}.stale-{self.owner['token']}"
        try:
            self.fs.rename(self.path, grave)
        except OSError:
            return          # another controller took it over first
        try:
            self.fs.remove(grave)
        except OSError:
            pass

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.stale_s / 4):
            try:
                self.fs.touch(self.path)
            except Exception:   # connection gone: the campaign notices on its own channel
                return

    def release(self) -> None:
        """Remove the lock if it is still ours (never another controller's)."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        holder = self._holder() if self.held else {}
        if self.held and holder.get("token") == self.owner["token"]:
            try:
                self.fs.retry("remove", self.path)
            except Exception as exc:  # connection gone: the lock goes stale, is taken over
                log.warning("%s: could not remove its lock (%s: %s); it goes stale and is "
                            "taken over", self.device, type(exc).__name__, exc)
        elif self.held and not holder:
            log.warning("%s: its lock could not be read back; it goes stale and is taken over",
                        self.device)
        _LIVE_TOKENS.discard(self.owner["token"])
        self.held = False


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, TimeoutError) or "timed out" in str(exc).lower()


def _who(holder: dict) -> str:
    if not holder:
        return "another controller"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return (f"{holder.get('user', '?')}@{holder.get('host', '?')} (pid {holder.get('pid', '?')}"
            f", campaign {holder.get('campaign') or '?'}, since {since})")


def _pid_alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
