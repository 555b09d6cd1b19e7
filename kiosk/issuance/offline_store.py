"""The kiosk's own SQLite store: cached offline codes (from signed bundles) and the journal of every
voucher it handed out, online or offline.

Durability rules: WAL with ``synchronous=FULL``; a claim takes the write lock up front
(``BEGIN IMMEDIATE``), marks the code, and inserts the journal row with its idempotency key, the
packaging and the time, in one transaction that is committed before the voucher is shown or
printed. UNIQUE constraints make a second claim of a code, a second journal row for a code, or a
second reward for a packaging impossible, whatever crashes in between.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kiosk.core.bundle import BodyIndex, BundleError, code_from_body, index_body, parse_bundle
from kiosk.core.instants import iso_z
from kiosk.core.offline import CachedCode, OfflineLimits, OfflineState, choose_code, refusal
from kiosk.core.voucher import DEFAULT_LINK_SCHEMES, Voucher, VoucherError, parse_voucher
from kiosk.secret_files import private_directory

__all__ = [
    "OfflineStore",
    "open_store",
    "JournalDamaged",
    "JournalTooNew",
    "SCHEMA_VERSION",
    "Claim",
    "JournalEntry",
    "Unshown",
    "AlreadyRewarded",
    "utc_now",
]

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    id TEXT PRIMARY KEY, body BLOB NOT NULL, signature TEXT NOT NULL, received_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, released_at TEXT
);
CREATE TABLE IF NOT EXISTS codes (
    code TEXT PRIMARY KEY, bundle_id TEXT NOT NULL REFERENCES bundles(id), shop_id TEXT NOT NULL,
    visibility TEXT NOT NULL, countries TEXT NOT NULL, voucher TEXT NOT NULL, type TEXT NOT NULL,
    value INTEGER NOT NULL, unit TEXT NOT NULL, expires_at TEXT, claimed_by TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS codes_free ON codes (shop_id, visibility, expires_at) WHERE claimed_by IS NULL;
CREATE TABLE IF NOT EXISTS prefixes (prefix TEXT PRIMARY KEY, shop_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS journal (
    key TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, packaging TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL CHECK (source IN ('online', 'offline')), voucher TEXT NOT NULL,
    created_at TEXT NOT NULL, shown_at TEXT, forwarded_at TEXT, forward_status TEXT
);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Scan requests sent and not yet answered for good, written before they are sent: a kiosk killed
-- while the answer is on its way asks again with the same key, and the backend answers the same.
CREATE TABLE IF NOT EXISTS attempts (
    packaging TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL
);
"""
#: Columns added after the first release, with their definitions: an older database gains them.
_ADDED_COLUMNS = {
    "journal": {
        # How often the kiosk began to show this voucher without it being marked shown.
        "display_attempts": "INTEGER NOT NULL DEFAULT 0",
        # The scan request the kiosk gave up on before it issued offline (for reconciliation).
        "online_attempt_key": "TEXT",
    },
    # Why a cached code may not be handed out after all (its entry in the signed body failed).
    "codes": {"refused": "TEXT"},
}
#: The journal's schema version (SQLite's user_version): 1 is _SCHEMA as first released, 2 adds
#: _ADDED_COLUMNS. A rollback puts an older release back on the journal a newer one wrote, so every
#: change is additive (a table, or a column that may be NULL or has a default): an older release
#: reads and writes such a journal as it is. A change an older release cannot live with must raise
#: _OLDEST_READER to its own version, and the releases before it then refuse the journal (JournalTooNew)
#: rather than misread it.
SCHEMA_VERSION = 2
_OLDEST_READER = 1


class JournalDamaged(OSError):
    """The journal's file is not a database any more."""


class JournalTooNew(OSError):
    """The journal was written by a release whose schema this one cannot read: it must not be set
    aside (it holds vouchers), only opened again by a release new enough."""


