#!/usr/bin/env python3
"""The shop side's figures, on loopback: ``kiosk shop webhook``'s answer time for RE-ZIP's signed
deliveries one at a time (goal: p95 <= 50 ms) and with 200 arriving at once (goal: no error, p95 <=
250 ms), and ``kiosk shop export-batch`` of 10,000 codes (goal: <= 60 s).

Each part is its own process, as in the field: ``kiosk sim voucherify`` (the stand-in Voucherify,
its request limit lifted: the plan's limit is not what is measured), ``kiosk shop webhook`` and
``kiosk shop export-batch`` (the real commands, from a shop.toml written here), and this script,
which is RE-ZIP: the stand-in backend (its JWKS, the shop's static pool) and the load. Deliveries
are signed as RE-ZIP signs them before their clock starts, so a figure is the time RE-ZIP waits for
the service's answer.

The service runs with ``server.workers = 2`` (``--workers``), one process a core of this 2-core
machine, which it shares with the load generator and the stand-in Voucherify. Each part prints the
CPU time each process spent on it per delivery (the load generator with the stand-in RE-ZIP, the
service's supervising parent and each worker, the stand-in Voucherify) and how many cores were
busy meanwhile.

Each burst prints its own p50 and p95, and the figures of rounds 2 on are given apart from all
rounds (the first also opens the service's connections to Voucherify).

Run: .venv/bin/python scripts/bench/shop.py [--sequential N] [--concurrent N] [--rounds N] [--export N]
[--workers N] [--profile FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from kiosk.secret_files import write_secret_file
from kiosk.signatures import sign_request
from kiosk.sim.backend import StandInBackend
from kiosk.sim.demo_seed import DEMO_SHOP_TOKEN, SHOPS, VOUCHERIFY_POOL_ID, VOUCHERIFY_STATIC_POOL_ID, seed_demo

KIOSK = [sys.executable, "-m", "kiosk.cli"]
BODY = json.dumps({"voucher_pool_id": VOUCHERIFY_POOL_ID}).encode()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class Rezip:
    """The stand-in RE-ZIP in this process, and the deliveries it signs for the shop's webhook."""

    def __init__(self, folder: Path, webhook_url: str) -> None:
        self.backend = StandInBackend(folder / "backend.sqlite")
        self.server = self.backend.serve().start()
        seed_demo(self.backend.store, "http://127.0.0.1:9/unused", "http://127.0.0.1:9/unused", webhook_url)
        self.webhook_url = webhook_url

    def signed(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Webhook-Version": "1"}
        return headers | sign_request(
            self.backend._key, self.backend.keyid, "POST", self.webhook_url, headers, created=int(time.time())
        )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_config(folder: Path, port: int, rezip_url: str, voucherify: dict[str, str], workers: int) -> Path:
    write_secret_file(folder / "rezip.token", DEMO_SHOP_TOKEN.encode() + b"\n")
    path = folder / "shop.toml"
    path.write_text(
        f"""[server]
public_url = "http://127.0.0.1:{port}"
listen = "127.0.0.1:{port}"
workers = {workers}

[rezip]
shop_id = "{SHOPS["kaffe"].id}"
token_file = "rezip.token"
jwks_url = "{rezip_url}/.well-known/jwks.json"
api_url = "{rezip_url}"
static_pool_id = "{VOUCHERIFY_STATIC_POOL_ID}"

[voucherify]
app_id = "{voucherify["app_id"]}"
app_token_file = "{voucherify["app_token_file"]}"
campaign = "RE-ZIP 20 percent"
url = "{voucherify["url"]}"

[voucher]
currency = "DKK"
landing_url = "https://nordlys-kaffe.example/cart?discount={{code}}"

[export]
state_file = "export.json"
""",
        "utf-8",
    )
    return path


Result = tuple[float, int, str]  # milliseconds, HTTP status (0: no answer), the code or what went wrong


def deliver(rezip: Rezip, batch: list[dict[str, str]]) -> list[Result]:
    """Send each delivery of ``batch`` at once, each on a connection of its own, and wait for every
    answer: non-blocking sockets under one selector, so that the load generator costs next to
    nothing (httpx's pool, with 200 requests in it, costs more CPU than the service it measures,
    and asyncio's streams about 0.3 ms a delivery, a tenth of the whole). A delivery's clock
    starts as its connection is opened."""
    parts = urlsplit(rezip.webhook_url)
    address = (parts.hostname, parts.port)
    selector = selectors.DefaultSelector()
    results: list[Result | None] = [None] * len(batch)
    for index, headers in enumerate(batch):
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n{head}Content-Length: {len(BODY)}\r\n"
            "Connection: close\r\n\r\n"
        ).encode() + BODY
        sock = socket.socket()
        sock.setblocking(False)
        started = time.perf_counter()
        sock.connect_ex(address)
        selector.register(sock, selectors.EVENT_WRITE, [index, started, memoryview(request), bytearray()])

    def finish(key: selectors.SelectorKey, result: Result) -> None:
        selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        results[key.data[0]] = result

    def elapsed_ms(key: selectors.SelectorKey) -> float:
        return (time.perf_counter() - key.data[1]) * 1000

    while selector.get_map():
        ready = selector.select(timeout=30)
        if not ready:  # the service stopped answering: what is left failed
            for key in list(selector.get_map().values()):
                finish(key, (elapsed_ms(key), 0, "no answer in 30 s"))
        for key, _ in ready:
            sock, (_, _, unsent, answer) = key.fileobj, key.data
            try:
                if unsent:
                    sent = sock.send(unsent)  # type: ignore[union-attr]
                    key.data[2] = unsent = unsent[sent:]
                    if not unsent:
                        selector.modify(sock, selectors.EVENT_READ, key.data)
                    continue
                chunk = sock.recv(65536)  # type: ignore[union-attr]
            except OSError as exc:
                finish(key, (elapsed_ms(key), 0, type(exc).__name__))
                continue
            if chunk:
                answer += chunk
            else:  # the service closes after its answer (Connection: close)
                finish(key, _result(elapsed_ms(key), bytes(answer)))
    return [result for result in results if result is not None]  # every one was finished


