"""The offline commands: ``pools``, ``journal`` and ``sync``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kiosk.cli.common import aligned, config_arg, load, local_time, offline_service, open_store, plural
from kiosk.presentation.terminal import json_text

if TYPE_CHECKING:
    from kiosk.cli.common import Commands

__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add this group's commands to the ``kiosk`` parser."""
    pools = commands.add_parser("pools", help="offline pools: sync, status, release")
    pool_actions = pools.add_subparsers(dest="pools_command", required=True, metavar="ACTION")
    for action, text in (
        ("sync", "forward pending issuances, then reserve more codes for offline use"),
        ("status", "cached codes, bundles, pending issuances and the offline limits"),
        ("release", "forward pending issuances, then give every reserved code back"),
    ):
        sub = pool_actions.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        config_arg(sub)
        sub.add_argument("--json", action="store_true", help="print one JSON document")
        sub.set_defaults(handler=_pools, action=action)
    journal = commands.add_parser("journal", help="the vouchers this kiosk handed out")
    config_arg(journal)
    journal.add_argument("--pending", action="store_true", help="only offline issuances not yet forwarded")
    journal.add_argument("--json", action="store_true", help="print one JSON document")
    journal.set_defaults(handler=_journal)
    sync = commands.add_parser("sync", help="forward pending offline issuances to the backend now")
    config_arg(sync)
    sync.add_argument("--json", action="store_true", help="print one JSON document")
    sync.set_defaults(handler=_sync)


def _pools(args: argparse.Namespace) -> int:
    import httpx

    from kiosk.issuance.offline_pools_client import BundleRefused

    config = load(args.config)
    with contextlib.closing(open_store(config)) as store:

        async def act() -> dict[str, Any]:
            async with offline_service(config, store) as service:
                if args.action == "sync":
                    return (await service.sync(force=True)).to_json()
                if args.action == "release":
                    return (await service.release_all()).to_json()
                return {}

        try:
            doc = asyncio.run(act())
        except (httpx.HTTPError, BundleRefused, ValueError) as exc:
            print(f"kiosk: pools {args.action} failed: {exc}", file=sys.stderr)
            return 1
        doc |= {
            "available": [dict(row) for row in store.available()],
            "bundles": [dict(row) for row in store.bundles()],
            "pending": store.pending_count(),
            "last_contact": store.meta("last_contact"),
            "last_forward": store.meta("last_forward"),
        }
        shop_names = store.shop_names()
    print(json_text(doc) if args.json else "\n".join(_pools_lines(doc, shop_names, config.kiosk.timezone)))
    return 0


def _pools_lines(doc: dict[str, Any], shop_names: Mapping[str, str], zone: str) -> list[str]:
    """``kiosk pools`` for people: what the action did, then the cache, bundles and forwarding."""
    lines = []
    if "codes_added" in doc:
        reserved = f"reserved {plural(doc['codes_added'], 'new code')}"
        done = f"{reserved} (bundle {doc['bundle_id']})" if doc["bundle_id"] else reserved
        lines.append(f"forwarded {plural(doc['forwarded'], 'issuance')}; {done}")
    if "released" in doc:
        given_back = [
            f"{plural(codes, 'code')} of bundle {bundle} given back" for bundle, codes in doc["released"].items()
        ]
        lines.append(
            f"forwarded {plural(doc['forwarded'], 'issuance')}; " + ("; ".join(given_back) or "no bundle to release")
        )
    cached = [
        (
            shop_names.get(row["shop_id"], "(shop not named)"),
            row["shop_id"],
            row["visibility"],
            plural(row["count"], "code"),
        )
        for row in doc["available"]
    ]
    bundles = [
        (
            bundle["id"],
            f"released {local_time(bundle['released_at'], zone)}"
            if bundle["released_at"]
            else f"expires {local_time(bundle['expires_at'], zone)}",
        )
        for bundle in doc["bundles"]
    ]
    lines.append("codes cached for offline use:" + ("" if cached else " none"))
    lines += aligned(cached, indent="  ")
    lines.append("bundles:" + ("" if bundles else " none"))
    lines += aligned(bundles, indent="  ")
    lines.append(f"pending issuances: {doc['pending']}")
    lines.append(f"last contact with the backend: {local_time(doc['last_contact'], zone)}")
    lines.append(f"last forward: {local_time(doc['last_forward'], zone)}")
    return lines


def _journal(args: argparse.Namespace) -> int:
    config = load(args.config)
    store = open_store(config)
    entries = store.journal(pending_only=args.pending)
    store.close()
    docs = [entry.to_json() for entry in entries]
    if args.json:
        print(json_text(docs))
    elif not docs:
        print("nothing waiting to be forwarded" if args.pending else "no vouchers handed out yet")
    else:
        zone = config.kiosk.timezone
        print(
            "\n".join(
                aligned(
                    (
                        local_time(doc["created_at"], zone),
                        doc["source"],
                        doc["code"],
                        doc["packaging"],
                        "forwarded" if doc["forwarded"] else "pending",
                    )
                    for doc in docs
                )
            )
        )
    return 0


def _sync(args: argparse.Namespace) -> int:
    import httpx

    config = load(args.config)
    with contextlib.closing(open_store(config)) as store:

        async def forward() -> int:
            async with offline_service(config, store) as service:
                return await service.forward()

        try:
            forwarded = asyncio.run(forward())
        except (httpx.HTTPError, ValueError) as exc:
            print(f"kiosk: sync failed: {exc}; {store.pending_count()} issuances still pending", file=sys.stderr)
            return 1
        pending = store.pending_count()
    print(
        json.dumps({"forwarded": forwarded, "pending": pending})
        if args.json
        else f"forwarded {forwarded}, pending {pending}"
    )
    return 0
