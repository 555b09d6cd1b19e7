"""The journal's schema across releases: an older journal is brought forward, a newer one that an
older release may read (every change additive) is used as it is after a rollback, and one it may
not read is refused, never set aside as damaged."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from kiosk.issuance import offline_store
from kiosk.issuance.offline_store import SCHEMA_VERSION, JournalTooNew, open_store

ROW = (
    "INSERT INTO journal (key, code, packaging, source, voucher, created_at)"
    " VALUES ('k1', 'CODE-1', 'PKG-1', 'offline', '{}', '2026-01-01T00:00:00Z')"
)


def version_of(path: Path) -> tuple[int, str | None]:
    with sqlite3.connect(path) as db:
        found = db.execute("PRAGMA user_version").fetchone()[0]
        row = db.execute("SELECT value FROM meta WHERE name = 'oldest_reader'").fetchone()
    db.close()
    return found, row[0] if row else None


def test_a_new_journal_has_the_current_schema(tmp_path: Path) -> None:
    open_store(tmp_path / "offline.sqlite").close()
    assert version_of(tmp_path / "offline.sqlite") == (SCHEMA_VERSION, "1")


def test_a_journal_of_the_first_release_is_brought_forward_with_its_vouchers(tmp_path: Path) -> None:
    path = tmp_path / "offline.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(offline_store._SCHEMA)  # schema 1: no added columns, no version
        db.execute(ROW)
    db.close()
    store = open_store(path)
    [entry] = store.journal(pending_only=True)
    assert entry.code == "CODE-1" and entry.source == "offline" and not entry.forwarded
    assert [u.display_attempts for u in store.unshown()] == [0]  # an added column, with its default
    store.close()
    assert version_of(path) == (SCHEMA_VERSION, "1")


def test_after_a_rollback_the_older_release_uses_what_a_newer_one_wrote(tmp_path: Path) -> None:
    path = tmp_path / "offline.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as db:  # a later release: a new table, a new column, one more row
        db.execute("ALTER TABLE journal ADD COLUMN receipt_printed_at TEXT")
        db.execute("CREATE TABLE printed (key TEXT PRIMARY KEY)")
        db.execute(ROW)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    store = open_store(path)
    assert [e.code for e in store.journal(pending_only=True)] == ["CODE-1"]
    store.mark_forwarded([{"key": "k1", "status": "accepted"}])
    assert store.journal(pending_only=True) == []
    store.close()
    assert version_of(path) == (SCHEMA_VERSION + 1, "1")  # never lowered


def test_a_journal_this_release_cannot_read_is_refused_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "offline.sqlite"
    open_store(path).close()
    with sqlite3.connect(path) as db:
        db.execute(ROW)
        db.execute("UPDATE meta SET value = ? WHERE name = 'oldest_reader'", (str(SCHEMA_VERSION + 1),))
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(JournalTooNew, match=f"reads {SCHEMA_VERSION}"):
        open_store(path, set_aside_damaged=True)
    assert sorted(p.name for p in tmp_path.iterdir() if "damaged" in p.name) == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT code FROM journal").fetchall() == [("CODE-1",)]
    db.close()
