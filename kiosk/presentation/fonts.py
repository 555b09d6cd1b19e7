"""The kiosk's fonts: DejaVu (Debian's fonts-dejavu-core), which covers every letter of the ten
kiosk languages. The page serves these files to the browser; the paper preview draws with them."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

__all__ = ["FONT_FILES", "font_file", "font"]

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
#: The page's font roles and the DejaVu file behind each.
FONT_FILES = {
    "regular": "DejaVuSans.ttf",
    "bold": "DejaVuSans-Bold.ttf",
    "mono-bold": "DejaVuSansMono-Bold.ttf",
    "mono": "DejaVuSansMono.ttf",
}


def font_file(role: str) -> Path | None:
    """Where the font for ``role`` is installed, or None."""
    name = FONT_FILES[role]
    return next((folder / name for folder in _FONT_DIRS if (folder / name).exists()), None)


@lru_cache(maxsize=32)
def font(size: int, *, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu at ``size`` px for Pillow; Pillow's built-in font if DejaVu is not installed."""
    role = {(False, False): "regular", (True, False): "bold", (False, True): "mono", (True, True): "mono-bold"}
    path = font_file(role[(bold, mono)])
    return ImageFont.truetype(str(path), size) if path else ImageFont.load_default(size)
