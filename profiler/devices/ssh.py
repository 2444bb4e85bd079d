"""SSH to a device with paramiko: verified host keys, key auth, timeouts, quoted commands.

Host keys are checked against the device's known_hosts file with paramiko's RejectPolicy:
an unknown or changed key is an error that says how to verify and add it, never a silent
accept. Remote commands are built from argument lists with ``shlex.join``, so a path or name
with spaces or quotes stays one argument.
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from pathlib import Path

import paramiko

from lutfarm.errors import LutfarmError
from lutfarm.profiler.devices.record import Device

CONNECT_TIMEOUT_S = 10.0
COMMAND_TIMEOUT_S = 60.0
KEEPALIVE_S = 15


class DeviceError(LutfarmError, RuntimeError):
    """A device cannot be used right now (unreachable, refused, out of disk …)."""


# What a flaky link or a dying board raises besides DeviceError: worth a retry elsewhere.
TRANSIENT_ERRORS = (OSError, EOFError, paramiko.SSHException)


class HostKeyError(DeviceError):
    """The device's host key is unknown or changed: never retried, it needs a person."""


class AuthError(DeviceError):
    """The device refused our key: never retried, it needs a person."""


def quote_command(argv: list[str], cwd: str | None = None) -> str:
    cmd = shlex.join(argv)
    return f"cd {shlex.quote(cwd)} && exec {cmd}" if cwd else cmd


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    """An unknown host key is refused (never added): the device is not who we think it is
    until a person has checked its key and put it in known_hosts."""

    def __init__(self, device: Device, known: str):
        self.device, self.known = device, known

    def missing_host_key(self, client, hostname, key) -> None:
        d = self.device
        raise HostKeyError(f"{d.name}: {d.host}:{d.port} is not in {self.known}; verify its "
                           f"key and add it with: ssh-keyscan -p {d.port} {d.host} >> "
                           f"{self.known}")


