"""The two databases a store lives in, behind one small interface the store's SQL is written for.

SQLite (a file: the embedded default) and PostgreSQL (a server a lab shares, reached by a
``postgresql://`` URL through psycopg 3). The store writes its statements once, in SQLite's
spelling (``?`` placeholders, ``INTEGER PRIMARY KEY`` ids, ``REAL`` columns); the PostgreSQL
side translates them. Rows from both answer ``row[0]``, ``row["name"]`` and ``dict(row)``.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from lutfarm.errors import LutfarmError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class StoreError(LutfarmError, RuntimeError):
    """The store cannot be used (not lutfarm's, newer schema, unreadable, unreachable)."""


class StoreUnavailable(StoreError):
    """The store's server cannot be reached now (restarted, network down): worth retrying."""


def is_postgres(location: str | Path) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_SCHEMES)


def redact(url: str) -> str:
    """A URL as it may be printed: without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def local_device_name() -> str:
    """Under which name this machine's ``local`` device is kept in a shared store, where device
    names are global: two controllers' ``local`` are two different machines."""
    return f"local@{socket.gethostname()}"


class _Row(tuple):
    """A result row readable by position and by column name, like ``sqlite3.Row``."""

    names: tuple[str, ...]

    def __new__(cls, values, names):
        row = super().__new__(cls, values)
        row.names = names
        return row

    def keys(self):
        return list(self.names)

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names.index(key))
        return tuple.__getitem__(self, key)


# what SQLite says -> what the user can do about it (the file is named in front)
_SQLITE_FIXES = (
    (("malformed", "not a database", "disk image"),
     "is damaged ({0}); run `lutfarm db check --db {1}`, then restore a backup (`lutfarm db "
     "backup` makes one) or salvage it: sqlite3 {1} .recover | sqlite3 recovered.db"),
    (("readonly", "read-only"),
     "is read-only ({0}); make it and its folder writable, or give --db a writable copy"),
    (("database is locked",),
     "is locked by another process for over 30 s ({0}); stop the other lutfarm command or "
     "wait for it"),
    (("disk is full", "disk i/o error"),
     "could not be written ({0}); free space on its disk (measurements already stored are "
     "kept) and run the command again"),
)


def sqlite_error(exc: sqlite3.Error, location: str) -> Exception:
    """A StoreError naming the file and the fix for what users meet (a damaged, read-only,
    locked or full store); any other error (a bug) is returned unchanged."""
    text = str(exc)
    for needles, fix in _SQLITE_FIXES:
        if any(n in text.lower() for n in needles):
            return StoreError(f"{location} " + fix.format(text, location))
    return exc


class _Cursor:
    """A cursor whose reads translate SQLite's errors too (a damaged page is met while
    fetching, not only when the statement starts)."""

    def __init__(self, cursor: sqlite3.Cursor, location: str):
        self._cursor, self._location = cursor, location

    def _read(self, fn):
        try:
            return fn()
        except sqlite3.DatabaseError as exc:
            raise sqlite_error(exc, self._location) from None

    def fetchone(self):
        return self._read(self._cursor.fetchone)

    def fetchall(self):
        return self._read(self._cursor.fetchall)

    def fetchmany(self, size: int = 1000):
        return self._read(lambda: self._cursor.fetchmany(size))

    def __iter__(self):
        while rows := self.fetchmany():
            yield from rows

    def __getattr__(self, name):
        return getattr(self._cursor, name)


class SQLiteDB:
    """One store file in WAL mode, fully synchronous: a committed measurement survives a crash."""

    dialect = "sqlite"
    shared = False

    def __init__(self, path: Path):
        self.location = str(path)
        self.conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self.conn.row_factory = sqlite3.Row

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise sqlite_error(exc, self.location) from None

    def pragmas(self) -> None:
        with self._translated():
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")

    def execute(self, sql: str, args=()):
        with self._translated():
            return _Cursor(self.conn.execute(sql, args), self.location)

    def insert(self, sql: str, args=()) -> int:
        with self._translated():
            return int(self.conn.execute(sql, args).lastrowid)

    def insert_many(self, sql: str, rows: list) -> None:
        with self._translated():
            self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[None]:
        """Everything inside commits together or not at all; ``exclusive`` takes the write
        lock first, so a check-then-create cannot race another process."""
        with self._translated():
            if exclusive:
                self.conn.execute("BEGIN IMMEDIATE")
                try:
                    yield
                    self.conn.execute("COMMIT")
                except BaseException:
                    self.conn.execute("ROLLBACK")
                    raise
            else:
                with self.conn:
                    yield

    def check(self) -> list[str]:
        """SQLite's integrity check: [] for a sound file, else what it found (first 20)."""
        with self._translated():
            found = [line for r in self.conn.execute("PRAGMA integrity_check(20)")
                     for line in r[0].splitlines() if not line.startswith("***")]
        return [] if found == ["ok"] else found

    def backup(self, target: Path) -> None:
        """A consistent copy through SQLite's online backup API, while writers go on."""
        with self._translated():
            dest = sqlite3.connect(str(target))
            try:
                self.conn.backup(dest, pages=256)
            finally:
                dest.close()

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def ddl(self, statement: str) -> str:
        return statement

    def close(self) -> None:
        self.conn.close()


