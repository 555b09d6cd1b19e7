#!/usr/bin/env python3
"""Offline figures: issuance latency including the durable commit, forwarding a 10,000-entry
journal to the stand-in backend, and a long kill -9 loop.

Run: .venv/bin/python scripts/bench/offline.py [--issues N] [--journal N] [--kills N] [--strace-kills N]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline_pools_client import OfflinePoolsClient
from kiosk.issuance.offline_store import OfflineStore, utc_now
from kiosk.sim.backend import StandInBackend
from kiosk.sim.backend_store import new_ulid
from kiosk.sim.crash_loop import run_crash_loop
from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS, seed_demo


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


async def issue_and_forward(issues: int, journal: int) -> None:
    with tempfile.TemporaryDirectory() as work:
        backend = StandInBackend(Path(work) / "backend.sqlite")
        server = backend.serve().start()
        seed_demo(backend.store, "http://127.0.0.1:9/unused", "http://127.0.0.1:9/unused")
        pool = backend.store.create_pool(SHOPS["rezip"].id, "Bench", ["DK"], "public", "static", None)
        batch = backend.store.create_batch(
            pool.id, {"type": "gift", "value": 1, "unit": "Sticker", "conditions": "", "expires_at": None}
        )
        total = max(issues, journal)
        backend.store.add_codes(batch["id"], [(f"BENCH-{n:06d}", None) for n in range(total)])
        store = OfflineStore(Path(work) / "offline.sqlite")
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"}, timeout=120
        ) as http:
            client = OfflinePoolsClient(http, DROP_POINT_DK, jwks_url="/.well-known/jwks.json")
            for _ in range(-(-total // 500)):
                bundle = await client.reserve(500, now=utc_now())
                store.import_bundle(bundle.body, bundle.signature)
            store.note_contact()
            limits = OfflineLimits(max_issuances=10**9, max_offline_age=timedelta(days=1))
            times = []
            for _ in range(total):
                started = time.perf_counter()
                claim = store.claim("30PH" + new_ulid(), country="DK", limits=limits, now=utc_now())
                times.append((time.perf_counter() - started) * 1000)
                assert not isinstance(claim, str), claim
            measured = times[:issues]
            print(
                f"offline issuance incl. durable commit (synchronous=FULL): n={len(measured)} "
                f"median {statistics.median(measured):.2f} ms, p95 {percentile(measured, 0.95):.2f} ms"
            )
            pending = store.pending(10**6)[:journal]
            started = time.perf_counter()
            for start in range(0, len(pending), 500):
                results = await client.forward(pending[start : start + 500])
                store.mark_forwarded(results)
            elapsed = time.perf_counter() - started
            held = len(httpx.get(server.url + "/_sim/state", timeout=60).json()["offline_issuances"])
            print(f"forwarding a {len(pending)}-entry journal: {elapsed:.1f} s ({held} held by the backend)")
        store.close()
        server.stop()
        backend.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=2000)
    parser.add_argument("--journal", type=int, default=10000)
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--strace-kills", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(issue_and_forward(args.issues, args.journal))
    if args.kills or args.strace_kills:
        started = time.perf_counter()
        report = run_crash_loop(args.kills, args.strace_kills, codes=max(5000, 20 * (args.kills + args.strace_kills)))
        print(
            f"crash loop: {report.kills} random SIGKILLs + {report.strace_kills} at a chosen fdatasync/pwrite, "
            f"{report.issued} issuances, problems: {report.problems or 'none'}, "
            f"backend holds each once: {report.forwarded_once} ({time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
