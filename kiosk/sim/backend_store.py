"""The stand-in backend's SQLite store: shops, drop points, pools, batches, codes, returns.

One connection per thread (the HTTP server is threaded), WAL mode, and every claim in a
``BEGIN IMMEDIATE`` transaction with UNIQUE constraints, so concurrent scans can never pluck the same
code twice or reward the same packaging item twice.

A return is recorded before its voucher is looked for (a shop's webhook may take a while), under the
scan's ``Idempotency-Key``. When the kiosk gave up on that scan and reports an offline voucher naming
the key, the offline voucher becomes the return's reward and the online one is released: a static
code is put back in its pool, an on-demand voucher is voided. A voucher that arrives for a return
rewarded that way is released the moment it arrives, never attached.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from kiosk.sim.sqlite_store import SqliteStore

__all__ = [
    "BackendStore",
    "Pool",
    "Settled",
    "new_ulid",
    "now_iso",
    "DuplicateReturn",
    "DuplicateCode",
    "IdempotencyInFlight",
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shops (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT, website TEXT, logo_png BLOB
);
CREATE TABLE IF NOT EXISTS packaging_prefixes (
    prefix TEXT PRIMARY KEY, shop_id TEXT NOT NULL REFERENCES shops(id)
);
CREATE TABLE IF NOT EXISTS drop_points (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, country TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token_sha256 TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('kiosk', 'admin', 'shop')),
    shop_id TEXT REFERENCES shops(id)
);
CREATE TABLE IF NOT EXISTS pools (
    id TEXT PRIMARY KEY, shop_id TEXT NOT NULL REFERENCES shops(id), name TEXT NOT NULL,
    countries TEXT NOT NULL, visibility TEXT NOT NULL, pool_type TEXT NOT NULL,
    webhook_url TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, pool_id TEXT NOT NULL REFERENCES pools(id) ON DELETE CASCADE,
    type TEXT NOT NULL, value INTEGER NOT NULL, unit TEXT NOT NULL, conditions TEXT NOT NULL,
    expires_at TEXT, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vouchers (
    id TEXT PRIMARY KEY, batch_id TEXT NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
    code TEXT NOT NULL, link TEXT, plucked_at TEXT, created_at TEXT NOT NULL,
    reservation_id TEXT, UNIQUE (batch_id, code)
);
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY, drop_point_id TEXT NOT NULL, created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL, released_at TEXT
);
CREATE TABLE IF NOT EXISTS offline_issuances (
    key TEXT PRIMARY KEY, drop_point_id TEXT NOT NULL, code TEXT NOT NULL, packaging TEXT NOT NULL,
    issued_at TEXT, hardware_id TEXT, status TEXT NOT NULL, received_at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS returns (
    id TEXT PRIMARY KEY, barcode TEXT NOT NULL UNIQUE, shop_id TEXT NOT NULL,
    drop_point_id TEXT NOT NULL, hardware_id TEXT, voucher TEXT, pool_id TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS on_demand_vouchers (
    id TEXT PRIMARY KEY, shop_id TEXT NOT NULL, pool_id TEXT NOT NULL, return_id TEXT NOT NULL,
    code TEXT NOT NULL, voucher TEXT NOT NULL, created_at TEXT NOT NULL, voided_at TEXT,
    UNIQUE (shop_id, code)
);
CREATE TABLE IF NOT EXISTS reconciliations (
    offline_key TEXT PRIMARY KEY, return_id TEXT NOT NULL, released_code TEXT, released_as TEXT,
    at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency (
    token_sha256 TEXT NOT NULL, key TEXT NOT NULL, status INTEGER, body TEXT,
    created_at TEXT NOT NULL, PRIMARY KEY (token_sha256, key)
);
CREATE TABLE IF NOT EXISTS scan_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, barcode TEXT, status INTEGER NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

#: Columns added since the first schema above. Every database gets them from here, a new one as well as
#: one an older stand-in made, so each column has one definition.
_ADDED_COLUMNS = {
    "vouchers": {"reservation_id": "TEXT"},
    "returns": {
        # The scan's Idempotency-Key and who sent it (NULL for returns reported offline).
        "idempotency_key": "TEXT",
        "token_sha256": "TEXT",
        # Where the reward came from, and which row holds it: vouchers.id (static, offline) or
        # on_demand_vouchers.id; offline_key names the offline issuance that rewarded the return.
        "reward_source": "TEXT NOT NULL DEFAULT 'online'",
        "voucher_id": "TEXT",
        "offline_key": "TEXT",
    },
}
#: What an older database's rows mean in the added columns: returns reported offline, and the
#: on-demand vouchers handed out before they had a table (so a webhook cannot repeat them).
_BACKFILL = """
UPDATE returns SET reward_source = 'offline' WHERE pool_id IS NULL
    AND barcode IN (SELECT packaging FROM offline_issuances WHERE status = 'accepted');
