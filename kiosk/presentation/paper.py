"""The paper voucher as ESC/POS bytes, laid out from the same view model as the screen.

python-escpos builds the stream: its profiles know each printer's width, code pages and whether it
draws QR natively. Text is sent as text: each line in the first code page the printer has that
encodes the whole line (CP858 for Danish, German, French, Dutch and Albanian; CP852 for Hungarian's
ő and ű; CP1252 for typographic quotes), and a line no code page can hold is drawn as a raster
line, so the paper never shows a wrong character. Every piece of text from outside passes through
``inert`` first: no byte of a code, link, condition or shop text can reach the printer as a command.
Pure: bytes in memory, no I/O.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from PIL import Image, ImageDraw, ImageOps

from kiosk.escpos_api import Dummy, code_pages, profile_data, write_raw
from kiosk.presentation.fonts import font
from kiosk.presentation.qr import qr_image
from kiosk.presentation.view import VoucherView

__all__ = ["render_paper", "render_test_ticket", "inert", "TestTicket", "paper_width_px"]

#: Code pages in the order we try them; the first the printer has that encodes a line is used.
_PAGE_PREFERENCE = ("cp858", "cp852", "cp1252", "cp1250")
#: Typographic spaces look the same as a no-break space on paper, and code pages only have that one.
_SPACES = str.maketrans({"\u202f": "\u00a0", "\u2007": "\u00a0", "\u2009": "\u00a0", "\u2002": " ", "\u2003": " "})
_CELL_HEIGHT = 24  # Font A
_RASTER_QR_MODULE_PX = 4  # 0.5 mm modules at 203 dpi: read by any phone at arm's length
_LOGO_MAX_PX = (160, 96)


def inert(text: str) -> str:
    """Printable text only: control, format and unassigned characters go; tabs become spaces."""
    out = []
    for char in text.replace("\t", " "):
        if char == "\n" or unicodedata.category(char)[0] != "C":
            out.append(char)
    return "".join(out)


@dataclass(frozen=True)
class TestTicket:
    """What the printer self-test ticket tells a technician."""

    version: str
    hardware_id: str
    address: str
    status_url: str
    profile: str


def paper_width_px(profile: str) -> int:
    return int(profile_data(profile)["media"]["width"]["pixels"])


def render_paper(view: VoucherView, profile: str = "TM-T20II", logo: Image.Image | None = None) -> bytes:
    """The complete print job for one voucher: init, layout, QR, cut. A plain view (``view.plain``)
    prints as text alone: no logo, no QR, no raster lines."""
    paper = _Paper(profile, text_only=view.plain)
    paper.printer.hw("INIT")
    if logo is not None and not view.plain:
        paper.logo(logo)
    if view.shop_name:
        paper.text(view.shop_name, size=2, bold=True)
    paper.text(view.discount, size=2, bold=True)
    paper.text(view.labels["use_code"])
    paper.text(view.code, size=2, bold=True)
    if not view.plain:
        paper.qr(inert(view.qr))
    if view.expires_line:
        paper.text(view.expires_line, align="left")
    if view.conditions:
        paper.text(view.conditions, align="left")
    if view.shop_description:
        paper.text(view.labels["about"], align="left", bold=True)
        paper.text(view.shop_description, align="left")
    paper.finish()
    return paper.output()


def render_test_ticket(ticket: TestTicket) -> bytes:
    """The printer self-test: who this kiosk is, where its status page is, and a QR to it."""
    paper = _Paper(ticket.profile)
    paper.printer.hw("INIT")
    paper.text("RE-ZIP kiosk", size=2, bold=True)
    paper.text("Printer test", bold=True)
    for line in (
        f"Version: {ticket.version}",
        f"Hardware id: {ticket.hardware_id}",
        f"Address: {ticket.address}",
        f"Profile: {ticket.profile}",
        f"Status: {ticket.status_url}",
    ):
        paper.text(line, align="left")
    paper.qr(inert(ticket.status_url))
    paper.text("ÆØÅ æøå ÄÖÜ äöüß ÉÈÊ éèêç ËË ëë ŐŰ őű €", align="left")
    paper.finish()
    return paper.output()


class _Paper:
    """python-escpos's Dummy printer plus our line encoder; tracks the selected code page."""

    def __init__(self, profile: str, *, text_only: bool = False) -> None:
        self.text_only = text_only
        self.printer = Dummy(profile=profile)
        self.profile = profile
        self.columns = self.printer.profile.get_columns("a")
        self.width_px = paper_width_px(profile)
        self.pages = _code_pages(profile)
        self._page: int | None = None

    def output(self) -> bytes:
        """Everything laid out so far, as the bytes the printer takes."""
        return bytes(self.printer.output)

    def text(self, text: str, *, size: int = 1, bold: bool = False, align: str = "center") -> None:
        self.printer.set(
            align=align, bold=bold, double_width=size == 2, double_height=size == 2, normal_textsize=size == 1
        )
        width = self.columns // size
        lines: list[str] = []
        for paragraph in inert(text).translate(_SPACES).splitlines() or [""]:
            lines.extend(textwrap.wrap(paragraph, max(8, width)) or [""])
        for line in lines:
            self._line(line, size=size, bold=bold, align=align)

    def _line(self, line: str, *, size: int, bold: bool, align: str) -> None:
        pages = self.pages
        for number, codec in pages:
            try:
                encoded = line.encode(codec, "replace" if self.text_only and codec == pages[-1][1] else "strict")
            except UnicodeEncodeError:
                continue
            if number != self._page:
                write_raw(self.printer, b"\x1bt" + bytes([number]))
                self._page = number
            write_raw(self.printer, encoded + b"\n")
            return
        self.printer.set(align="left")  # the alignment is drawn into the full-width line itself
        self.printer.image(_raster_line(line, self.width_px, size, bold, align), center=False)
        self.printer.set(align=align)

    def qr(self, payload: str) -> None:
        if self.printer.profile.supports("qrCode"):
            self.printer.set(align="center", normal_textsize=True, bold=False)
            self.printer.qr(payload, ec=1, size=6, native=True)
            return
        # Raster pictures are centred by padding, not by ESC a, which some printers ignore for them.
        self.printer.set(align="left", normal_textsize=True, bold=False)
        self.printer.image(
            _centred(qr_image(payload, module_px=_RASTER_QR_MODULE_PX, quiet_modules=0), self.width_px), center=False
        )
        write_raw(self.printer, b"\n")

    def logo(self, logo: Image.Image) -> None:
        image = ImageOps.contain(logo.convert("L"), _LOGO_MAX_PX)
        dithered = image.convert("1")  # Floyd-Steinberg, as thermal heads print dots, not greys
        self.printer.set(align="left")
        self.printer.image(_centred(dithered.convert("L"), self.width_px), center=False)

    def finish(self) -> None:
        self.printer.set(align="left", normal_textsize=True, bold=False)
        write_raw(self.printer, b"\n\n")  # python-escpos's ln() would select a code page behind our back
        if self.printer.profile.supports("paperFullCut") or self.printer.profile.supports("paperPartCut"):
            self.printer.cut()
        else:
            write_raw(self.printer, b"\x1bd\x03")  # no cutter: feed the voucher past the tear bar


