"""The stand-in Voucherify's SQLite store: campaigns, vouchers, publications, redemptions.

One connection per thread (the HTTP server is threaded), WAL mode, and every change in one
``BEGIN IMMEDIATE`` transaction with UNIQUE constraints, so concurrent publications never hand out
one code twice and concurrent redemptions never use a code past its quantity. What Voucherify
refuses is raised as ``Refusal`` with its official key (``not_found``, ``duplicate_source_id``,
``quantity_exceeded``, ``voucher_expired``, ``voucher_disabled``, ``voucher_not_active``,
``already_rolled_back``); the server turns it into Voucherify's error object.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from kiosk.core.instants import iso_z
from kiosk.sim.sqlite_store import SqliteStore, first_row, now_iso, the_row

__all__ = ["VoucherifyStore", "Publication", "Refusal", "generate_code", "new_id"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS campaigns (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, doc TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS vouchers (
    id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, campaign_id TEXT REFERENCES campaigns(id),
    doc TEXT NOT NULL, active INTEGER NOT NULL, quantity INTEGER, redeemed INTEGER NOT NULL DEFAULT 0,
    published INTEGER NOT NULL DEFAULT 0, holder_id TEXT, created_at TEXT NOT NULL, updated_at TEXT
);
CREATE INDEX IF NOT EXISTS vouchers_by_campaign ON vouchers (campaign_id);
CREATE TABLE IF NOT EXISTS customers (
    id TEXT PRIMARY KEY, source_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS publications (
    id TEXT PRIMARY KEY, source_id TEXT UNIQUE, campaign_id TEXT, voucher_id TEXT NOT NULL,
    customer_id TEXT NOT NULL, metadata TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS redemptions (
    id TEXT PRIMARY KEY, voucher_id TEXT NOT NULL, customer_id TEXT, amount INTEGER,
    metadata TEXT, created_at TEXT NOT NULL, rollback_id TEXT, rollback_reason TEXT, rolled_back_at TEXT
);
"""
_ALPHANUMERIC = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Refusal(Exception):
    """What Voucherify answers with an error object: HTTP ``status``, ``key``, ``message``."""

    def __init__(
        self,
        status: int,
        key: str,
        message: str,
        details: str,
        *,
        resource_id: str | None = None,
        resource_type: str | None = None,
    ) -> None:
        super().__init__(key)
        self.status, self.key, self.message, self.details = status, key, message, details
        self.resource_id, self.resource_type = resource_id, resource_type


@dataclass(frozen=True)
class Publication:
    publication: dict[str, Any]
    voucher_id: str


def new_id(prefix: str) -> str:
    """An id in Voucherify's style (``v_…``, ``camp_…``, ``pub_…``, ``r_…``, ``rr_…``)."""
    return prefix + secrets.token_hex(12)


def generate_code(code_config: dict[str, Any]) -> str:
    """A code from ``code_config``: each ``#`` of ``pattern`` (else ``length`` of them, 8 by
    default) a random character of ``charset`` (alphanumeric by default), between ``prefix`` and
    ``postfix``; every other character of the pattern stands for itself."""
    charset = code_config.get("charset") or _ALPHANUMERIC
    pattern = code_config.get("pattern") or "#" * int(code_config.get("length") or 8)
    body = "".join(secrets.choice(charset) if ch == "#" else ch for ch in pattern)
    return f"{code_config.get('prefix') or ''}{body}{code_config.get('postfix') or ''}"


def _not_found(kind: str, ident: str) -> Refusal:
    return Refusal(
        404,
        "not_found",
        "Resource not found",
        f"Cannot find {kind} with id {ident}",
        resource_id=ident,
        resource_type=kind,
    )