INSERT OR IGNORE INTO on_demand_vouchers (id, shop_id, pool_id, return_id, code, voucher, created_at)
    SELECT r.id, p.shop_id, p.id, r.id, json_extract(r.voucher, '$.code'), r.voucher, r.updated_at
    FROM returns r JOIN pools p ON p.id = r.pool_id
    WHERE p.pool_type = 'on_demand' AND r.voucher IS NOT NULL;
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS returns_by_key ON returns (token_sha256, idempotency_key);
"""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(*, seed: str | None = None) -> str:
    """A ULID: 48-bit millisecond time + 80 random bits; ``seed`` makes it deterministic (demo data)."""
    if seed is not None:
        number = int.from_bytes(hashlib.sha256(seed.encode()).digest()[:16], "big") >> 2
    else:
        number = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    return "".join(_CROCKFORD[(number >> shift) & 31] for shift in range(125, -1, -5))


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class IdempotencyInFlight(Exception):
    """A request with this Idempotency-Key is being answered right now."""


class DuplicateReturn(Exception):
    """This packaging barcode has been rewarded before."""


class DuplicateCode(Exception):
    """A static code the shop already has in another batch (it would be handed out twice)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


#: How looking for a return's voucher in one pool ended: ``attached`` (it is the reward now),
#: ``empty`` (a static pool has no free code), ``repeated`` (the webhook answered a code the shop
#: handed out before) or ``reconciled`` (the kiosk reported an offline voucher for this return
#: meanwhile: nothing was taken, an on-demand voucher was recorded void).
Settled = Literal["attached", "empty", "repeated", "reconciled"]


@dataclass(frozen=True)
class Pool:
    id: str
    shop_id: str
    name: str
    countries: list[str]
    visibility: str
    pool_type: str
    webhook_url: str | None
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "shop_id": self.shop_id,
            "name": self.name,
            "countries": self.countries,
            "visibility": self.visibility,
            "pool_type": self.pool_type,
            "webhook_url": self.webhook_url,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


