"""A real PostgreSQL server for the tests: Debian's postgresql binaries, ``initdb`` in a temporary
directory, listening on a free loopback port (and a socket in that directory), trust auth for
loopback only. Run as the ``postgres`` user when the tests run as root (the server refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from sshd import free_port


def _bin_dir() -> Path | None:
    for found in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        return Path(found).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _as_postgres() -> dict:
    """Popen arguments that run the server as the postgres account when we are root (the
    server refuses root); the process is then the server itself, so signals reach it."""
    if os.geteuid() != 0:
        return {}
    account = pwd.getpwnam("postgres")
    return {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}


def postgres_available() -> str | None:
    """None if a PostgreSQL server can be started here, else the reason."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'psycopg[binary]')"
    if _bin_dir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


@dataclass
class PostgresServer:
    root: Path
    port: int
    proc: subprocess.Popen

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        import psycopg
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def crash(self) -> None:
        """Gone at once with every connection, like a crashed server: immediate shutdown (no
        checkpoint; the restart recovers from the write-ahead log)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            self.proc.wait(20)

    def start(self) -> None:
        """(Re)start on the same data directory and port."""
        self.proc = _launch(self.root, self.port)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)    # fast shutdown
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.crash()


def _launch(root: Path, port: int, timeout: float = 30.0) -> subprocess.Popen:
    import psycopg
    bin_dir = _bin_dir()
    assert bin_dir is not None
    log = open(root / "server.log", "ab")
    proc = subprocess.Popen(
        [str(bin_dir / "postgres"), "-D", str(root / "data"), "-p", str(port),
         "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={root}",
         "-c", "fsync=on", "-c", "max_connections=50"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **_as_postgres())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"postgres exited: {(root / 'server.log').read_text()[-2000:]}")
        try:
            psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres",
                            connect_timeout=2).close()
            return proc
        except psycopg.OperationalError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"postgres did not start in {timeout:.0f} s: "
                       f"{(root / 'server.log').read_text()[-2000:]}")


def start_postgres() -> PostgresServer:
    bin_dir = _bin_dir()
    assert bin_dir is not None
    root = Path(tempfile.mkdtemp(prefix="lutfarm-pg-"))
    if os.geteuid() == 0:
        account = pwd.getpwnam("postgres")
        os.chown(root, account.pw_uid, account.pw_gid)
    subprocess.run([str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "postgres",
                    "--auth=trust", "-E", "UTF8", "--no-instructions"],
                   check=True, capture_output=True, cwd=root, **_as_postgres())
    port = free_port()
    return PostgresServer(root, port, _launch(root, port))


def remove(server: PostgresServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)