class VoucherifyStore(SqliteStore):
    """The stand-in's data; safe to share between the server's threads."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self._connection().executescript(_SCHEMA)
        self._names: dict[str, str | None] = {}

    # --- settings -------------------------------------------------------------------------------

    def setting(self, name: str, make: Any = None) -> str | None:
        """The stored value of ``name``; with ``make`` (a callable), created on first use."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()
            if row is None and make is not None:
                value = make()
                db.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (name, value))
                return str(value)
        return None if row is None else str(row["value"])

    # --- campaigns ------------------------------------------------------------------------------

    def create_campaign(self, doc: dict[str, Any]) -> dict[str, Any]:
        """Store a campaign document (``name``, ``voucher`` template with ``code_config``, dates);
        a campaign of that name is kept as it is, so seeding twice changes nothing."""
        with self.transaction() as db:
            row = db.execute("SELECT doc FROM campaigns WHERE name = ?", (doc["name"],)).fetchone()
            if row is not None:
                return dict(json.loads(row["doc"]))
            stamp = now_iso()
            stored = {"id": new_id("camp_"), "created_at": stamp, **doc}
            db.execute(
                "INSERT INTO campaigns (id, name, doc, created_at) VALUES (?, ?, ?, ?)",
                (stored["id"], stored["name"], json.dumps(stored), stamp),
            )
            return stored

    def campaign_name(self, campaign_id: str | None) -> str | None:
        """A campaign's name, as every voucher document names it (campaigns keep their names)."""
        if campaign_id is None:
            return None
        name = self._names.get(campaign_id)
        if name is None:
            row = self._connection().execute("SELECT name FROM campaigns WHERE id = ?", (campaign_id,)).fetchone()
            name = self._names[campaign_id] = row["name"] if row is not None else None
        return name

    def campaign(self, id_or_name: str) -> dict[str, Any]:
        row = (
            self._connection()
            .execute("SELECT doc FROM campaigns WHERE id = ? OR name = ?", (id_or_name, id_or_name))
            .fetchone()
        )
        if row is None:
            raise _not_found("campaign", id_or_name)
        doc = dict(json.loads(row["doc"]))
        doc["vouchers_count"] = (
            self._connection()
            .execute("SELECT COUNT(*) FROM vouchers WHERE campaign_id = ?", (doc["id"],))
            .fetchone()[0]
        )
        return doc

    # --- vouchers -------------------------------------------------------------------------------

    def voucher(self, code: str) -> sqlite3.Row:
        row = first_row(self._connection().execute("SELECT * FROM vouchers WHERE code = ? OR id = ?", (code, code)))
        if row is None:
            raise _not_found("voucher", code)
        return row

    def voucher_by_id(self, voucher_id: str) -> sqlite3.Row:
        return the_row(self._connection().execute("SELECT * FROM vouchers WHERE id = ?", (voucher_id,)))

    def set_active(self, code: str, active: bool) -> sqlite3.Row:
        with self.transaction() as db:
            row = db.execute("SELECT id FROM vouchers WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise _not_found("voucher", code)
            db.execute(
                "UPDATE vouchers SET active = ?, updated_at = ? WHERE id = ?", (int(active), now_iso(), row["id"])
            )
        return self.voucher(code)

    def _new_voucher(self, db: sqlite3.Connection, campaign: dict[str, Any]) -> str:
        """A fresh code of ``campaign`` (an auto-update campaign makes one per publication)."""
        template = campaign.get("voucher") or {}
        stamp = now_iso()
        doc = {
            "type": template.get("type", "DISCOUNT_VOUCHER"),
            "discount": template.get("discount"),
            "gift": template.get("gift"),
            "start_date": campaign.get("start_date"),
            "expiration_date": campaign.get("expiration_date"),
            "additional_info": template.get("additional_info"),
        }
        quantity = (template.get("redemption") or {}).get("quantity")
        for _ in range(50):
            code = generate_code(template.get("code_config") or {})
            voucher_id = new_id("v_")
            try:
                db.execute(
                    "INSERT INTO vouchers (id, code, campaign_id, doc, active, quantity, created_at) "
                    "VALUES (?, ?, ?, ?, 1, ?, ?)",
                    (voucher_id, code, campaign["id"], json.dumps(doc), quantity, stamp),
                )
                return voucher_id
            except sqlite3.IntegrityError:
                continue  # the pattern drew a code that exists: draw again
        raise Refusal(
            400,
            "voucher_cannot_be_published",
            "Voucher cannot be published",
            "The campaign's code pattern has no unused codes left",
        )

    # --- publications ---------------------------------------------------------------------------

    def publish(
        self, campaign_name: str, source_id: str | None, customer_source_id: str, metadata: dict[str, Any]
    ) -> Publication:
        """A new code of the campaign for the customer. The same ``source_id`` with the same campaign
        and customer is the same publication again (a retry); with another campaign or customer it
        is ``duplicate_source_id``."""
        with self.transaction() as db:
            row = db.execute("SELECT doc FROM campaigns WHERE name = ?", (campaign_name,)).fetchone()
            if row is None:
                raise _not_found("campaign", campaign_name)
            campaign = json.loads(row["doc"])
            customer_id = self._customer(db, customer_source_id)
            if source_id is not None:
                earlier = db.execute("SELECT * FROM publications WHERE source_id = ?", (source_id,)).fetchone()
                if earlier is not None:
                    if earlier["campaign_id"] == campaign["id"] and earlier["customer_id"] == customer_id:
                        return Publication(self._publication_row(db, earlier), earlier["voucher_id"])
                    raise Refusal(
                        400,
                        "duplicate_source_id",
                        "Duplicate source_id",
                        f"Publication with source_id: '{source_id}' already exists",
                    )
            voucher_id = self._new_voucher(db, campaign)
            publication_id = new_id("pub_")
            db.execute(
                "INSERT INTO publications (id, source_id, campaign_id, voucher_id, customer_id, metadata, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (publication_id, source_id, campaign["id"], voucher_id, customer_id, json.dumps(metadata), now_iso()),
            )
            db.execute(
                "UPDATE vouchers SET published = published + 1, holder_id = ? WHERE id = ?", (customer_id, voucher_id)
            )
            row = db.execute("SELECT * FROM publications WHERE id = ?", (publication_id,)).fetchone()
            return Publication(self._publication_row(db, row), voucher_id)

    def publications(self, source_id: str | None) -> list[dict[str, Any]]:
        db = self._connection()
        if source_id is None:
            rows = db.execute("SELECT * FROM publications ORDER BY created_at DESC LIMIT 10").fetchall()
        else:
            rows = db.execute("SELECT * FROM publications WHERE source_id = ?", (source_id,)).fetchall()
        return [self._publication_row(db, row) for row in rows]

    def _publication_row(self, db: sqlite3.Connection, row: sqlite3.Row) -> dict[str, Any]:
        customer = db.execute("SELECT * FROM customers WHERE id = ?", (row["customer_id"],)).fetchone()
        return {
            "id": row["id"],
            "source_id": row["source_id"],
            "created_at": row["created_at"],
            "voucher_id": row["voucher_id"],
            "metadata": json.loads(row["metadata"]),
            "customer": {
                "id": customer["id"],
                "source_id": customer["source_id"],
                "created_at": customer["created_at"],
            },
        }

    @staticmethod
    def _customer(db: sqlite3.Connection, source_id: str) -> str:
        row = db.execute("SELECT id FROM customers WHERE source_id = ?", (source_id,)).fetchone()
        if row is not None:
            return str(row["id"])
        customer_id = new_id("cust_")
        db.execute(
            "INSERT INTO customers (id, source_id, created_at) VALUES (?, ?, ?)", (customer_id, source_id, now_iso())
        )
        return customer_id

    def customer(self, source_id: str | None) -> sqlite3.Row | None:
        if source_id is None:
            return None
        with self.transaction() as db:
            customer_id = self._customer(db, source_id)
        return the_row(self._connection().execute("SELECT * FROM customers WHERE id = ?", (customer_id,)))

    # --- validation and redemption --------------------------------------------------------------

    def check(self, row: sqlite3.Row, now: datetime) -> None:
        """Raise the refusal Voucherify gives a code that cannot be redeemed now."""
        doc = json.loads(row["doc"])
        if not row["active"]:
            raise Refusal(
                400,
                "voucher_disabled",
                "Voucher is disabled",
                f"Voucher {row['code']} is disabled",
                resource_id=row["code"],
                resource_type="voucher",
            )
        if doc.get("start_date") and datetime.fromisoformat(doc["start_date"]) > now:
            raise Refusal(
                400,
                "voucher_not_active",
                "Voucher not active",
                f"Voucher {row['code']} is not active yet",
                resource_id=row["code"],
                resource_type="voucher",
            )
        if doc.get("expiration_date") and datetime.fromisoformat(doc["expiration_date"]) <= now:
            raise Refusal(
                400,
                "voucher_expired",
                "Voucher expired",
                f"Voucher {row['code']} has expired",
                resource_id=row["code"],
                resource_type="voucher",
            )
        if row["quantity"] is not None and row["redeemed"] >= row["quantity"]:
            raise Refusal(
                400,
                "quantity_exceeded",
                "Quantity exceeded",
                f"Voucher {row['code']} has been redeemed {row['redeemed']} of {row['quantity']} times",
                resource_id=row["code"],
                resource_type="voucher",
            )

    def redeem(
        self, code: str, customer_id: str | None, amount: int | None, metadata: dict[str, Any] | None, now: datetime
    ) -> sqlite3.Row:
        """One use of ``code``, checked and counted in one transaction (two customers racing for a
        single-use code: one redemption, one ``quantity_exceeded``)."""
        with self.transaction() as db:
            row = db.execute("SELECT * FROM vouchers WHERE code = ?", (code,)).fetchone()
            if row is None:
                raise _not_found("voucher", code)
            self.check(row, now)
            redemption_id = new_id("r_")
            db.execute(
                "INSERT INTO redemptions (id, voucher_id, customer_id, amount, metadata, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    redemption_id,
                    row["id"],
                    customer_id,
                    amount,
                    json.dumps(metadata) if metadata is not None else None,
                    iso_z(now),
                ),
            )
            db.execute(
                "UPDATE vouchers SET redeemed = redeemed + 1, updated_at = ? WHERE id = ?", (iso_z(now), row["id"])
            )
            return the_row(db.execute("SELECT * FROM redemptions WHERE id = ?", (redemption_id,)))

    def rollback(self, redemption_id: str, reason: str | None, now: datetime) -> sqlite3.Row:
        with self.transaction() as db:
            row = db.execute("SELECT * FROM redemptions WHERE id = ?", (redemption_id,)).fetchone()
            if row is None:
                raise _not_found("redemption", redemption_id)
            if row["rollback_id"] is not None:
                raise Refusal(
                    400,
                    "already_rolled_back",
                    "Already rolled back",
                    "Redemption has been already rolled back.",
                    resource_id=row["rollback_id"],
                    resource_type="redemption_rollback",
                )
            db.execute(
                "UPDATE redemptions SET rollback_id = ?, rollback_reason = ?, rolled_back_at = ? WHERE id = ?",
                (new_id("rr_"), reason, iso_z(now), redemption_id),
            )
            db.execute(
                "UPDATE vouchers SET redeemed = redeemed - 1, updated_at = ? WHERE id = ?",
                (iso_z(now), row["voucher_id"]),
            )
            return the_row(db.execute("SELECT * FROM redemptions WHERE id = ?", (redemption_id,)))

    def customer_by_id(self, customer_id: str | None) -> sqlite3.Row | None:
        if customer_id is None:
            return None
        return first_row(self._connection().execute("SELECT * FROM customers WHERE id = ?", (customer_id,)))