class BackendStore(SqliteStore):
    """All persistent state of the stand-in backend."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._connection().executescript(_SCHEMA)
        self._migrate()
        self._connection().executescript(_INDEXES)

    def _migrate(self) -> None:
        """Bring a database from an older stand-in up to this schema, in one transaction."""
        with self.transaction() as db:
            added = False
            for table, columns in _ADDED_COLUMNS.items():
                present = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                for name, declaration in columns.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {declaration}")
                        added = True
            if added:  # (executescript would commit: the statements go one by one)
                for statement in filter(str.strip, _BACKFILL.split(";")):
                    db.execute(statement)

    # --- settings and credentials ---------------------------------------------------------------

    def setting(self, name: str) -> str | None:
        rows = self.read("SELECT value FROM settings WHERE name = ?", name)
        return rows[0]["value"] if rows else None

    def set_setting(self, name: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)", (name, value))

    def add_token(self, token: str, kind: str, shop_id: str | None = None) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO tokens (token_sha256, kind, shop_id) VALUES (?, ?, ?)",
                (token_hash(token), kind, shop_id),
            )

    def token(self, token: str) -> sqlite3.Row | None:
        rows = self.read("SELECT * FROM tokens WHERE token_sha256 = ?", token_hash(token))
        return rows[0] if rows else None

    # --- shops, prefixes, drop points -----------------------------------------------------------

    def upsert_shop(
        self, shop_id: str, name: str, description: str | None, website: str | None, logo_png: bytes | None
    ) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO shops (id, name, description, website, logo_png) VALUES (?, ?, ?, ?, ?)",
                (shop_id, name, description, website, logo_png),
            )

    def shop(self, shop_id: str) -> sqlite3.Row | None:
        rows = self.read("SELECT * FROM shops WHERE id = ?", shop_id)
        return rows[0] if rows else None

    def add_prefix(self, prefix: str, shop_id: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO packaging_prefixes (prefix, shop_id) VALUES (?, ?)",
                (prefix, shop_id),
            )

    def shop_for_prefix(self, prefix: str) -> str | None:
        rows = self.read("SELECT shop_id FROM packaging_prefixes WHERE prefix = ?", prefix)
        return rows[0]["shop_id"] if rows else None

    def add_drop_point(self, drop_point_id: str, name: str, country: str) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO drop_points (id, name, country) VALUES (?, ?, ?)",
                (drop_point_id, name, country),
            )

    def drop_point(self, drop_point_id: str) -> sqlite3.Row | None:
        rows = self.read("SELECT * FROM drop_points WHERE id = ?", drop_point_id)
        return rows[0] if rows else None

    # --- pools, batches, codes ------------------------------------------------------------------

    def create_pool(
        self,
        shop_id: str,
        name: str,
        countries: list[str],
        visibility: str,
        pool_type: str,
        webhook_url: str | None,
        pool_id: str | None = None,
    ) -> Pool:
        stamp = now_iso()
        pool_id = pool_id or new_ulid()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO pools (id, shop_id, name, countries, visibility, pool_type, webhook_url,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (pool_id, shop_id, name, json.dumps(countries), visibility, pool_type, webhook_url, stamp, stamp),
            )
        pool = self.pool(shop_id, pool_id)
        assert pool is not None
        return pool

    def set_webhook_url(self, pool_id: str, url: str) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE pools SET webhook_url = ?, updated_at = ? WHERE id = ?",
                (url, now_iso(), pool_id),
            )

    def pools(self, shop_id: str | None = None) -> list[Pool]:
        if shop_id is None:
            rows = self.read("SELECT * FROM pools ORDER BY created_at, id")
        else:
            rows = self.read("SELECT * FROM pools WHERE shop_id = ? ORDER BY created_at, id", shop_id)
        return [_pool(row) for row in rows]

    def pool(self, shop_id: str, pool_id: str) -> Pool | None:
        rows = self.read("SELECT * FROM pools WHERE id = ? AND shop_id = ?", pool_id, shop_id)
        return _pool(rows[0]) if rows else None

    def delete_pool(self, shop_id: str, pool_id: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute("DELETE FROM pools WHERE id = ? AND shop_id = ?", (pool_id, shop_id))
        return cursor.rowcount > 0

    def create_batch(self, pool_id: str, fields: dict[str, Any], batch_id: str | None = None) -> dict[str, Any]:
        batch_id = batch_id or new_ulid()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO batches (id, pool_id, type, value, unit, conditions, expires_at,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    batch_id,
                    pool_id,
                    fields["type"],
                    fields["value"],
                    fields["unit"],
                    fields["conditions"],
                    fields["expires_at"],
                    now_iso(),
                ),
            )
        return self.batches(batch_id=batch_id)[0]

    def batches(self, *, shop_id: str | None = None, batch_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT b.*, p.shop_id FROM batches b JOIN pools p ON p.id = b.pool_id"
        if batch_id is not None:
            rows = self.read(sql + " WHERE b.id = ?", batch_id)
        else:
            rows = self.read(sql + " WHERE p.shop_id = ? ORDER BY b.created_at, b.id", shop_id)
        return [
            {
                "id": r["id"],
                "voucher_pool_id": r["pool_id"],
                "shop_id": r["shop_id"],
                "type": r["type"],
                "value": r["value"],
                "unit": r["unit"],
                "conditions": r["conditions"],
                "expires_at": r["expires_at"],
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    def add_codes(self, batch_id: str, codes: list[tuple[str, str | None]]) -> int:
        """Add codes to a batch; a code already in it is skipped (an upload may be retried), a code
        in another batch of the same shop is refused with ``DuplicateCode``."""
        stamp = now_iso()
        with self.transaction() as db:
            for code, _ in codes:
                elsewhere = db.execute(
                    "SELECT 1 FROM vouchers v JOIN batches b ON b.id = v.batch_id JOIN pools p ON p.id = b.pool_id"
                    " WHERE v.code = ? AND v.batch_id != ? AND p.shop_id ="
                    " (SELECT p2.shop_id FROM batches b2 JOIN pools p2 ON p2.id = b2.pool_id WHERE b2.id = ?)",
                    (code, batch_id, batch_id),
                ).fetchone()
                if elsewhere is not None:
                    raise DuplicateCode(code)
            cursor = db.executemany(
                "INSERT OR IGNORE INTO vouchers (id, batch_id, code, link, created_at) VALUES (?, ?, ?, ?, ?)",
                [(new_ulid(), batch_id, code, link, stamp) for code, link in codes],
            )
            return cursor.rowcount

    def codes(self, shop_id: str) -> list[dict[str, Any]]:
        rows = self.read(
            "SELECT v.*, b.pool_id FROM vouchers v JOIN batches b ON b.id = v.batch_id"
            " JOIN pools p ON p.id = b.pool_id WHERE p.shop_id = ? ORDER BY v.created_at, v.code",
            shop_id,
        )
        return [
            {
                "id": r["id"],
                "code": r["code"],
                "link": r["link"],
                "voucher_batch_id": r["batch_id"],
                "voucher_pool_id": r["pool_id"],
                "plucked_at": r["plucked_at"],
                "created_at": r["created_at"],
            }
            for r in rows
        ]

    # --- rewarding a return ---------------------------------------------------------------------

    def settle_static(self, return_id: str, pool_id: str, now: str) -> Settled:
        """Reward the return with the soonest-expiring unexpired free code of a static pool."""
        with self.transaction() as db:
            if _reconciled(db, return_id):
                return "reconciled"
            row = db.execute(
                "SELECT v.id, v.code, v.link, b.type, b.value, b.unit, b.conditions, b.expires_at"
                " FROM vouchers v JOIN batches b ON b.id = v.batch_id"
                " WHERE b.pool_id = ? AND v.plucked_at IS NULL AND v.reservation_id IS NULL"
                " AND (b.expires_at IS NULL OR b.expires_at > ?)"
                " ORDER BY b.expires_at IS NULL, b.expires_at, v.created_at, v.code LIMIT 1",
                (pool_id, now),
            ).fetchone()
            if row is None:
                return "empty"
            db.execute("UPDATE vouchers SET plucked_at = ? WHERE id = ?", (now, row["id"]))
            _set_reward(db, return_id, _voucher_json(row), pool_id, row["id"], now)
        return "attached"

    def settle_on_demand(self, return_id: str, pool: Pool, voucher: dict[str, Any], now: str) -> Settled:
        """Reward the return with a voucher the shop's webhook answered; each code once per shop."""
        with self.transaction() as db:
            repeated = db.execute(
                "SELECT 1 FROM on_demand_vouchers WHERE shop_id = ? AND code = ?", (pool.shop_id, voucher["code"])
            ).fetchone()
            if repeated is not None:
                return "repeated"
            reconciled = _reconciled(db, return_id)
            voucher_id = new_ulid()
            db.execute(
                "INSERT INTO on_demand_vouchers (id, shop_id, pool_id, return_id, code, voucher, created_at,"
                " voided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    voucher_id,
                    pool.shop_id,
                    pool.id,
                    return_id,
                    voucher["code"],
                    json.dumps(voucher),
                    now,
                    now if reconciled else None,
                ),
            )
            if reconciled:
                return "reconciled"
            _set_reward(db, return_id, voucher, pool.id, voucher_id, now)
        return "attached"

    # --- offline reservations ---------------------------------------------------------------------

    def reserve(self, drop_point_id: str, country: str, per_pool: int, now: str, expires_at: str) -> dict[str, Any]:
        """Reserve up to ``per_pool`` free codes of every static pool serving ``country``."""
        reservation_id = new_ulid()
        with self.transaction() as db:
            db.execute(
                "INSERT INTO reservations (id, drop_point_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
                (reservation_id, drop_point_id, now, expires_at),
            )
            for pool in db.execute("SELECT * FROM pools WHERE pool_type = 'static'").fetchall():
                if country not in json.loads(pool["countries"]):
                    continue
                rows = db.execute(
                    "SELECT v.id FROM vouchers v JOIN batches b ON b.id = v.batch_id"
                    " WHERE b.pool_id = ? AND v.plucked_at IS NULL AND v.reservation_id IS NULL"
                    " AND (b.expires_at IS NULL OR b.expires_at > ?)"
                    " ORDER BY b.expires_at IS NULL, b.expires_at, v.created_at, v.code LIMIT ?",
                    (pool["id"], now, per_pool),
                ).fetchall()
                db.executemany(
                    "UPDATE vouchers SET reservation_id = ? WHERE id = ?", [(reservation_id, r["id"]) for r in rows]
                )
        codes = self.read(
            "SELECT v.code, v.link, b.pool_id, b.type, b.value, b.unit, b.conditions, b.expires_at"
            " FROM vouchers v JOIN batches b ON b.id = v.batch_id WHERE v.reservation_id = ? ORDER BY v.code",
            reservation_id,
        )
        return {"id": reservation_id, "codes": [dict(r) for r in codes]}

    def release(self, drop_point_id: str, reservation_id: str, now: str) -> int | None:
        """Give back the codes of a reservation that were not handed out; None if unknown."""
        with self.transaction() as db:
            row = db.execute(
                "SELECT * FROM reservations WHERE id = ? AND drop_point_id = ?", (reservation_id, drop_point_id)
            ).fetchone()
            if row is None:
                return None
            db.execute("UPDATE reservations SET released_at = ? WHERE id = ?", (now, reservation_id))
            cursor = db.execute(
                "UPDATE vouchers SET reservation_id = NULL WHERE reservation_id = ? AND plucked_at IS NULL",
                (reservation_id,),
            )
            return cursor.rowcount

    def record_offline_issuance(self, drop_point_id: str, item: dict[str, Any], token: str, now: str) -> str:
        """Count one offline issuance once per key, forever; returns its status.

        A packaging that has a return already is a ``duplicate_return``, unless that return was
        recorded under the item's ``online_attempt_key`` by the same token: then the kiosk gave up
        on that scan, the offline voucher becomes the reward and the online one is released."""
        key = str(item.get("key"))
        with self.transaction() as db:
            seen = db.execute("SELECT status FROM offline_issuances WHERE key = ?", (key,)).fetchone()
            if seen is not None:
                return "duplicate"
            voucher = db.execute(
                "SELECT v.id, v.code, v.link, b.pool_id, b.type, b.value, b.unit, b.conditions, b.expires_at,"
                " p.shop_id FROM vouchers v JOIN batches b ON b.id = v.batch_id"
                " JOIN pools p ON p.id = b.pool_id JOIN reservations r ON r.id = v.reservation_id"
                " WHERE v.code = ? AND r.drop_point_id = ?",
                (item.get("code"), drop_point_id),
            ).fetchone()
            if voucher is None:
                status = "unknown_code"
            else:
                db.execute(
                    "UPDATE vouchers SET plucked_at = COALESCE(plucked_at, ?) WHERE id = ?",
                    (item.get("issued_at") or now, voucher["id"]),
                )
                status = _reward_offline(db, drop_point_id, item, voucher, token, now)
            db.execute(
                "INSERT INTO offline_issuances (key, drop_point_id, code, packaging, issued_at, hardware_id, status,"
                " received_at, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    drop_point_id,
                    str(item.get("code")),
                    str(item.get("packaging")),
                    item.get("issued_at"),
                    item.get("hardware_id"),
                    status,
                    now,
                    json.dumps(item, ensure_ascii=False),
                ),
            )
        return status

    def offline_issuances(self) -> list[dict[str, Any]]:
        return [
            {**json.loads(r["body"]), "status": r["status"]}
            for r in self.read("SELECT body, status FROM offline_issuances ORDER BY received_at, key")
        ]

    def plucked_codes(self) -> list[str]:
        return [
            r["code"]
            for r in self.read("SELECT code FROM vouchers WHERE plucked_at IS NOT NULL ORDER BY plucked_at, code")
        ]

    def voided_codes(self) -> list[str]:
        return [
            r["code"]
            for r in self.read(
                "SELECT code FROM on_demand_vouchers WHERE voided_at IS NOT NULL ORDER BY voided_at, code"
            )
        ]

    def put_back_codes(self) -> list[str]:
        return [
            r["released_code"]
            for r in self.read(
                "SELECT released_code FROM reconciliations WHERE released_as = 'put_back' ORDER BY at, offline_key"
            )
        ]

    # --- returns and idempotency ----------------------------------------------------------------

    def record_return(
        self, barcode: str, shop_id: str, drop_point_id: str, hardware_id: str | None, *, token: str, key: str | None
    ) -> str:
        """Claim the reward for a barcode, before its voucher is looked for; ``DuplicateReturn`` if it
        was claimed before."""
        stamp = now_iso()
        return_id = new_ulid()
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO returns (id, barcode, shop_id, drop_point_id, hardware_id, created_at, updated_at,"
                    " idempotency_key, token_sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (return_id, barcode, shop_id, drop_point_id, hardware_id, stamp, stamp, key, token_hash(token)),
                )
        except sqlite3.IntegrityError:
            raise DuplicateReturn(barcode) from None
        return return_id

    def return_row(self, return_id: str) -> dict[str, Any]:
        """A return with its reward as it stands (``voucher_shop_id``: the shop of the reward's pool)."""
        return self._returns("WHERE r.id = ?", return_id)[0]

    def return_for_key(self, token: str, key: str) -> dict[str, Any] | None:
        """The return a scan with this Idempotency-Key recorded, if it recorded one."""
        rows = self._returns("WHERE r.token_sha256 = ? AND r.idempotency_key = ?", token_hash(token), key)
        return rows[0] if rows else None

    def returns(self) -> list[dict[str, Any]]:
        return self._returns("ORDER BY r.created_at, r.id")

    def _returns(self, where: str, *args: Any) -> list[dict[str, Any]]:
        rows = self.read(
            "SELECT r.*, p.shop_id AS voucher_shop_id FROM returns r LEFT JOIN pools p ON p.id = r.pool_id " + where,
            *args,
        )
        return [{**dict(r), "voucher": json.loads(r["voucher"]) if r["voucher"] else None} for r in rows]

    def begin_idempotent(self, token: str, key: str) -> tuple[int, str] | None:
        """Reserve a key: None when it is new, the stored (status, body) to replay when it is not,
        ``IdempotencyInFlight`` while the first request with this key is still being answered."""
        with self.transaction() as db:
            rows = db.execute(
                "SELECT status, body FROM idempotency WHERE token_sha256 = ? AND key = ?",
                (token_hash(token), key),
            ).fetchall()
            if not rows:
                db.execute(
                    "INSERT INTO idempotency (token_sha256, key, created_at) VALUES (?, ?, ?)",
                    (token_hash(token), key, now_iso()),
                )
                return None
        if rows[0]["status"] is None:
            raise IdempotencyInFlight(key)
        return int(rows[0]["status"]), rows[0]["body"]

    def finish_idempotent(self, token: str, key: str, status: int, body: str | None) -> None:
        with self.transaction() as db:
            if status >= 500:  # a server failure is not an answer: let the retry try again
                db.execute("DELETE FROM idempotency WHERE token_sha256 = ? AND key = ?", (token_hash(token), key))
            else:
                db.execute(
                    "UPDATE idempotency SET status = ?, body = ? WHERE token_sha256 = ? AND key = ?",
                    (status, body, token_hash(token), key),
                )

    def log_scan(self, barcode: str | None, status: int) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO scan_log (barcode, status, at) VALUES (?, ?, ?)", (barcode, status, now_iso()))

    def scan_log(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.read("SELECT barcode, status, at FROM scan_log ORDER BY seq")]


