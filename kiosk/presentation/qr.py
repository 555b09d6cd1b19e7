"""QR codes of voucher links: for the page (SVG), the paper (raster) and the terminal.

Encoded by zxing-cpp's writer (error correction M, the smallest version that fits), which is about
ten times faster than a pure-Python encoder; the same library decodes in the camera pipeline and
the tests. Dark modules are 0 (black) in the rasters.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from typing import TYPE_CHECKING, cast

import zxingcpp
from PIL import Image

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["qr_matrix", "qr_image", "qr_svg_data_uri", "qr_terminal"]


@lru_cache(maxsize=64)
def _symbol(payload: str) -> zxingcpp.Barcode:
    return zxingcpp.create_barcode(payload, zxingcpp.BarcodeFormat.QRCode, ec_level="M")


def qr_matrix(payload: str) -> Image.Image:
    """One pixel per module, no quiet zone."""
    # zxing-cpp's Image has the buffer protocol, which its type stubs do not declare.
    raster = memoryview(cast("Buffer", _symbol(payload).to_image(scale=1, add_quiet_zones=False)))
    height, width = cast(tuple[int, int], raster.shape)
    return Image.frombuffer("L", (width, height), bytes(raster), "raw", "L", 0, 1)


def qr_image(payload: str, *, module_px: int, quiet_modules: int = 4) -> Image.Image:
    """Black on white, ``module_px`` pixels per module, with a quiet zone of ``quiet_modules``."""
    matrix = qr_matrix(payload)
    side = matrix.width + 2 * quiet_modules
    framed = Image.new("L", (side, side), 255)
    framed.paste(matrix, (quiet_modules, quiet_modules))
    return framed.resize((side * module_px, side * module_px), Image.Resampling.NEAREST)


@lru_cache(maxsize=64)
def qr_svg_data_uri(payload: str) -> str:
    """The QR as an SVG data URI with its quiet zone: sharp at any size on the page. Cached, as
    the same voucher is drawn again for printer notices and language changes."""
    svg = _symbol(payload).to_svg(add_quiet_zones=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def qr_terminal(payload: str) -> str:
    """The QR drawn with Unicode half blocks (light modules as blocks, for dark terminals)."""
    matrix = qr_image(payload, module_px=1, quiet_modules=2)
    width, height = matrix.size
    levels = matrix.tobytes()  # one byte per pixel ("L"), row by row
    dark = [[levels[y * width + x] < 128 for x in range(width)] for y in range(height)]
    if height % 2:
        dark.append([False] * width)
    glyph = {(False, False): "█", (True, False): "▄", (False, True): "▀", (True, True): " "}
    return "\n".join(
        "".join(glyph[(top[x], bottom[x])] for x in range(width))
        for top, bottom in zip(dark[0::2], dark[1::2], strict=False)
    )