def open_store(
    path: Path, *, link_schemes: frozenset[str] = DEFAULT_LINK_SCHEMES, set_aside_damaged: bool = False
) -> OfflineStore:
    """The store at ``path``. A damaged journal raises ``JournalDamaged``, or with
    ``set_aside_damaged`` (the running kiosk, which must serve customers: online issuance needs no
    journal) is moved aside whole, for a technician, and a new one is begun."""
    try:
        return OfflineStore(path, link_schemes=link_schemes)
    except JournalDamaged:
        if not set_aside_damaged:
            raise
    stamp = utc_now().strftime("%Y%m%dT%H%M%SZ")
    for suffix in ("", "-wal", "-shm"):
        damaged = path.with_name(path.name + suffix)
        if damaged.exists():
            damaged.rename(path.with_name(f"{path.name}.damaged-{stamp}{suffix}"))
    log.critical("the journal %s was damaged: moved aside as %s.damaged-%s, a new one begun", path, path.name, stamp)
    return OfflineStore(path, link_schemes=link_schemes)


class AlreadyRewarded(Exception):
    """This kiosk already handed out a voucher for this packaging."""


@dataclass(frozen=True)
class Claim:
    key: str
    voucher: Voucher


@dataclass(frozen=True)
class Unshown:
    """A journalled voucher nobody has seen yet, and how often showing it was begun."""

    key: str
    packaging: str
    source: str
    voucher: Voucher | None
    display_attempts: int


@dataclass(frozen=True)
class JournalEntry:
    key: str
    code: str
    packaging: str
    source: str
    created_at: str
    shown: bool
    forwarded: bool
    forward_status: str | None
    voucher: dict[str, Any]
    #: How often showing it began (a voucher that keeps failing to show is shown plainly).
    display_attempts: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "code": self.code,
            "packaging": self.packaging,
            "source": self.source,
            "created_at": self.created_at,
            "shown": self.shown,
            "forwarded": self.forwarded,
            "forward_status": self.forward_status,
            "display_attempts": self.display_attempts,
        }


def utc_now() -> datetime:
    return datetime.now(UTC)


