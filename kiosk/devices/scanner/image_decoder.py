"""Barcodes from pictures: the camera's frames and still images (``kiosk decode``).

zxing-cpp does the decoding; pyzbar, when libzbar is installed, is a second opinion for stills.
Both modes run passes in a fixed order, cheapest first, and stop at the first pass that reads a
code that can be trusted on its own (see ``_trusted``):

- ``frame`` (the camera): only the symbologies RE-ZIP codes are printed in (QR, DataMatrix, Code 128
  and their small relatives), which halves zxing-cpp's time against searching every format.
  ``global``: zxing-cpp with its cheap global-histogram binarizer, no inverted search (a quarter of a
  default call, and it reads most sharp, evenly lit codes); ``blurred``: the same binarizer with
  the inverted and rotated search, after a 3x3 Gaussian blur (as cheap; it smooths away the moiré of
  a code shown on a phone screen, which the other passes binarize into speckle); ``local``: its
  local-average binarizer with the inverted search (uneven light, glare, shadows, light-on-dark
  print); ``regions``: the patches of the frame with dense strong edges (codes), each turned
  upright and enlarged, read again (small modules, tilted linear codes that no scan row crosses
  whole). Each frame is decoded on its own: a code needs no second frame, and the scan filter
  counts a code held up once.
- ``still``: the frame passes over every format, then, when they found nothing trustworthy, the
  older slow passes (adaptive threshold, pyzbar, upscaling, contrast equalisation, blurs) and a vote
  among the linear codes.

Trusted from one read: the 2-D codes (their Reed-Solomon check) and Code 128 (its mandatory
mod-103 check character, and zxing-cpp accepts a linear code only when two scan lines agree).
Other linear codes (EAN/UPC, ITF, Code 39 ...) misread quietly: one is only accepted when two passes
that saw different pixels read the same text, and when another text competes for the same symbol,
the one with clearly more support wins or neither does. A wrong code is worse than none.

How the passes were chosen and what each one is worth: scripts/bench/decoding.py (``--ablation``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import zxingcpp

__all__ = ["Decoded", "ImageDecoder", "zbar_available", "to_gray", "FRAME_PASSES", "REZIP_FORMATS"]

log = logging.getLogger(__name__)

_TWO_D = {"QRCode", "MicroQRCode", "RMQRCode", "DataMatrix", "Aztec", "PDF417", "MaxiCode"}
_TRUSTED_LINEAR = {"Code128"}
_F = zxingcpp.BarcodeFormat
#: The symbologies a RE-ZIP code is printed in, and their close relatives a label printer may pick.
REZIP_FORMATS = zxingcpp.BarcodeFormats([_F.QRCode, _F.MicroQRCode, _F.RMQRCode, _F.DataMatrix, _F.Aztec, _F.Code128])
_ALL_FORMATS = zxingcpp.BarcodeFormats([])  # zxing-cpp's way of saying every format
_CLAHE = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))

try:
    from pyzbar import pyzbar as _pyzbar

    _pyzbar.decode(np.zeros((8, 8), dtype=np.uint8))
except (ImportError, OSError):  # pyzbar present but libzbar missing raises ImportError too
    _pyzbar = None


def zbar_available() -> bool:
    return _pyzbar is not None


@dataclass(frozen=True)
class Decoded:
    text: str
    format: str

    @property
    def two_d(self) -> bool:
        return self.format in _TWO_D

    @property
    def trusted(self) -> bool:
        """Carries a check strong enough to be taken from a single read."""
        return self.format in _TWO_D or self.format in _TRUSTED_LINEAR


def to_gray(image: np.ndarray) -> np.ndarray:
    """8-bit greyscale from a BGR, BGRA or greyscale array."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(image, code))


def _zxing(
    gray: np.ndarray,
    formats: zxingcpp.BarcodeFormats = _ALL_FORMATS,
    *,
    rotate: bool = True,
    invert: bool = True,
    binarizer: zxingcpp.Binarizer = zxingcpp.Binarizer.LocalAverage,
) -> list[Decoded]:
    results = zxingcpp.read_barcodes(
        gray,
        formats=formats,
        text_mode=zxingcpp.TextMode.Plain,
        try_rotate=rotate,
        try_invert=invert,
        binarizer=binarizer,
    )
    return [Decoded(r.text, r.format.name) for r in results if r.valid]


