"""The stand-ins' SQLite databases: one connection per thread (their HTTP servers are threaded), WAL,
and ``BEGIN IMMEDIATE`` transactions, in a file private from its first byte."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.core.instants import iso_z

__all__ = ["SqliteStore", "now_iso", "first_row", "the_row"]


def now_iso() -> str:
    """The stand-ins' time stamps: now, as RE-ZIP writes instants."""
    return iso_z(datetime.now(UTC))


def first_row(cursor: sqlite3.Cursor) -> sqlite3.Row | None:
    """The statement's first row, if any (typed: sqlite3 says Any)."""
    row: sqlite3.Row | None = cursor.fetchone()
    return row


def the_row(cursor: sqlite3.Cursor) -> sqlite3.Row:
    """The one row a statement must give, such as the row just written, read back by its id."""
    row = first_row(cursor)
    if row is None:
        raise LookupError("the row just written is not there")
    return row


class SqliteStore:
    """A database file shared by the threads of a stand-in; subclasses create their tables."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        #: Writers queue here rather than in SQLite's busy handler, which sleeps (up to 100 ms a
        #: time) between attempts: under a burst the wait would be the sleep, not the work.
        self._writing = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        # Tokens' hashes, codes and links: private from the first byte. SQLite gives its -wal and -shm
        # files the database file's mode.
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)  # an older database keeps its old mode through O_CREAT

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a crash of the process
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: the write lock is taken up front, not on upgrade."""
        db = self._connection()
        with self._writing:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def read(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self._connection().execute(sql, args).fetchall()