def _parse(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class OfflineStore:
    """``link_schemes`` is the kiosk's link allow-list, applied to cached codes when they are claimed."""

    def __init__(self, path: Path, *, link_schemes: frozenset[str] = DEFAULT_LINK_SCHEMES) -> None:
        self.path = path
        self.link_schemes = link_schemes
        private_directory(path.parent)
        # The database exists with mode 0600 before SQLite opens it; SQLite gives its -wal and -shm
        # files the database's own mode, so none of them is readable by others for a moment.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        try:
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            # 256 KiB of page cache, not SQLite's 2 MiB: the journal is small and the kernel caches
            # its file anyway; the larger cache filled slowly over thousands of scans (fleet bench).
            self._db.execute("PRAGMA cache_size=-256")
            self._migrate()
        except sqlite3.DatabaseError as exc:  # not a database at all: a damaged card, a stray file
            self._db.close()
            raise JournalDamaged(f"{path}: the journal is damaged ({exc})") from None
        except JournalTooNew:
            self._db.close()
            raise
        #: Stored bundle bodies by id, parsed once: a claim reads its code's truth from there.
        self._bodies: dict[str, BodyIndex] = {}

    def _migrate(self) -> None:
        """Brings an older journal forward to SCHEMA_VERSION in one transaction; a newer one is used
        as it is (its version never lowered) when its oldest reader is this release or older."""
        found = self._db.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            row = self._db.execute("SELECT value FROM meta WHERE name = 'oldest_reader'").fetchone()
            oldest = int(row["value"]) if row else found
            if oldest > SCHEMA_VERSION:
                raise JournalTooNew(
                    f"{self.path}: the journal has schema {found}, which needs a release that reads schema {oldest};"
                    f" this one reads {SCHEMA_VERSION}"
                )
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, _SCHEMA.split(";")):
                self._db.execute(statement)
            for table, columns in _ADDED_COLUMNS.items():
                present = {row["name"] for row in self._db.execute(f"PRAGMA table_info({table})")}
                for name, definition in columns.items():
                    if name not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
            self._db.execute(
                "INSERT OR IGNORE INTO meta (name, value) VALUES ('oldest_reader', ?)", (str(_OLDEST_READER),)
            )
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta -----------------------------------------------------------------------------------

    def meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row["value"] if row else None

    def _set_meta(self, db: sqlite3.Connection, name: str, value: str) -> None:
        db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)", (name, value))

    def note_contact(self, backend_time: datetime | None = None) -> None:
        """The backend answered: offline age restarts. A time it signed becomes the clock floor,
        and the kiosk's own journal stamps up to now stop counting for it: a stamp written while
        the clock ran ahead must not distrust the clock once the backend has set it right."""
        with self._transaction() as db:
            self._set_meta(db, "last_contact", iso_z(utc_now()))
            if backend_time is not None:
                self._set_meta(db, "clock_floor", iso_z(backend_time))
                newest = db.execute("SELECT MAX(created_at) AS t FROM journal").fetchone()["t"]
                if newest:
                    self._set_meta(db, "journal_floor_after", newest)

    # --- bundles --------------------------------------------------------------------------------

    def import_bundle(self, body: bytes, signature: str) -> int:
        """Store a verified bundle's usable codes; returns how many are new. ``BundleError`` when
        the bundle as a whole is broken (nothing of it is stored)."""
        contents = parse_bundle(_json(body), link_schemes=None)
        added = 0
        with self._transaction() as db:
            db.execute(
                "INSERT OR IGNORE INTO bundles (id, body, signature, received_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                (contents.bundle_id, body, signature, iso_z(utc_now()), iso_z(contents.expires_at)),
            )
            for prefix, shop_id in contents.prefixes.items():
                db.execute("INSERT OR REPLACE INTO prefixes (prefix, shop_id) VALUES (?, ?)", (prefix, shop_id))
            for item in contents.codes:
                cached, voucher = item.cached(), item.voucher
                cursor = db.execute(
                    "INSERT OR IGNORE INTO codes (code, bundle_id, shop_id, visibility, countries, voucher, type,"
                    " value, unit, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        cached.code,
                        contents.bundle_id,
                        cached.shop_id,
                        cached.visibility,
                        json.dumps(cached.countries),
                        json.dumps(voucher.to_json(), ensure_ascii=False),
                        cached.type,
                        cached.value,
                        cached.unit,
                        voucher.to_json()["expires_at"],
                    ),
                )
                added += cursor.rowcount
        return added

    def bundles(self) -> list[sqlite3.Row]:
        return self._db.execute("SELECT id, expires_at, released_at FROM bundles ORDER BY received_at").fetchall()

    def release_bundle(self, bundle_id: str) -> int:
        """Forget a released bundle's unclaimed codes; returns how many."""
        with self._transaction() as db:
            db.execute("UPDATE bundles SET released_at = ? WHERE id = ?", (iso_z(utc_now()), bundle_id))
            return db.execute("DELETE FROM codes WHERE bundle_id = ? AND claimed_by IS NULL", (bundle_id,)).rowcount

    def available(self) -> list[sqlite3.Row]:
        """Unclaimed codes per shop and visibility (for status and the top-up watermark)."""
        return self._db.execute(
            "SELECT shop_id, visibility, COUNT(*) AS count FROM codes WHERE claimed_by IS NULL AND refused IS NULL"
            " GROUP BY shop_id, visibility ORDER BY shop_id, visibility"
        ).fetchall()

    def shop_names(self) -> dict[str, str]:
        """Shop id to name, from the profiles that came with the cached codes' bundles."""
        rows = self._db.execute(
            "SELECT shop_id, json_extract(voucher, '$.shop.name') AS name FROM codes WHERE name IS NOT NULL"
            " GROUP BY shop_id"
        ).fetchall()
        return {row["shop_id"]: row["name"] for row in rows}

    # --- claims and the journal -----------------------------------------------------------------

    def journalled(self, packaging: str) -> tuple[str, str] | None:
        """(key, voucher code) of the voucher this kiosk handed out for the packaging, if any."""
        row = self._db.execute("SELECT key, code FROM journal WHERE packaging = ?", (packaging,)).fetchone()
        return (row["key"], row["code"]) if row else None

    def rewarded(self, packaging: str) -> bool:
        return self._db.execute("SELECT 1 FROM journal WHERE packaging = ?", (packaging,)).fetchone() is not None

    def claim(
        self,
        packaging: str,
        *,
        country: str,
        limits: OfflineLimits,
        now: datetime,
        expected_now: datetime | None = None,
        online_attempt_key: str | None = None,
    ) -> Claim | str:
        """Claim a cached code for a packaging and journal it, in one durable transaction.

        The chosen code is read afresh from its signed bundle body and checked again (expiry, the
        kiosk's link allow-list, pool and shop); a code that fails is marked refused and the next
        one is tried. ``online_attempt_key`` names the scan request the kiosk gave up on, so the
        backend can reconcile. Returns the claim, or the reason there is none ("none_available",
        "never_synced" or a limit's name).
        """
        with self._transaction() as db:
            if db.execute("SELECT 1 FROM journal WHERE packaging = ?", (packaging,)).fetchone():
                raise AlreadyRewarded(packaging)
            shop = db.execute("SELECT shop_id FROM prefixes WHERE prefix = ?", (packaging[:4],)).fetchone()
            shop_id = shop["shop_id"] if shop else None
            state = self._state(db, expected_now)
            while True:
                rows = self._candidates(db, shop_id, iso_z(now + limits.expiry_margin))
                chosen = choose_code(
                    (_cached(row) for row in rows),
                    packaging_shop=shop_id,
                    country=country,
                    now=now,
                    margin=limits.expiry_margin,
                )
                reason = refusal(state, limits, chosen, now)
                if reason is not None:
                    return reason
                if chosen is None:
                    return "none_available"
                row = next(row for row in rows if row["code"] == chosen.code)
                voucher = self._checked(db, row, shop_id, country, now, limits)
                if voucher is not None:
                    break
            key = str(uuid.uuid4())
            db.execute("UPDATE codes SET claimed_by = ? WHERE code = ? AND claimed_by IS NULL", (key, chosen.code))
            db.execute(
                "INSERT INTO journal (key, code, packaging, source, voucher, created_at, online_attempt_key)"
                " VALUES (?, ?, ?, 'offline', ?, ?, ?)",
                (
                    key,
                    chosen.code,
                    packaging,
                    json.dumps(voucher.to_json(), ensure_ascii=False),
                    iso_z(now),
                    online_attempt_key,
                ),
            )
            db.execute("DELETE FROM attempts WHERE packaging = ?", (packaging,))  # the backend reconciles it
        return Claim(key, voucher)

    def _checked(
        self,
        db: sqlite3.Connection,
        row: sqlite3.Row,
        shop_id: str | None,
        country: str,
        now: datetime,
        limits: OfflineLimits,
    ) -> Voucher | None:
        """The code's voucher as its signed body says, if that still allows handing it out here and
        now; otherwise the code is marked refused (logged by the caller's caller) and None."""
        try:
            body = self._body(db, row["bundle_id"])
            truth = code_from_body(body, row["code"], link_schemes=self.link_schemes, now=now + limits.expiry_margin)
            eligible = choose_code(
                [truth.cached()], packaging_shop=shop_id, country=country, now=now, margin=limits.expiry_margin
            )
            if eligible is None or truth.cached() != _cached(row):
                raise BundleError("the signed body disagrees with the cached entry")
        except (BundleError, VoucherError) as exc:
            db.execute("UPDATE codes SET refused = ? WHERE code = ?", (str(exc)[:200], row["code"]))
            return None
        except Exception as exc:  # an entry no rule foresaw is refused too: never a stuck claim
            log.warning(
                "cached code refused: its bundle entry could not be read (%s)", type(exc).__name__, exc_info=True
            )
            db.execute(
                "UPDATE codes SET refused = ? WHERE code = ?", (f"unreadable entry: {type(exc).__name__}", row["code"])
            )
            return None
        return truth.voucher

    def _body(self, db: sqlite3.Connection, bundle_id: str) -> BodyIndex:
        if bundle_id not in self._bodies:
            found = db.execute("SELECT body FROM bundles WHERE id = ?", (bundle_id,)).fetchone()
            if found is None:
                raise BundleError(f"bundle {bundle_id} is not stored")
            self._bodies[bundle_id] = index_body(_json(found["body"]))
        return self._bodies[bundle_id]

    @staticmethod
    def _candidates(db: sqlite3.Connection, shop_id: str | None, valid_after: str) -> list[sqlite3.Row]:
        """The soonest-expiring unclaimed codes of each group the rules allow, so a claim reads a
        few rows however many codes are cached; ``choose_code`` makes the decision."""
        order = " AND (expires_at IS NULL OR expires_at > ?) ORDER BY expires_at IS NULL, expires_at, code LIMIT 64"
        # A code the journal already holds (handed out online, say) is never a candidate again.
        free = (
            "SELECT * FROM codes WHERE claimed_by IS NULL AND refused IS NULL"
            " AND NOT EXISTS (SELECT 1 FROM journal WHERE journal.code = codes.code)"
        )
        own = db.execute(
            free + " AND shop_id = ? AND visibility IN ('private', 'private_public')" + order,
            (shop_id or "", valid_after),
        ).fetchall()
        shared = db.execute(
            free + " AND shop_id != ? AND visibility IN ('public', 'private_public')" + order,
            (shop_id or "", valid_after),
        ).fetchall()
        return [*own, *shared]

    def begin_attempt(self, packaging: str) -> str:
        """The idempotency key for asking the backend about this packaging, made durable before
        the request goes out; an earlier attempt that never got its answer is asked again with its
        own key (the backend then answers what it answered, or would have, the first time)."""
        with self._transaction() as db:
            row = db.execute("SELECT key FROM attempts WHERE packaging = ?", (packaging,)).fetchone()
            if row is not None:
                return str(row["key"])
            key = str(uuid.uuid4())
            db.execute(
                "INSERT INTO attempts (packaging, key, created_at) VALUES (?, ?, ?)", (packaging, key, iso_z(utc_now()))
            )
            return key

    def end_attempt(self, packaging: str) -> None:
        """The backend's answer for this packaging is final (no voucher, or already returned)."""
        with self._transaction() as db:
            db.execute("DELETE FROM attempts WHERE packaging = ?", (packaging,))

    def attempts(self) -> list[tuple[str, str, str]]:
        """(packaging, key, created_at) of scans sent and never answered for good, oldest first."""
        rows = self._db.execute("SELECT packaging, key, created_at FROM attempts ORDER BY created_at").fetchall()
        return [(r["packaging"], r["key"], r["created_at"]) for r in rows]

    def journal_online(self, key: str, packaging: str, voucher: Voucher) -> None:
        """Record a voucher the backend issued, before it is shown (it counts for 'one reward per
        packaging' here, and is shown again after a crash). The backend has it: nothing to forward."""
        stamp = iso_z(utc_now())
        with self._transaction() as db:
            db.execute(
                "INSERT INTO journal (key, code, packaging, source, voucher, created_at, forwarded_at, forward_status)"
                " VALUES (?, ?, ?, 'online', ?, ?, ?, 'online')",
                (key, voucher.code, packaging, json.dumps(voucher.to_json(), ensure_ascii=False), stamp, stamp),
            )
            db.execute(
                "UPDATE codes SET refused = 'handed out online' WHERE code = ? AND claimed_by IS NULL", (voucher.code,)
            )
            db.execute("DELETE FROM attempts WHERE packaging = ?", (packaging,))

    def mark_shown(self, key: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE journal SET shown_at = COALESCE(shown_at, ?) WHERE key = ?", (iso_z(utc_now()), key))

    def note_display_attempt(self, key: str) -> int:
        """Showing this voucher begins: count it before anything can fail, so a voucher that brings
        the kiosk down is recognised at the next start; returns the attempts so far."""
        with self._transaction() as db:
            db.execute(
                "UPDATE journal SET display_attempts = display_attempts + 1 WHERE key = ? AND shown_at IS NULL", (key,)
            )
            row = db.execute("SELECT display_attempts FROM journal WHERE key = ?", (key,)).fetchone()
        return int(row["display_attempts"]) if row else 0

    def unshown(self) -> list[Unshown]:
        """Journalled vouchers never marked shown, oldest first. Each was checked when it was
        journalled; one whose stored document no longer parses has ``voucher`` None."""
        rows = self._db.execute(
            "SELECT key, code, packaging, source, voucher, display_attempts FROM journal WHERE shown_at IS NULL"
            " ORDER BY created_at"
        ).fetchall()
        return [
            Unshown(r["key"], r["packaging"], r["source"], _journalled_voucher(r["voucher"]), r["display_attempts"])
            for r in rows
        ]

    def pending_count(self) -> int:
        """How many offline issuances wait to be accepted by the backend."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM journal WHERE source = 'offline' AND forwarded_at IS NULL"
        ).fetchone()
        return int(row[0])

    def pending(self, limit: int = 500) -> list[dict[str, Any]]:
        """Offline issuances not yet accepted by the backend, as the forwarder sends them."""
        rows = self._db.execute(
            "SELECT key, code, packaging, created_at, online_attempt_key FROM journal"
            " WHERE source = 'offline' AND forwarded_at IS NULL ORDER BY created_at LIMIT ?",
            (limit,),
        ).fetchall()
        return [
            {
                "key": r["key"],
                "code": r["code"],
                "packaging": r["packaging"],
                "issued_at": r["created_at"],
                **({"online_attempt_key": r["online_attempt_key"]} if r["online_attempt_key"] else {}),
            }
            for r in rows
        ]

    def mark_forwarded(self, results: list[dict[str, str]]) -> None:
        """The backend answered for these issuances (an empty answer is no forward at all)."""
        if not results:
            return
        stamp = iso_z(utc_now())
        with self._transaction() as db:
            db.executemany(
                "UPDATE journal SET forwarded_at = ?, forward_status = ? WHERE key = ? AND forwarded_at IS NULL",
                [(stamp, r["status"], r["key"]) for r in results],
            )
            self._set_meta(db, "last_forward", stamp)

    def journal(self, *, pending_only: bool = False) -> list[JournalEntry]:
        sql = "SELECT * FROM journal"
        if pending_only:
            sql += " WHERE source = 'offline' AND forwarded_at IS NULL"
        rows = self._db.execute(sql + " ORDER BY created_at, key").fetchall()
        return [
            JournalEntry(
                r["key"],
                r["code"],
                r["packaging"],
                r["source"],
                r["created_at"],
                r["shown_at"] is not None,
                r["forwarded_at"] is not None,
                r["forward_status"],
                json.loads(r["voucher"]),
                r["display_attempts"],
            )
            for r in rows
        ]

    def _state(self, db: sqlite3.Connection, expected_now: datetime | None) -> OfflineState:
        # The limits count what the backend has not yet taken (issuances not forwarded), from the
        # journal's own record of each voucher: neither a clock stamp nor an empty answer resets them.
        rows = db.execute(
            "SELECT json_extract(voucher, '$.type') AS type, json_extract(voucher, '$.unit') AS unit,"
            " json_extract(voucher, '$.value') AS value FROM journal WHERE source = 'offline' AND forwarded_at IS NULL"
        ).fetchall()
        value: dict[str, int] = {}
        for row in rows:
            if row["type"] == "amount" and isinstance(row["value"], int):
                value[row["unit"]] = value.get(row["unit"], 0) + row["value"]
        newest = db.execute(
            "SELECT MAX(created_at) AS t FROM journal WHERE created_at > ?", (self.meta("journal_floor_after") or "",)
        ).fetchone()["t"]
        floor_candidates = [t for t in (_parse(self.meta("clock_floor")), _parse(newest)) if t is not None]
        return OfflineState(
            unforwarded=len(rows),
            unforwarded_value=value,
            last_contact=_parse(self.meta("last_contact")),
            clock_floor=max(floor_candidates) if floor_candidates else None,
            expected_now=expected_now,
        )


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise BundleError("the bundle is not JSON") from None


def _journalled_voucher(doc: str) -> Voucher | None:
    try:
        return parse_voucher(json.loads(doc), link_schemes=None)
    except (ValueError, RecursionError):  # VoucherError is a ValueError too
        return None


def _cached(row: sqlite3.Row) -> CachedCode:
    return CachedCode(
        code=row["code"],
        shop_id=row["shop_id"],
        visibility=row["visibility"],
        countries=tuple(json.loads(row["countries"])),
        type=row["type"],
        value=row["value"],
        unit=row["unit"],
        expires_at=_parse(row["expires_at"]),
    )
