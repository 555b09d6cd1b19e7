"""Read an ESC/POS stream back: what a printer would do with it, and a picture of the paper.

This is the simulated twin of a thermal printer. It understands the commands our layouts use
(text in code pages, print modes, alignment, native QR, raster images, feeds and cuts), counts every
command it sees, and records anything it does not understand, so tests can assert that a stream
holds exactly the commands the formatter meant to send and nothing an attacker smuggled in.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field
from functools import lru_cache

from PIL import Image, ImageDraw

from kiosk.presentation.fonts import font
from kiosk.presentation.qr import qr_image

__all__ = ["PaperJob", "parse_escpos", "render_paper_png", "codepages_for"]

ESC, GS, LF, DLE = 0x1B, 0x1D, 0x0A, 0x10
_CELL_W, _CELL_H = 12, 24  # Font A on 203 dpi printers


@dataclass
class _Style:
    bold: bool = False
    width: int = 1
    height: int = 1
    underline: bool = False


@dataclass
class PaperJob:
    """What the printer would produce from a stream, block by block."""

    #: ("text", align, [(text, style)]) | ("qr", align, payload, module) | ("raster", align, Image) | ("feed", dots)
    blocks: list[tuple] = field(default_factory=list)
    commands: dict[str, int] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All printed text, one line per printed line."""
        return "\n".join("".join(t for t, _ in block[2]) for block in self.blocks if block[0] == "text")

    @property
    def qr_payloads(self) -> list[str]:
        return [block[2] for block in self.blocks if block[0] == "qr"]

    def count(self, name: str) -> int:
        return self.commands.get(name, 0)


@lru_cache(maxsize=8)
def codepages_for(profile: str) -> dict[int, str]:
    """Code page number → Python codec, from python-escpos's capability database."""
    from escpos.printer import Dummy

    table = Dummy(profile=profile).profile.profile_data.get("codePages", {})
    out = {}
    for number, name in table.items():
        try:
            out[int(number)] = codecs.lookup(name.replace("_", "-")).name
        except LookupError:
            continue
    return out


def parse_escpos(data: bytes, profile: str = "TM-T20II") -> PaperJob:
    """Interpret a stream; never raises on garbage (unknown bytes are recorded instead)."""
    pages = codepages_for(profile)
    job = PaperJob()
    style, align, codec = _Style(), 0, pages.get(0, "cp437")
    line: list[tuple[str, _Style]] = []
    qr_store: dict[str, object] = {"module": 3, "data": ""}
    text = bytearray()
    i, n = 0, len(data)

    def seen(name: str) -> None:
        job.commands[name] = job.commands.get(name, 0) + 1

    def flush_text() -> None:
        if text:
            line.append((bytes(text).decode(codec, errors="replace"), _Style(**vars(style))))
            text.clear()

    def end_line() -> None:
        flush_text()
        job.blocks.append(("text", align, list(line)))
        line.clear()

    while i < n:
        byte = data[i]
        if byte == LF:
            end_line()
            i += 1
            continue
        if byte >= 0x20 and byte != 0x7F:
            text.append(byte)
            i += 1
            continue
        flush_text()
        if byte == DLE and i + 2 < n and data[i + 1] == 0x04:
            seen("DLE EOT")  # a real-time status query, answered by the printer, prints nothing
            i += 3
            continue
        if byte in (ESC, GS) and i + 1 < n:
            command = data[i + 1]
            arg = data[i + 2] if i + 2 < n else 0
            prefix = "ESC" if byte == ESC else "GS"
            name = f"{prefix} {chr(command) if 0x20 <= command < 0x7F else hex(command)}"
            if byte == ESC and command == ord("@"):
                seen(name)
                style, align, codec = _Style(), 0, pages.get(0, "cp437")
                i += 2
            elif byte == ESC and command == ord("!"):
                seen(name)
                style.bold = bool(arg & 0x08)
                style.height = 2 if arg & 0x10 else 1
                style.width = 2 if arg & 0x20 else 1
                style.underline = bool(arg & 0x80)
                i += 3
            elif byte == ESC and command == ord("E"):
                seen(name)
                style.bold = bool(arg & 1)
                i += 3
            elif byte == ESC and command == ord("-"):
                seen(name)
                style.underline = arg not in (0, 48)
                i += 3
            elif byte == ESC and command == ord("a"):
                seen(name)
                align = {0: 0, 1: 1, 2: 2, 48: 0, 49: 1, 50: 2}.get(arg, 0)
                i += 3
            elif byte == ESC and command == ord("t"):
                seen(name)
                codec = pages.get(arg, "cp437")
                i += 3
            elif byte == ESC and command in b"MG{V32":
                seen(name)
                i += 2 if command == ord("2") else 3
            elif byte == ESC and command == ord("d"):
                seen(name)
                job.blocks.append(("feed", arg * _CELL_H))
                i += 3
            elif byte == ESC and command == ord("J"):
                seen(name)
                job.blocks.append(("feed", arg))
                i += 3
            elif byte == ESC and command == ord("p"):
                seen(name)  # drawer kick: ESC p m t1 t2
                i += 5
            elif byte == GS and command == ord("!"):
                seen(name)
                style.width = ((arg >> 4) & 7) + 1
                style.height = (arg & 7) + 1
                i += 3
            elif byte == GS and command in b"bBH":
                seen(name)
                i += 3
            elif byte == GS and command == ord("V"):
                seen(name)
                i += 4 if arg in (65, 66, 97, 98, 103, 104) else 3
            elif byte == GS and command in b"LW":
                seen(name)
                i += 4
            elif byte == GS and command == ord("(") and i + 4 < n:
                kind = data[i + 2]
                size = data[i + 3] | (data[i + 4] << 8)
                body = data[i + 5 : i + 5 + size]
                seen(f"GS ( {chr(kind)}")
                if kind == ord("k") and len(body) >= 2 and body[0] == 49:
                    _qr_function(job, body, qr_store, align)
                i += 5 + size
            elif byte == GS and command == ord("v") and i + 7 < n:
                seen("GS v 0")
                width_bytes = data[i + 4] | (data[i + 5] << 8)
                height = data[i + 6] | (data[i + 7] << 8)
                raster = data[i + 8 : i + 8 + width_bytes * height]
                if width_bytes and height and len(raster) == width_bytes * height:
                    bitmap = Image.frombytes("1", (width_bytes * 8, height), bytes(b ^ 0xFF for b in raster))
                    job.blocks.append(("raster", align, bitmap))
                i += 8 + width_bytes * height
            else:
                job.unknown.append(f"{name} at {i}")
                i += 2
        else:
            job.unknown.append(f"control byte {byte:#04x} at {i}")
            i += 1
    if text or line:
        end_line()
    return job


