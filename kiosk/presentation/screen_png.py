"""The kiosk screen as a PNG frame: large type, high contrast, the QR big enough for any phone.

Used by the demo and by a kiosk whose screen is configured as ``png`` (frames for a remote view or
for tests). Fonts are DejaVu (Debian's ``fonts-dejavu-core``), which covers every character of the
ten kiosk languages.
"""

from __future__ import annotations

import io
import textwrap
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from kiosk.core.flow import NoticeKind, State
from kiosk.presentation.qr import qr_image
from kiosk.presentation.view import ScreenView

__all__ = ["render_screen", "render_screen_png", "font", "SCREEN_SIZE"]

SCREEN_SIZE = (800, 480)
_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
_INK = (20, 20, 20)
_PAPER = (255, 255, 255)
_ACCENT = {
    State.IDLE: (14, 90, 60),
    State.ISSUING: (14, 90, 60),
    State.SHOWING_VOUCHER: (14, 90, 60),
    State.NOTICE: (150, 40, 20),
}
_NOTICE_ACCENT = {NoticeKind.NONE_AVAILABLE: (120, 90, 10), NoticeKind.ALREADY_RETURNED: (120, 90, 10)}


@lru_cache(maxsize=32)
def font(size: int, *, bold: bool = False, mono: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu at ``size`` px; Pillow's built-in font if DejaVu is not installed."""
    name = "DejaVuSans" + ("Mono" if mono else "") + ("-Bold" if bold else "") + ".ttf"
    for folder in _FONT_DIRS:
        if (folder / name).exists():
            return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def render_screen(view: ScreenView, size: tuple[int, int] = SCREEN_SIZE) -> Image.Image:
    width, height = size
    image = Image.new("RGB", size, _PAPER)
    draw = ImageDraw.Draw(image)
    accent = _NOTICE_ACCENT.get(view.notice, _ACCENT[view.state]) if view.notice else _ACCENT[view.state]
    band = height // 7
    draw.rectangle((0, 0, width, band), fill=accent)
    draw.text((24, band // 2), "RE-ZIP", font=font(band // 2, bold=True), fill=_PAPER, anchor="lm")
    if view.voucher is None:
        _centred_message(draw, view, size, band)
    else:
        _voucher(image, draw, view, size, band)
    return image


def render_screen_png(view: ScreenView, size: tuple[int, int] = SCREEN_SIZE) -> bytes:
    out = io.BytesIO()
    render_screen(view, size).save(out, "PNG", compress_level=1)
    return out.getvalue()


def _centred_message(draw: ImageDraw.ImageDraw, view: ScreenView, size: tuple[int, int], band: int) -> None:
    width, height = size
    title_font = font(max(24, height // 12), bold=True)
    lines = _wrap(draw, view.title, title_font, width - 80)
    y = band + (height - band) // 3
    for line in lines:
        draw.text((width // 2, y), line, font=title_font, fill=_INK, anchor="mm")
        y += int(title_font.size * 1.3)
    if view.subtitle:
        sub_font = font(max(16, height // 22))
        for line in _wrap(draw, view.subtitle, sub_font, width - 80):
            y += int(sub_font.size * 0.4)
            draw.text((width // 2, y), line, font=sub_font, fill=_INK, anchor="mm")
            y += sub_font.size


def _voucher(image: Image.Image, draw: ImageDraw.ImageDraw, view: ScreenView, size: tuple[int, int],
             band: int) -> None:  # fmt: skip
    width, height = size
    voucher = view.voucher
    assert voucher is not None
    margin = 24
    qr_side = min(height - band - 2 * margin, width // 2 - margin)
    probe = qr_image(voucher.qr, module_px=1)
    module = max(1, qr_side // probe.width)
    qr = qr_image(voucher.qr, module_px=module)
    qr_x = width - margin - qr.width
    image.paste(qr, (qr_x, band + (height - band - qr.height) // 2))
    text_width = qr_x - 2 * margin
    x, y = margin, band + margin
    if voucher.shop_name:
        y = _line(draw, (x, y), voucher.shop_name, font(height // 20, bold=True), text_width)
    y = _line(draw, (x, y), voucher.discount, font(height // 8, bold=True), text_width, gap=0.2)
    y = _line(draw, (x, y), voucher.labels["use_code"], font(height // 26), text_width)
    y = _line(draw, (x, y), voucher.code, font(height // 14, bold=True, mono=True), text_width, gap=0.4)
    if voucher.expires:
        text = f"{voucher.labels['expiration_date']}: {voucher.expires}"
        y = _line(draw, (x, y), text, font(height // 26), text_width)
    if voucher.conditions:
        small = font(height // 32)
        for line in _wrap(draw, voucher.conditions, small, text_width)[:4]:
            y = _line(draw, (x, y), line, small, text_width, gap=0.1)
    draw.text((x, height - margin), view.subtitle or "", font=font(height // 30), fill=_INK, anchor="ls")


def _line(draw: ImageDraw.ImageDraw, at: tuple[int, int], text: str, face: ImageFont.ImageFont | ImageFont.FreeTypeFont,
          width: int, gap: float = 0.3) -> int:  # fmt: skip
    """Draw one line (shrunk to fit the width) and return the y of the next one."""
    size = getattr(face, "size", 16)
    while draw.textlength(text, font=face) > width and size > 10 and isinstance(face, ImageFont.FreeTypeFont):
        size = int(size * 0.9)
        face = face.font_variant(size=size)
    draw.text(at, text, font=face, fill=_INK)
    return at[1] + int(size * (1 + gap))


def _wrap(draw: ImageDraw.ImageDraw, text: str, face: ImageFont.ImageFont | ImageFont.FreeTypeFont, width: int) -> list[str]:
    """Greedy word wrap measured in pixels."""
    average = max(1.0, draw.textlength("abcdefghij", font=face) / 10)
    columns = max(8, int(width / average))
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, columns) or [""])
    return lines
