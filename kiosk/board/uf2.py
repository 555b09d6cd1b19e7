"""UF2 files (the format the RP2040/RP2350 boot ROM takes on its BOOTSEL drive): checked before
a technician copies one, so a wrong or damaged file is refused with a reason instead of bricking
nothing and wasting a site visit. Pure."""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["UF2Error", "UF2Info", "FAMILIES", "BOARD_FAMILIES", "check_uf2"]

BLOCK = 512
MAGIC_START0, MAGIC_START1, MAGIC_END = 0x0A324655, 0x9E5D5157, 0x0AB16F30
FLAG_NOT_MAIN_FLASH, FLAG_FAMILY_ID = 0x00000001, 0x00002000

FAMILIES = {
    0xE48BFF56: "rp2040",
    0xE48BFF57: "rp2xxx-absolute",
    0xE48BFF58: "rp2xxx-data",
    0xE48BFF59: "rp2350-arm-s",
    0xE48BFF5A: "rp2350-riscv",
    0xE48BFF5B: "rp2350-arm-ns",
}
#: Families each board's boot ROM accepts for a firmware image.
BOARD_FAMILIES = {
    "rp2040": {"rp2040"},
    "rp2350": {"rp2350-arm-s", "rp2350-riscv", "rp2350-arm-ns"},
}


class UF2Error(ValueError):
    pass


@dataclass(frozen=True)
class UF2Info:
    family: str
    blocks: int
    payload_bytes: int


def check_uf2(data: bytes, board: str) -> UF2Info:
    """Every block well-formed and numbered, one family, and that family fits ``board``."""
    if not data or len(data) % BLOCK:
        raise UF2Error(f"not a UF2 file: {len(data)} bytes is not a whole number of 512-byte blocks")
    total = len(data) // BLOCK
    families, payload = set(), 0
    for index in range(total):
        block = data[index * BLOCK : (index + 1) * BLOCK]
        start0, start1, flags, _address, size, number, count, family = struct.unpack_from("<8I", block)
        (end,) = struct.unpack_from("<I", block, BLOCK - 4)
        if (start0, start1, end) != (MAGIC_START0, MAGIC_START1, MAGIC_END):
            raise UF2Error(f"block {index}: bad magic numbers (not UF2, or damaged)")
        if size > 476:
            raise UF2Error(f"block {index}: payload size {size} is over 476 bytes")
        if number != index or count != total:
            raise UF2Error(f"block {index}: numbered {number} of {count}, expected {index} of {total} (truncated?)")
        if flags & FLAG_NOT_MAIN_FLASH:
            continue
        if not flags & FLAG_FAMILY_ID:
            raise UF2Error(f"block {index}: no family ID; refusing a file that does not say which chip it is for")
        families.add(family)
        payload += size
    names = {FAMILIES.get(family, f"unknown family 0x{family:08x}") for family in families}
    images = names - {"rp2xxx-absolute", "rp2xxx-data"}
    if len(images) != 1:
        raise UF2Error(f"expected one chip family, found {', '.join(sorted(names)) or 'none'}")
    (family,) = images
    if family not in BOARD_FAMILIES.get(board, set()):
        raise UF2Error(f"this UF2 is for {family}, but the board is {board}")
    return UF2Info(family, total, payload)