def _result(elapsed_ms: float, answer: bytes) -> Result:
    head, _, body = answer.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else 0
    if status == 200:
        return elapsed_ms, status, json.loads(body).get("code", "")
    return elapsed_ms, status, body[:80].decode("utf-8", "replace")


class CpuMeter:
    """CPU time (user + system, every thread) of each process in the benchmark over one part of
    it, per delivery: where 200 deliveries at once spend the two cores."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self._start = self._read()

    @staticmethod
    def _seconds(pid: int) -> float:
        if pid == os.getpid():
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return usage.ru_utime + usage.ru_stime
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read(self) -> dict[str, float]:
        return {name: self._seconds(pid) for name, pid in self.processes.items()}

    def report(self, deliveries: int, wall_s: float) -> None:
        spent = {name: seconds - self._start[name] for name, seconds in self._read().items()}
        parts = ", ".join(f"{name} {seconds * 1000 / deliveries:.2f}" for name, seconds in spent.items())
        total = sum(spent.values())
        print(
            f"  CPU ms per delivery: {parts}; all {total * 1000 / deliveries:.2f} "
            f"({total / wall_s:.2f} cores busy over {wall_s:.1f} s)",
            flush=True,
        )


def report(label: str, results: list[Result]) -> None:
    times = [ms for ms, _, _ in results]
    errors = [(status, text) for _, status, text in results if status != 200]
    codes = [code for _, status, code in results if status == 200]
    print(
        f"{label}: n={len(times)} p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms, "
        f"max {max(times):.1f} ms; errors {len(errors)}{' ' + str(errors[:3]) if errors else ''}; "
        f"distinct codes {len(set(codes))} of {len(codes)}",
        flush=True,
    )


def sequential(rezip: Rezip, count: int, processes: dict[str, int]) -> None:
    deliver(rezip, [rezip.signed()])  # the service's own connections and caches warm
    meter, started = CpuMeter(processes), time.perf_counter()
    results = [result for _ in range(count) for result in deliver(rezip, [rezip.signed()])]
    report("webhook, one delivery at a time", results)
    meter.report(count, time.perf_counter() - started)


def concurrent(rezip: Rezip, count: int, rounds: int, processes: dict[str, int]) -> None:
    """Rounds of ``count`` deliveries sent at once; RE-ZIP's signing is outside the CPU figures
    (it is done before each round's meter starts) and outside each delivery's clock."""
    results: list[Result] = []
    for number in range(1, rounds + 1):
        batch = [rezip.signed() for _ in range(count)]  # signed first: RE-ZIP's own cost is not the service's
        meter, started = CpuMeter(processes), time.perf_counter()
        answered = deliver(rezip, batch)
        results += answered
        times = [ms for ms, _, _ in answered]
        print(
            f"  round {number}: p50 {statistics.median(times):.1f} ms, p95 {percentile(times, 0.95):.1f} ms", flush=True
        )
        meter.report(count, time.perf_counter() - started)
        time.sleep(0.5)
    report(f"webhook, {count} deliveries at once, {rounds} rounds", results)
    if rounds > 1:  # the first burst also opens the service's connections to Voucherify
        report(f"webhook, {count} deliveries at once, rounds 2-{rounds}", results[count:])


def start(command: list[str], folder: Path) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=folder,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )


def drain(stream: IO[str]) -> None:
    """Read a process's output from here on, so that a full pipe never stalls the process measured."""

    def read() -> None:
        for _ in stream:
            pass

    threading.Thread(target=read, daemon=True).start()


def worker_pids(parent: int) -> list[int]:
    """The service's worker processes (``server.workers`` above 1), whose CPU is the service's."""
    tasks = Path(f"/proc/{parent}/task")
    return sorted(int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split())


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequential", type=int, default=500)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--export", type=int, default=10_000)
    parser.add_argument(
        "--workers", type=int, default=2, help="the service's server.workers (default 2: this machine's cores)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="run the shop service with its event loop's thread profiled by CPU time "
        "(scripts/bench/main_thread_profile.py) and write the statistics to FILE",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-shop-") as work:
        folder = Path(work)
        voucherify = start(
            [
                *KIOSK,
                "sim",
                "voucherify",
                "--db",
                str(folder / "voucherify.sqlite"),
                "--seed",
                "demo",
                "--rate-limit",
                "1000000000",
            ],
            folder,
        )
        service = None
        try:
            assert voucherify.stdout is not None and voucherify.stderr is not None
            ready = json.loads(voucherify.stdout.readline())
            drain(voucherify.stdout)
            drain(voucherify.stderr)
            port = free_port()
            rezip = Rezip(folder, f"http://127.0.0.1:{port}/rezip/voucher")
            config = write_config(folder, port, rezip.server.url, ready, args.workers)
            kiosk = KIOSK
            if args.profile:
                kiosk = [
                    sys.executable,
                    str(Path(__file__).with_name("main_thread_profile.py")),
                    str(args.profile.resolve()),
                ]
            service = start([*kiosk, "shop", "webhook", "--config", str(config)], folder)
            assert service.stderr is not None
            line = service.stderr.readline()
            if "ready" not in line:
                raise SystemExit(f"the service did not start: {line}{service.stderr.read()}")
            drain(service.stderr)
            processes = {"load+RE-ZIP": os.getpid(), "service": service.pid, "Voucherify": voucherify.pid}
            processes |= {f"worker {n + 1}": pid for n, pid in enumerate(worker_pids(service.pid))}
            sequential(rezip, args.sequential, processes)
            concurrent(rezip, args.concurrent, args.rounds, processes)
            if args.export:
                started = time.perf_counter()
                export = subprocess.run(
                    [*KIOSK, "shop", "export-batch", "--config", str(config), "--count", str(args.export)],
                    cwd=folder,
                    capture_output=True,
                    text=True,
                )
                elapsed = time.perf_counter() - started
                codes = [c for c in rezip.backend.store.codes(SHOPS["kaffe"].id)]
                print(
                    f"export-batch of {args.export} codes (the whole command, export.concurrency's default): "
                    f"{elapsed:.1f} s "
                    f"({args.export / elapsed:.0f} codes/s), exit {export.returncode}: {export.stdout.strip()}; "
                    f"{len({c['code'] for c in codes})} distinct codes at RE-ZIP"
                )
        finally:
            if service is not None:
                stop(service)
            stop(voucherify)


if __name__ == "__main__":
    main()