def _zbar(gray: np.ndarray) -> list[Decoded]:
    if _pyzbar is None:
        return []
    out = []
    for result in _pyzbar.decode(gray):
        try:
            text = result.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(Decoded(text, "QRCode" if result.type == "QRCODE" else result.type))
    return out


def _scaled(gray: np.ndarray, factor: float, interpolation: int) -> np.ndarray:
    return np.asarray(cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation))


# --- candidate regions --------------------------------------------------------------------------


#: A rotated rectangle in frame pixels: centre, (width, height), angle in degrees (OpenCV's form).
_Rect = tuple[tuple[float, float], tuple[float, float], float]


def candidate_regions(gray: np.ndarray, limit: int = 3) -> list[_Rect]:
    """Where codes probably are: the largest patches of dense strong edges, on a half-size copy.

    Kraft, card and skin have weak, sparse edges; bars and modules have strong ones every few
    pixels, so the local mean of the gradient's magnitude stands out well above the frame's median.
    """
    if min(gray.shape) < 32:  # too small to hold a code worth a second look (and to halve)
        return []
    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.blur(cv2.magnitude(gx, gy), (9, 9))
    threshold = max(3.0 * float(np.median(energy)), 40.0)
    mask = cv2.morphologyEx((energy > threshold).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    regions: list[_Rect] = []
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:limit]:
        if cv2.contourArea(contour) < 60:  # smaller than a 2 px-module DataMatrix at half size
            break
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        regions.append(((cx * 2, cy * 2), (w * 2, h * 2), angle))
    return regions


def upright_crop(gray: np.ndarray, region: _Rect, *, enlarge_to: float = 500.0) -> np.ndarray:
    """The region with a margin, turned so its long side is horizontal (a linear code's bars then
    stand upright, so every scan row crosses all of them) and enlarged, up to 3x, towards
    ``enlarge_to`` pixels (small modules get more pixels to be binarized with)."""
    (cx, cy), (w, h), angle = region
    if w < h:
        w, h, angle = h, w, angle + 90
    w, h = w * 1.25 + 16, h * 1.25 + 16
    scale = min(3.0, max(1.0, enlarge_to / max(w, h)))
    turn = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    turn[0, 2] += w * scale / 2 - cx
    turn[1, 2] += h * scale / 2 - cy
    size = (int(w * scale), int(h * scale))
    return np.asarray(cv2.warpAffine(gray, turn, size, flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE))


def _in_regions(prepare: Callable[[np.ndarray], np.ndarray]) -> _Pass:
    """A pass reading each candidate region's upright crop, after ``prepare``, until one reads."""

    def run(gray: np.ndarray, formats: zxingcpp.BarcodeFormats) -> list[Decoded]:
        for region in candidate_regions(gray):
            found = _zxing(prepare(upright_crop(gray, region)), formats)
            if found:
                return found
        return []

    return run


def _adaptive(gray: np.ndarray, block: int = 31, offset: int = 5) -> np.ndarray:
    """Black and white by the local mean: shadows, glare and gradients do not move the threshold."""
    return np.asarray(
        cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, offset)
    )


def _sharpened(gray: np.ndarray) -> np.ndarray:
    """Unsharp masking: gives defocused narrow bars and modules back some contrast."""
    return np.asarray(cv2.addWeighted(gray, 2.5, cv2.GaussianBlur(gray, (0, 0), 2.5), -1.5, 0))


# --- passes -------------------------------------------------------------------------------------

#: A pass: greyscale picture and formats in, decoded symbols out.
_Pass = Callable[[np.ndarray, zxingcpp.BarcodeFormats], list[Decoded]]

#: The camera's passes, in the order they run (each only when those before found nothing trusted).
FRAME_PASSES: dict[str, _Pass] = {
    "global": lambda g, f: _zxing(g, f, invert=False, binarizer=zxingcpp.Binarizer.GlobalHistogram),
    "blurred": lambda g, f: _zxing(cv2.GaussianBlur(g, (3, 3), 0), f, binarizer=zxingcpp.Binarizer.GlobalHistogram),
    "local": lambda g, f: _zxing(g, f),
    "regions": _in_regions(lambda crop: crop),
    "regions-adaptive": _in_regions(lambda crop: _adaptive(crop, 41, 3)),
    "regions-sharpened": _in_regions(_sharpened),
}