# SQLite spellings -> PostgreSQL: 64-bit ids and integers (peak memory exceeds 2^31 bytes),
# 8-byte floats as SQLite's REAL is
_PG_TYPES = ((re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
             (re.compile(r"\bINTEGER\b"), "BIGINT"),
             (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"))


class PostgresDB:
    """A lab's shared store on a PostgreSQL server. Autocommit outside ``transaction()``, so a
    reader never holds a snapshot open while campaigns write."""

    dialect = "postgresql"
    shared = True

    def __init__(self, url: str, connect_timeout: float = 10):
        try:
            import psycopg
        except ImportError:   # a dependency; only a broken install lacks it
            raise StoreError("a postgresql:// store needs psycopg 3: pip install 'psycopg[binary]'") \
                from None
        self.location = redact(url)
        self.url = url
        self._psycopg = psycopg
        self._connect_timeout = int(connect_timeout)
        self._in_transaction = False
        try:
            self.conn = self._open()
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot reach the store {self.location}: {_reason(exc)}; check the "
                             f"URL (postgresql://user@host:port/dbname) and that the server is up") \
                from None

    def _open(self):
        return self._psycopg.connect(self.url, autocommit=True,
                                     connect_timeout=self._connect_timeout,
                                     row_factory=_row_factory)

    def _lost(self, exc: Exception) -> StoreUnavailable:
        return StoreUnavailable(f"lost the store {self.location}: {_reason(exc)}")

    def _ensure(self) -> None:
        """A connection the server dropped (restart, network) is replaced on next use."""
        if self.conn.closed or self.conn.broken:
            try:
                self.conn = self._open()
            except self._psycopg.OperationalError as exc:
                raise self._lost(exc) from None

    def _run(self, fn):
        if not self._in_transaction:
            self._ensure()
        try:
            return fn()
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            if self.conn.closed or self.conn.broken:
                raise self._lost(exc) from None
            raise

    def pragmas(self) -> None:
        pass

    def execute(self, sql: str, args=()):
        return self._run(lambda: self.conn.execute(_pg(sql), tuple(args)))

    def insert(self, sql: str, args=()) -> int:
        return int(self._run(lambda: self.conn.execute(_pg(sql) + " RETURNING id",
                                                       tuple(args)).fetchone()[0]))

    def insert_many(self, sql: str, rows: list) -> None:
        def many():
            with self.conn.cursor() as cur:   # pipelined: one round trip per batch, not per row
                cur.executemany(_pg(sql), [tuple(r) for r in rows])
        self._run(many)

    @contextlib.contextmanager
    def transaction(self, exclusive: bool = False) -> Iterator[None]:
        self._ensure()
        try:
            with self.conn.transaction():
                self._in_transaction = True
                try:
                    if exclusive:   # one schema creator at a time, server-wide
                        self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('lutfarm-schema'))")
                    yield
                finally:
                    self._in_transaction = False
        except (self._psycopg.OperationalError, self._psycopg.InterfaceError) as exc:
            if self.conn.closed or self.conn.broken:
                raise self._lost(exc) from None
            raise

    def tables(self) -> set[str]:
        return {r[0] for r in self.conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()")}

    def check(self) -> list[str]:
        """The server answers (opening the store already checked its schema); PostgreSQL
        checks its own pages."""
        self.execute("SELECT 1").fetchone()
        return []

    def backup(self, target: Path) -> None:
        raise StoreError(f"{self.location} is a PostgreSQL store: back it up with pg_dump "
                         f"(or copy it to a file: lutfarm db copy --from URL --to {target})")

    def ddl(self, statement: str) -> str:
        for pattern, spelling in _PG_TYPES:
            statement = pattern.sub(spelling, statement)
        return statement

    def close(self) -> None:
        self.conn.close()


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def _pg(sql: str) -> str:
    return sql.replace("?", "%s")


def _row_factory(cursor):
    names = tuple(c.name for c in cursor.description or ())
    return lambda values: _Row(values, names)


def connect(location: str | Path) -> SQLiteDB | PostgresDB:
    """A ``postgresql://`` URL opens the server's store; anything else is a SQLite file path."""
    if is_postgres(location):
        return PostgresDB(str(location))
    return SQLiteDB(Path(location))
