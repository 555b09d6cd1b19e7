"""QR codes as pictures, for the screen and for printers that cannot draw QR natively."""

from __future__ import annotations

import segno
from PIL import Image

__all__ = ["qr_image", "qr_terminal"]


def qr_image(payload: str, *, module_px: int, quiet_modules: int = 4) -> Image.Image:
    """A black-on-white QR (error correction M) with ``module_px`` pixels per module."""
    qr = segno.make_qr(payload, error="m", boost_error=False)
    rows = list(qr.matrix_iter(scale=1, border=quiet_modules))
    size = len(rows)
    data = bytes(0 if dark else 255 for row in rows for dark in row)
    small = Image.frombytes("L", (size, size), data)
    return small.resize((size * module_px, size * module_px), Image.Resampling.NEAREST)


def qr_terminal(payload: str) -> str:
    """The QR drawn with Unicode half blocks, two modules per character row, for a terminal."""
    qr = segno.make_qr(payload, error="m", boost_error=False)
    rows = [list(row) for row in qr.matrix_iter(scale=1, border=2)]
    if len(rows) % 2:
        rows.append([False] * len(rows[0]))
    glyph = {(False, False): "█", (True, False): "▄", (False, True): "▀", (True, True): " "}
    lines = []
    for top, bottom in zip(rows[0::2], rows[1::2]):
        lines.append("".join(glyph[(bool(a), bool(b))] for a, b in zip(top, bottom)))
    return "\n".join(lines)
