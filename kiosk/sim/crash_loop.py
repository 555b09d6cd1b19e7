"""Power cuts on purpose: a worker issues offline vouchers as fast as it can and is killed with
SIGKILL at random moments (or, under strace, exactly at its N-th fdatasync/pwrite), again and again.
After every kill the journal must hold: ``PRAGMA integrity_check`` is ok, no code is in the journal
twice, no code is claimed without its journal row (or the reverse), every issuance the worker
reported as committed or shown is journalled (and marked shown). At the end everything is
forwarded, twice, to the stand-in backend, which must hold each issuance exactly once.

    python -m kiosk.sim.crash_loop worker DB     (the worker; prints CLAIMED/SHOWN/FORWARDED lines)
"""

from __future__ import annotations

import os
import random
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline_store import OfflineStore, utc_now
from kiosk.sim.backend_store import new_ulid

__all__ = ["CrashReport", "run_crash_loop", "worker"]

_LIMITS = OfflineLimits(max_issuances=10**9, max_offline_age=timedelta(days=365))


@dataclass
class CrashReport:
    kills: int = 0
    strace_kills: int = 0
    issued: int = 0
    problems: list[str] = field(default_factory=list)
    forwarded_once: bool = False


def worker(db: Path) -> None:
    """Issue, show and now and then forward, forever; say what has been committed."""
    store = OfflineStore(db)
    store.note_contact()
    rng = random.Random(os.getpid())
    out = sys.stdout
    while True:
        packaging = "30PH" + new_ulid(seed=f"{os.getpid()}:{rng.random()}")
        claim = store.claim(packaging, country="DK", limits=_LIMITS, now=utc_now())
        if isinstance(claim, str):
            print(f"EMPTY {claim}", file=out, flush=True)
            time.sleep(0.05)
            continue
        print(f"CLAIMED {claim.key} {claim.voucher.code}", file=out, flush=True)
        if rng.random() < 0.7:
            store.mark_shown(claim.key)
            print(f"SHOWN {claim.key}", file=out, flush=True)
        if rng.random() < 0.1:
            pending = store.pending(50)
            store.mark_forwarded([{"key": p["key"], "status": "accepted"} for p in pending])
            print("FORWARDED " + " ".join(p["key"] for p in pending), file=out, flush=True)
        time.sleep(0.005)  # a kiosk is not a loop: leave the kills time to land between commits too


def _check(db: Path, claimed: set[str], shown: set[str]) -> list[str]:
    problems = []
    connection = sqlite3.connect(db)
    try:
        if connection.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("integrity_check failed")
        keys = {row[0] for row in connection.execute("SELECT key FROM journal")}
        codes = [row[0] for row in connection.execute("SELECT code FROM journal")]
        if len(codes) != len(set(codes)):
            problems.append("a code is in the journal twice")
        claimed_codes = {
            row[0]: row[1]
            for row in connection.execute("SELECT code, claimed_by FROM codes WHERE claimed_by IS NOT NULL")
        }
        journal_codes = dict(connection.execute("SELECT code, key FROM journal WHERE source = 'offline'").fetchall())
        if claimed_codes != journal_codes:
            problems.append("claimed codes and journal rows disagree")
        if not claimed <= keys:
            problems.append(f"{len(claimed - keys)} committed issuances are missing from the journal")
        unshown = {row[0] for row in connection.execute("SELECT key FROM journal WHERE shown_at IS NULL")}
        if shown & unshown:
            problems.append("an issuance reported shown is not marked shown")
    finally:
        connection.close()
    return problems


def _worker_command(db: Path) -> list[str]:
    return [sys.executable, "-m", "kiosk.sim.crash_loop", "worker", str(db)]