#: The frame passes that see the same pixels as another pass (for the stills' vote below).
_PIXELS_OF = {"global": "original", "local": "original", "blurred": "blur3"}

#: The stills' extra passes: (name, pixel group for the vote, pass). Passes in one group see the
#: same pixels, so two of them agreeing is no evidence.
_STILL_PASSES: list[tuple[str, str, _Pass]] = [
    *((name, _PIXELS_OF.get(name, name), run) for name, run in FRAME_PASSES.items()),
    ("adaptive", "adaptive", lambda g, f: _zxing(_adaptive(g))),
    ("zbar", "zbar", lambda g, f: _zbar(g)),
    ("upscale2", "upscale2", lambda g, f: _zxing(_scaled(g, 2.0, cv2.INTER_CUBIC)) if max(g.shape) < 1600 else []),
    ("upscale1.5", "upscale1.5", lambda g, f: _zxing(_scaled(g, 1.5, cv2.INTER_LINEAR)) if max(g.shape) < 2000 else []),
    ("equalised", "equalised", lambda g, f: _zxing(_CLAHE.apply(g))),
    ("blur3", "blur3", lambda g, f: _zxing(cv2.GaussianBlur(g, (3, 3), 0))),
    ("blur5", "blur5", lambda g, f: _zxing(cv2.GaussianBlur(g, (5, 5), 0))),
]


class ImageDecoder:
    """Decodes pictures in one of two modes (see the module's docstring); ``frame_passes`` lets the
    benchmark leave passes out to measure what each is worth."""

    def __init__(
        self,
        mode: Literal["still", "frame"] = "still",
        *,
        use_zbar: bool = True,
        frame_passes: Sequence[str] = tuple(FRAME_PASSES),
    ) -> None:
        unknown = set(frame_passes) - set(FRAME_PASSES)
        if unknown:
            raise ValueError(f"unknown frame passes: {sorted(unknown)}")
        self.mode = mode
        self.use_zbar = use_zbar and zbar_available()
        self.frame_passes = tuple(frame_passes)

    def decode(self, image: np.ndarray) -> list[Decoded]:
        gray = to_gray(image)
        return self._still(gray) if self.mode == "still" else self._frame(gray)

    def _frame(self, gray: np.ndarray) -> list[Decoded]:
        for name in self.frame_passes:
            trusted = _unique(r for r in FRAME_PASSES[name](gray, REZIP_FORMATS) if r.trusted)
            if trusted:
                return trusted
        return []

    def _still(self, gray: np.ndarray) -> list[Decoded]:
        trusted: list[Decoded] = []
        support: dict[str, set[str]] = {}
        passes_of: dict[str, set[str]] = {}
        symbols: dict[str, Decoded] = {}
        for name, group, run in _STILL_PASSES:
            if name == "zbar" and not self.use_zbar:
                continue
            if trusted:
                break  # a code that needs no vote: done
            for result in run(gray, _ALL_FORMATS):
                if result.trusted:
                    trusted.append(result)
                else:
                    support.setdefault(result.text, set()).add(group)
                    passes_of.setdefault(result.text, set()).add(name)
                    symbols.setdefault(result.text, result)
        return _unique([*trusted, *(symbols[t] for t in _agreed(support, passes_of))])


def _unique(results: Iterable[Decoded]) -> list[Decoded]:
    """Each text once, in the order first read."""
    seen: dict[str, Decoded] = {}
    for result in results:
        seen.setdefault(result.text, result)
    return list(seen.values())


def _agreed(support: dict[str, set[str]], passes_of: dict[str, set[str]]) -> list[str]:
    """Linear texts read in two pixel groups, and clearly ahead of any rival reading of the same
    symbol (a rival is a text never read in the same pass, so not a second barcode)."""
    candidates = [text for text, groups in support.items() if len(groups) >= 2]
    accepted = []
    for text in candidates:
        rivals = [other for other in candidates if other != text and not passes_of[text] & passes_of[other]]
        if all(len(support[text]) > len(support[other]) for other in rivals):
            accepted.append(text)
    return accepted