def _qr_function(job: PaperJob, body: bytes, store: dict[str, object], align: int) -> None:
    function = body[1]
    if function == 67 and len(body) >= 3:  # module size
        store["module"] = body[2]
    elif function == 80:  # store data (after cn fn m)
        store["data"] = body[3:].decode("latin-1")
    elif function == 81:  # print
        job.blocks.append(("qr", align, store["data"], int(store["module"])))  # type: ignore[arg-type]


def render_paper_png(job: PaperJob, width_px: int = 576) -> Image.Image:
    """Draw the job as the paper would come out: black on white, ``width_px`` dots wide."""
    pieces: list[tuple[int, Image.Image]] = []
    for block in job.blocks:
        if block[0] == "text":
            pieces.append((block[1], _text_line(block[2])))
        elif block[0] == "qr":
            pieces.append((block[1], qr_image(block[2], module_px=max(1, block[3]), quiet_modules=2)))
        elif block[0] == "raster":
            pieces.append((block[1], block[2].convert("L")))
        elif block[0] == "feed":
            pieces.append((0, Image.new("L", (1, max(1, block[1])), 255)))
    height = sum(image.height for _, image in pieces) + 2 * _CELL_H
    paper = Image.new("L", (width_px, height), 255)
    y = _CELL_H
    for align, image in pieces:
        x = {0: 0, 1: (width_px - image.width) // 2, 2: width_px - image.width}[align]
        paper.paste(image, (max(0, x), y))
        y += image.height
    return paper


def _text_line(segments: list[tuple[str, _Style]]) -> Image.Image:
    tallest = max((style.height for _, style in segments), default=1)
    parts = []
    for text, style in segments:
        if not text:
            continue
        face = font(20, bold=style.bold, mono=True)
        cell = Image.new("L", (_CELL_W * len(text), _CELL_H), 255)
        draw = ImageDraw.Draw(cell)
        for index, char in enumerate(text):
            draw.text((index * _CELL_W + _CELL_W // 2, _CELL_H // 2), char, font=face, fill=0, anchor="mm")
        if style.underline:
            draw.line((0, _CELL_H - 2, cell.width, _CELL_H - 2), fill=0, width=2)
        parts.append(cell.resize((cell.width * style.width, _CELL_H * style.height)))
    width = sum(p.width for p in parts) or 1
    line = Image.new("L", (width, _CELL_H * tallest), 255)
    x = 0
    for part in parts:
        line.paste(part, (x, line.height - part.height))
        x += part.width
    return line