def run_crash_loop(kills: int, strace_kills: int = 0, *, codes: int = 20000, seed: int = 1) -> CrashReport:
    """Kill the worker ``kills`` times at random moments and ``strace_kills`` times at a chosen
    fdatasync or pwrite (where strace exists), checking the journal after each death."""
    import httpx  # the parent's tools; the worker stays light so it starts fast

    from kiosk.sim.backend import StandInBackend
    from kiosk.sim.demo_seed import DEMO_KIOSK_TOKEN, DROP_POINT_DK, SHOPS, seed_demo

    report = CrashReport()
    rng = random.Random(seed)
    work = Path(tempfile.mkdtemp(prefix="kiosk-crash-"))
    backend = StandInBackend(work / "backend.sqlite")
    server = backend.serve().start()
    try:
        seed_demo(backend.store, "http://127.0.0.1:9/unused", "http://127.0.0.1:9/unused")
        shop = SHOPS["rezip"]
        pool = backend.store.create_pool(shop.id, "Crash test", ["DK"], "public", "static", None)
        batch = backend.store.create_batch(
            pool.id, {"type": "gift", "value": 1, "unit": "Sticker", "conditions": "", "expires_at": None}
        )
        backend.store.add_codes(batch["id"], [(f"CRASH-{n:06d}", None) for n in range(codes)])
        headers = {"Authorization": f"Pat {DEMO_KIOSK_TOKEN}"}
        db = work / "offline.sqlite"
        store = OfflineStore(db)
        for _ in range(-(-codes // 500)):  # one bundle holds at most 500 codes of a pool
            answer = httpx.post(
                f"{server.url}/drop-points/{DROP_POINT_DK}/offline-pools/reservations",
                json={"per_pool": 500},
                headers=headers,
                timeout=30,
            )
            answer.raise_for_status()
            store.import_bundle(answer.content, answer.headers["Bundle-Signature"])
        store.close()
        claimed: set[str] = set()
        shown: set[str] = set()
        strace = shutil.which("strace")
        plan = ["random"] * kills + (["strace"] * strace_kills if strace else [])
        rng.shuffle(plan)
        for how in plan:
            early = ""
            if how == "random":
                process = subprocess.Popen(
                    _worker_command(db), stdout=subprocess.PIPE, text=True, start_new_session=True
                )
                # Killed at a random moment once it issues (its first line), however slowly this
                # machine starts a Python process: the kills land in the work, not in the imports.
                assert process.stdout is not None
                if select.select([process.stdout], [], [], 30.0)[0]:
                    early = process.stdout.readline()
                time.sleep(rng.uniform(0.0, 0.25))
                _kill_group(process.pid)
                report.kills += 1
            else:
                call = rng.choice(["fdatasync", "pwrite64"])
                nth = rng.randint(1, 40)
                process = subprocess.Popen(
                    [
                        "strace",
                        "-f",
                        "-qq",
                        "-o",
                        "/dev/null",
                        "-e",
                        f"trace={call}",
                        "-e",
                        f"inject={call}:signal=KILL:when={nth}",
                        *_worker_command(db),
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                    start_new_session=True,
                )
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                _kill_group(process.pid)  # strace and the worker, whichever is left
                report.strace_kills += 1
            output, _ = process.communicate(timeout=10)
            for line in (early + output).splitlines():
                kind, _, rest = line.partition(" ")
                if kind == "CLAIMED":
                    claimed.add(rest.split()[0])
                elif kind == "SHOWN":
                    shown.add(rest)
            report.problems += _check(db, claimed, shown)
        report.issued = len(claimed)
        report.forwarded_once = _forward_twice(db, server.url, headers, report)
    finally:
        server.stop()
        backend.close()
        shutil.rmtree(work, ignore_errors=True)
    return report


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it died already (strace killed it at the chosen call)


def _forward_twice(db: Path, url: str, headers: dict[str, str], report: CrashReport) -> bool:
    import httpx

    from kiosk.sim.demo_seed import DROP_POINT_DK

    connection = sqlite3.connect(db)
    rows = connection.execute(
        "SELECT key, code, packaging, created_at FROM journal WHERE source = 'offline'"
    ).fetchall()
    connection.close()
    items = [{"key": k, "code": c, "packaging": p, "issued_at": t} for k, c, p, t in rows]
    for _ in range(2):  # at least once, and a second time as after a lost acknowledgement
        for start in range(0, len(items), 500):
            httpx.post(
                f"{url}/drop-points/{DROP_POINT_DK}/offline-issuances",
                json={"issuances": items[start : start + 500]},
                headers=headers,
                timeout=60,
            ).raise_for_status()
    state = httpx.get(f"{url}/_sim/state", timeout=30).json()
    held = [item["key"] for item in state["offline_issuances"]]
    if sorted(held) != sorted(item["key"] for item in items):
        report.problems.append("the backend does not hold each issuance exactly once")
        return False
    return True


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "worker":
        worker(Path(sys.argv[2]))
    else:
        sys.exit("usage: python -m kiosk.sim.crash_loop worker DB")