class SSHSession:
    """One authenticated connection to one device, reused for every command and transfer."""

    def __init__(self, device: Device, connect_timeout: float = CONNECT_TIMEOUT_S):
        self.device = device
        self.client = paramiko.SSHClient()
        known = os.path.expanduser(device.known_hosts)
        if not os.path.exists(known):
            raise HostKeyError(f"{device.name}: known_hosts file {known} does not exist; create it "
                               f"with: ssh-keyscan -p {device.port} {device.host} >> {known} "
                               f"(after checking the key)")
        self.client.load_host_keys(known)
        self.client.set_missing_host_key_policy(_RefuseUnknown(device, known))
        try:
            self.client.connect(
                device.host, port=device.port, username=device.user,
                key_filename=device.key_file or None, allow_agent=not device.key_file,
                look_for_keys=False, timeout=connect_timeout, banner_timeout=connect_timeout,
                auth_timeout=connect_timeout)
        except paramiko.BadHostKeyException as exc:
            raise HostKeyError(
                f"{device.name}: host key of {device.host}:{device.port} CHANGED (got "
                f"{exc.key.get_name()} {exc.key.get_fingerprint().hex()}); if the device was "
                f"reinstalled, remove its line from {known} and add the new key") from None
        except paramiko.AuthenticationException as exc:
            raise AuthError(f"{device.name}: authentication failed for {device.user}@"
                            f"{device.host}:{device.port} with key "
                            f"{device.key_file or '(ssh agent)'} ({exc})") from None
        except HostKeyError:
            raise
        except paramiko.SSHException as exc:
            raise DeviceError(f"{device.name}: SSH error: {exc}") from None
        except (TimeoutError, OSError) as exc:
            raise DeviceError(f"{device.name}: cannot connect to {device.host}:{device.port} "
                              f"({_why_not_connected(exc)}); is the board on and its sshd "
                              f"listening there?") from None
        transport = self.client.get_transport()
        transport.set_keepalive(KEEPALIVE_S)
        self._sftp: paramiko.SFTPClient | None = None
        self._made: set[str] = set()      # directories made (or found) in this session

    @property
    def sftp(self) -> paramiko.SFTPClient:
        if self._sftp is None:
            self._sftp = self.client.open_sftp()
            self._sftp.get_channel().settimeout(COMMAND_TIMEOUT_S)
        return self._sftp

    def run(self, argv: list[str], cwd: str | None = None, stdin: bytes | None = None,
            timeout: float = COMMAND_TIMEOUT_S) -> tuple[int, str, str]:
        """Run a command to completion: (exit status, stdout, stderr)."""
        chan = self.open_channel(argv, cwd, timeout)
        try:
            if stdin:
                chan.sendall(stdin)
            chan.shutdown_write()
            out, err = _drain(chan)
            return chan.recv_exit_status(), out, err
        except TimeoutError:
            raise DeviceError(f"{self.device.name}: {argv[0]} did not finish within "
                              f"{timeout:.0f} s") from None
        finally:
            chan.close()

    def open_channel(self, argv: list[str], cwd: str | None, timeout: float) -> paramiko.Channel:
        try:
            chan = self.client.get_transport().open_session(timeout=timeout)
            chan.settimeout(timeout)
            chan.exec_command(quote_command(argv, cwd))
            return chan
        except (paramiko.SSHException, OSError, AttributeError) as exc:
            raise DeviceError(f"{self.device.name}: connection lost ({exc})") from None

    def put(self, local: Path, remote: str) -> None:
        """Upload to a temporary name and rename, so a cut transfer leaves no half file."""
        tmp = f"{remote}.part"
        try:
            self.sftp.put(str(local), tmp)   # its size check is what reveals a full disk
        except OSError:
            try:
                self.sftp.remove(tmp)   # a half file would only fill the disk further
            except OSError:
                pass
            raise
        self.sftp.posix_rename(tmp, remote)

    def put_bytes(self, data: bytes, remote: str) -> None:
        tmp = f"{remote}.part"
        with self.sftp.open(tmp, "wb") as f:
            f.write(data)
        self.sftp.posix_rename(tmp, remote)

    def size(self, remote: str) -> int | None:
        try:
            return self.sftp.stat(remote).st_size
        except OSError:
            return None

    def sizes(self, directory: str) -> dict[str, int]:
        """Name -> size of every file in ``directory`` in one listing ({} if it is missing):
        one round trip instead of a stat per file."""
        try:
            return {a.filename: a.st_size for a in self.sftp.listdir_attr(directory)}
        except OSError:
            return {}

    def makedirs(self, remote: str) -> None:
        if remote in self._made:
            return
        self._makedirs(remote)
        self._made.add(remote)

    def _makedirs(self, remote: str) -> None:
        path = ""
        for part in remote.split("/"):
            path = f"{path}/{part}" if path or remote.startswith("/") else part
            if not part:
                continue
            try:
                if not stat.S_ISDIR(self.sftp.stat(path).st_mode):
                    raise DeviceError(f"{self.device.name}: {path} exists and is not a directory")
            except FileNotFoundError:
                try:
                    self.sftp.mkdir(path)
                except OSError:     # another controller made it meanwhile?
                    if not stat.S_ISDIR(self.sftp.stat(path).st_mode):
                        raise

    def close(self) -> None:
        try:
            if self._sftp is not None:
                self._sftp.close()
        finally:
            self.client.close()


def _drain(chan: paramiko.Channel) -> tuple[str, str]:
    """Read stdout and stderr to the end without letting either fill up and block the other."""
    out, err = bytearray(), bytearray()
    deadline = time.monotonic() + (chan.gettimeout() or COMMAND_TIMEOUT_S)
    while True:
        got = False
        if chan.recv_ready():
            out += chan.recv(65536)
            got = True
        if chan.recv_stderr_ready():
            err += chan.recv_stderr(65536)
            got = True
        if got:
            continue
        if chan.exit_status_ready():
            break
        if chan.closed or time.monotonic() > deadline:
            raise TimeoutError()
        time.sleep(0.002)
    return out.decode(errors="replace"), err.decode(errors="replace")


def _why_not_connected(exc: OSError) -> str:
    """The operating system's reason ("Connection refused", "No route to host"): paramiko
    wraps one error per address it tried in a message that says "[Errno None]"."""
    errors = getattr(exc, "errors", None)            # paramiko's NoValidConnectionsError
    if errors:
        exc = next(iter(errors.values()))
    if isinstance(exc, TimeoutError) or isinstance(exc, OSError) and not exc.strerror:
        return str(exc) or "timed out"
    return exc.strerror