@lru_cache(maxsize=8)
def _code_pages(profile: str) -> tuple[tuple[int, str], ...]:
    """(ESC t number, Python codec) for our preferred code pages that the profile has."""
    available: dict[str, int] = {}
    for number, codec in code_pages(profile).items():
        available.setdefault(codec, number)
    return tuple((available[c], c) for c in _PAGE_PREFERENCE if c in available)


def _raster_line(line: str, width_px: int, size: int, bold: bool, align: str) -> Image.Image:
    """One line of text drawn as dots, for characters no code page of the printer has."""
    height = _CELL_HEIGHT * size
    image = Image.new("L", (width_px, height), 255)
    draw = ImageDraw.Draw(image)
    face = font(int(20 * size), bold=bold)
    length = draw.textlength(line, font=face)
    x = {"left": 0, "center": (width_px - length) / 2, "right": width_px - length}[align]
    draw.text((max(0, x), height / 2), line, font=face, fill=0, anchor="lm")
    return image


def _centred(image: Image.Image, width_px: int) -> Image.Image:
    """Pad on the left so the picture sits in the middle: a narrower raster is fewer bytes to send."""
    left = max(0, (width_px - image.width) // 2)
    canvas = Image.new("L", (min(width_px, left + image.width), image.height), 255)
    canvas.paste(image, (left, 0))
    return canvas
