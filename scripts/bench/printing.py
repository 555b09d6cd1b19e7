#!/usr/bin/env python3
"""Print job figures for both profiles: bytes per voucher, time to build the job, and transfer time
at serial speeds, against printing the whole voucher as one raster image (the common approach).

Print-head times assume the makers' speeds: TM-T20II 200 mm/s, POS-5890 90 mm/s; paper length is
read from the simulated printer's picture of the job (203 dpi).
Run: .venv/bin/python scripts/bench/printing.py
"""

from __future__ import annotations

import io
import statistics
import time

from PIL import Image

from kiosk.core.voucher import Shop, parse_voucher
from kiosk.devices.printer.escpos_reader import parse_escpos, render_paper_png
from kiosk.presentation.paper import paper_width_px, render_paper
from kiosk.presentation.view import build_voucher_view

HEAD_MM_PER_S = {"TM-T20II": 200, "POS-5890": 90}
BAUDS = (9600, 38400, 115200)
LOCALES = ("da_DK", "de_DE", "fr_FR", "hu_HU", "nl_NL", "sq_AL", "en_GB")
VOUCHERS = [
    parse_voucher(
        {
            "code": "HS-4F2A9C1B",
            "link": "https://hyggelig-sko.example/redeem?code=HS-4F2A9C1B",
            "type": "percentage",
            "value": 20,
            "unit": "%",
            "conditions": "Min. køb 300 DKK / Min. purchase 300 DKK",
            "expires_at": "2027-02-20T00:00:00Z",
        },
        shop=Shop("Hyggelig Sko", "Handmade shoes from Aarhus, shipped in RE-ZIP packaging."),
    ),
    parse_voucher(
        {
            "code": "GBEU-7Q1M0K2P",
            "link": "https://gron-butik.example/redeem?code=GBEU-7Q1M0K2P",
            "type": "amount",
            "value": 1000,
            "unit": "EUR",
            "conditions": "Mindestbestellwert 30 € / Minimum order 30 €",
            "expires_at": "2027-06-30T22:00:00Z",
        },
        shop=Shop("Grøn Butik", "Organic groceries and zero-waste goods."),
    ),
    parse_voucher(
        {
            "code": "TOTE-2B7YH0Q4",
            "type": "gift",
            "value": 1,
            "unit": "Tote bag",
            "conditions": "Collect in-store. While supplies last.",
        },
        shop=Shop("RE-ZIP Community", None),
    ),
]


def whole_raster_bytes(job_bytes: bytes, profile: str) -> tuple[int, float]:
    """Bytes of the same voucher sent as one raster image (GS v 0), and the paper length in mm."""
    picture = render_paper_png(parse_escpos(job_bytes, profile), paper_width_px(profile))
    width_bytes = (picture.width + 7) // 8
    return 8 + width_bytes * picture.height + 4, picture.height / 203 * 25.4


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def main() -> None:
    logo = Image.new("RGB", (256, 256), (176, 68, 52))
    buffer = io.BytesIO()
    logo.save(buffer, "PNG")
    for profile in ("TM-T20II", "POS-5890"):
        sizes, rasters, lengths, with_logo, build_ms = [], [], [], [], []
        for _ in range(5):
            for voucher in VOUCHERS:
                for locale in LOCALES:
                    started = time.perf_counter()
                    view = build_voucher_view(voucher, locale, "Europe/Copenhagen")
                    job = render_paper(view, profile)
                    build_ms.append((time.perf_counter() - started) * 1000)
                    sizes.append(len(job))
                    raster, length = whole_raster_bytes(job, profile)
                    rasters.append(raster)
                    lengths.append(length)
                    with_logo.append(len(render_paper(view, profile, logo)))
        size, raster = max(sizes), statistics.median(rasters)
        head_s = statistics.median(lengths) / HEAD_MM_PER_S[profile]
        print(
            f"{profile}: job {min(sizes)}-{size} bytes without logo (median {statistics.median(sizes):.0f}), "
            f"{statistics.median(with_logo):.0f} with a logo; whole-voucher raster {raster:.0f} bytes"
        )
        print(
            f"  job ready (view model + ESC/POS): median {statistics.median(build_ms):.1f} ms, "
            f"p95 {percentile(build_ms, 0.95):.1f} ms"
        )
        print(
            f"  paper {statistics.median(lengths):.0f} mm, print head ~{head_s:.1f} s at {HEAD_MM_PER_S[profile]} mm/s"
        )
        for baud in BAUDS:
            ours, theirs = size * 10 / baud, raster * 10 / baud
            print(f"  at {baud:>6} baud: ours {ours:5.2f} s, whole raster {theirs:6.2f} s")


if __name__ == "__main__":
    main()
