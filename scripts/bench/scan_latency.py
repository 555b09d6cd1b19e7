#!/usr/bin/env python3
"""Scan → voucher latency of the whole kiosk on loopback, through `kiosk demo`'s real parts.

Types N packaging codes into the virtual scanner (Hyggelig Sko short codes, so each goes through the on-demand pool
and its signed webhook) and reports, from the result files, the issuance time (kiosk → stand-in backend → shop
webhook → back) and the total (scanner line read → voucher painted in the page and captured as PNG by headless
Chromium, as the demo does). For the time a customer waits with the page on a real screen, see presentation.py. Run:
.venv/bin/python scripts/bench/scan_latency.py [N]"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kiosk.demo import run_demo


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    codes = [f"10HS{n:04d}" for n in range(1, count + 1)]
    with tempfile.TemporaryDirectory() as work:
        out = Path(work)
        started = time.perf_counter()
        run_demo(out, codes, stdin=io.StringIO(), out=io.StringIO())
        wall = time.perf_counter() - started
        docs = [json.loads(path.read_text()) for path in sorted(out.glob("*-result.json"))]
    issued = [d for d in docs if d["status"] == "issued"]
    print(f"scans: {len(codes)}, issued: {len(issued)}, wall time {wall:.1f} s (includes writing the demo files)")
    for name in ("issue", "total"):
        values = [d["ms"][name] for d in issued]
        print(
            f"ms.{name:5s}  median {statistics.median(values):6.1f}  p95 {percentile(values, 0.95):6.1f}"
            f"  max {max(values):6.1f}"
        )


if __name__ == "__main__":
    main()
