"""The paper voucher as ESC/POS bytes, laid out from the same view model as the screen.

python-escpos builds the stream (its profiles know each printer's width, code pages and whether it
draws QR natively). Every piece of text that came from outside passes through ``inert`` first, so no
byte of a code, link, condition or shop text can reach the printer as a command.
"""

from __future__ import annotations

import textwrap
import unicodedata

from escpos.printer import Dummy

from kiosk.presentation.view import VoucherView

__all__ = ["render_paper", "inert"]


def inert(text: str) -> str:
    """Printable text only: control, format and unassigned characters go; tabs become spaces."""
    out = []
    for char in text.replace("\t", " "):
        if char == "\n" or unicodedata.category(char)[0] != "C":
            out.append(char)
    return "".join(out)


def render_paper(view: VoucherView, profile: str = "TM-T20II") -> bytes:
    """The complete print job for one voucher: init, layout, QR, cut."""
    printer = Dummy(profile=profile)
    columns = printer.profile.get_columns("a")
    printer.hw("INIT")
    printer.set(align="center", bold=True, double_width=True, double_height=True)
    if view.shop_name:
        _paragraph(printer, view.shop_name, columns // 2)
    _paragraph(printer, view.discount, columns // 2)
    printer.set(align="center", bold=False, normal_textsize=True)
    _paragraph(printer, view.labels["use_code"], columns)
    printer.set(align="center", bold=True, double_width=True, double_height=True)
    _paragraph(printer, view.code, columns // 2)
    printer.set(align="center", bold=False, normal_textsize=True)
    native = bool(printer.profile.supports("qrCode"))
    printer.qr(inert(view.qr), ec=1, size=6 if native else 5, native=native, center=not native)
    printer.set(align="left", normal_textsize=True)
    if view.expires_line:
        _paragraph(printer, view.expires_line, columns)
    if view.conditions:
        _paragraph(printer, view.conditions, columns)
    if view.shop_description:
        printer.set(align="left", bold=True)
        _paragraph(printer, view.labels["about"], columns)
        printer.set(align="left", bold=False)
        _paragraph(printer, view.shop_description, columns)
    printer.ln(2)
    if printer.profile.supports("paperFullCut") or printer.profile.supports("paperPartCut"):
        printer.cut()
    else:
        printer.ln(3)
    return printer.output


def _paragraph(printer: Dummy, text: str, columns: int) -> None:
    lines: list[str] = []
    for paragraph in inert(text).splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, max(8, columns)) or [""])
    printer.text("\n".join(lines) + "\n")