def _pool(row: sqlite3.Row) -> Pool:
    return Pool(
        id=row["id"],
        shop_id=row["shop_id"],
        name=row["name"],
        countries=json.loads(row["countries"]),
        visibility=row["visibility"],
        pool_type=row["pool_type"],
        webhook_url=row["webhook_url"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _voucher_json(row: sqlite3.Row) -> dict[str, Any]:
    """A static code with its batch's fields, as the seed voucher model has them."""
    return {
        "code": row["code"],
        "link": row["link"],
        "type": row["type"],
        "value": row["value"],
        "unit": row["unit"],
        "conditions": row["conditions"],
        "expires_at": row["expires_at"],
    }


def _reconciled(db: sqlite3.Connection, return_id: str) -> bool:
    """The kiosk has reported an offline voucher as this return's reward."""
    row = db.execute("SELECT reward_source FROM returns WHERE id = ?", (return_id,)).fetchone()
    return row is not None and row["reward_source"] == "offline"


def _set_reward(
    db: sqlite3.Connection,
    return_id: str,
    voucher: dict[str, Any],
    pool_id: str,
    voucher_id: str,
    now: str,
    *,
    offline_key: str | None = None,
) -> None:
    db.execute(
        "UPDATE returns SET voucher = ?, pool_id = ?, voucher_id = ?, updated_at = ?,"
        " reward_source = ?, offline_key = ? WHERE id = ?",
        (json.dumps(voucher), pool_id, voucher_id, now, "offline" if offline_key else "online", offline_key, return_id),
    )


def _reward_offline(
    db: sqlite3.Connection, drop_point_id: str, item: dict[str, Any], voucher: sqlite3.Row, token: str, now: str
) -> str:
    """Make an offline voucher the reward of its packaging's return (see ``record_offline_issuance``)."""
    packaging, key = str(item.get("packaging")), str(item.get("key"))
    existing = db.execute("SELECT * FROM returns WHERE barcode = ?", (packaging,)).fetchone()
    if existing is None:
        prefix_shop = db.execute("SELECT shop_id FROM packaging_prefixes WHERE prefix = ?", (packaging[:4],)).fetchone()
        return_id = new_ulid()
        db.execute(
            "INSERT INTO returns (id, barcode, shop_id, drop_point_id, hardware_id, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                return_id,
                packaging,
                prefix_shop["shop_id"] if prefix_shop else voucher["shop_id"],
                drop_point_id,
                item.get("hardware_id"),
                now,
                now,
            ),
        )
        _set_reward(db, return_id, _voucher_json(voucher), voucher["pool_id"], voucher["id"], now, offline_key=key)
        return "accepted"
    attempt = item.get("online_attempt_key")
    gave_up_on_it = (
        isinstance(attempt, str)
        and attempt != ""
        and existing["idempotency_key"] == attempt
        and existing["token_sha256"] == token_hash(token)
        and existing["reward_source"] == "online"
    )
    if not gave_up_on_it:
        return "duplicate_return"
    released_code, released_as = _release_online_reward(db, existing, now)
    _set_reward(db, existing["id"], _voucher_json(voucher), voucher["pool_id"], voucher["id"], now, offline_key=key)
    db.execute(
        "INSERT INTO reconciliations (offline_key, return_id, released_code, released_as, at) VALUES (?, ?, ?, ?, ?)",
        (key, existing["id"], released_code, released_as, now),
    )
    return "accepted"


def _release_online_reward(db: sqlite3.Connection, existing: sqlite3.Row, now: str) -> tuple[str | None, str | None]:
    """Undo an online reward nobody received: an on-demand voucher is voided, a static code goes back
    into its pool. Nothing to undo while the voucher is still being looked for (or none was found)."""
    if existing["voucher"] is None:
        return None, None
    code = json.loads(existing["voucher"])["code"]
    voided = db.execute(
        "UPDATE on_demand_vouchers SET voided_at = ? WHERE id = ? AND voided_at IS NULL", (now, existing["voucher_id"])
    )
    if voided.rowcount:
        return code, "voided"
    db.execute("UPDATE vouchers SET plucked_at = NULL WHERE id = ?", (existing["voucher_id"],))
    return code, "put_back"
