"""Barcodes from pictures: the camera's frames and still images (``kiosk decode``).

zxing-cpp does the decoding (QR, DataMatrix and the linear codes); pyzbar, when libzbar is
installed, is a second opinion. Two modes:

- ``still``: every pass (the picture as it is, adaptively thresholded, contrast-equalised, blurred,
  upscaled, and pyzbar), then a vote. A 2-D code (QR, DataMatrix, Aztec, PDF417) carries its own
  Reed-Solomon check and is accepted from any pass. A linear code is only accepted when at least two
  passes that saw different pixels read the same text, and when another text read by other passes
  competes for the same symbol, the one with clearly more support wins or neither does: linear
  codes misread quietly, and a wrong code is worse than none.
- ``frame``: built for a camera's frame rate. Every frame gets one fast pass over the whole frame
  (zxing downscales by itself; no inverted or 90°-rotated search, which 2-D codes do not need).
  When that finds nothing, one more pass from a rotating schedule runs: the enlarged centre (where
  a customer holds the code), then a rotated search (upright linear codes turned sideways), then an
  inverted one. Frames come 15+ times a second, so the schedule covers every variant within three
  frames while no frame pays for all of them. A 2-D code is taken at once, a linear code once two
  consecutive frames agree (the scan filter's debounce does the rest).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import zxingcpp

__all__ = ["Decoded", "ImageDecoder", "zbar_available", "to_gray"]

log = logging.getLogger(__name__)

_TWO_D = {"QRCode", "MicroQRCode", "RMQRCode", "DataMatrix", "Aztec", "PDF417", "MaxiCode"}
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


def to_gray(image: np.ndarray) -> np.ndarray:
    """8-bit greyscale from a BGR, BGRA or greyscale array."""
    if image.ndim == 2:
        return image
    code = cv2.COLOR_BGRA2GRAY if image.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return cv2.cvtColor(image, code)


def _zxing(gray: np.ndarray, *, rotate: bool = True, invert: bool = True) -> list[Decoded]:
    results = zxingcpp.read_barcodes(gray, text_mode=zxingcpp.TextMode.Plain, try_rotate=rotate, try_invert=invert)
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
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation)


#: (name, pixel group, preprocessing, decoder). Passes in one group see the same pixels.
_Pass = tuple[str, str, Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], list[Decoded]]]
_STILL_PASSES: list[_Pass] = [
    ("zxing", "original", lambda g: g, _zxing),
    (
        "adaptive",
        "adaptive",
        lambda g: cv2.adaptiveThreshold(g, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, 31, 5),
        _zxing,
    ),
    ("zbar", "zbar", lambda g: g, _zbar),
    ("upscale2", "upscale2", lambda g: _scaled(g, 2.0, cv2.INTER_CUBIC) if max(g.shape) < 1600 else g, _zxing),
    ("upscale1.5", "upscale1.5", lambda g: _scaled(g, 1.5, cv2.INTER_LINEAR) if max(g.shape) < 2000 else g, _zxing),
    ("equalised", "equalised", lambda g: _CLAHE.apply(g), _zxing),
    ("blur3", "blur3", lambda g: cv2.GaussianBlur(g, (3, 3), 0), _zxing),
    ("blur5", "blur5", lambda g: cv2.GaussianBlur(g, (5, 5), 0), _zxing),
]


class ImageDecoder:
    def __init__(
        self, mode: Literal["still", "frame"] = "still", *, use_zbar: bool = True, roi_share: float = 0.5
    ) -> None:
        self.mode = mode
        self.use_zbar = use_zbar and zbar_available()
        self.roi_share = roi_share
        self._previous_linear: set[str] = set()
        self._frames = 0

    def decode(self, image: np.ndarray) -> list[Decoded]:
        gray = to_gray(image)
        return self._still(gray) if self.mode == "still" else self._frame(gray)

    # --- stills ---------------------------------------------------------------------------------

    def _still(self, gray: np.ndarray) -> list[Decoded]:
        two_d: dict[str, Decoded] = {}
        support: dict[str, set[str]] = {}
        passes_of: dict[str, set[str]] = {}
        symbols: dict[str, Decoded] = {}
        for name, group, prepare, read in _STILL_PASSES:
            if read is _zbar and not self.use_zbar:
                continue
            for result in read(prepare(gray)):
                if result.two_d:
                    two_d.setdefault(result.text, result)
                else:
                    support.setdefault(result.text, set()).add(group)
                    passes_of.setdefault(result.text, set()).add(name)
                    symbols.setdefault(result.text, result)
        return [*two_d.values(), *(symbols[t] for t in _agreed(support, passes_of))]

    # --- camera frames --------------------------------------------------------------------------

    def _frame(self, gray: np.ndarray) -> list[Decoded]:
        self._frames += 1
        results = _zxing(gray, rotate=False, invert=False)
        if not results:
            extra = self._frames % 3
            if extra == 0:
                results = _zxing(_centre(gray, self.roi_share), rotate=False, invert=False)
            elif extra == 1:
                results = _zxing(gray, rotate=True, invert=False)
            else:
                results = _zxing(gray, rotate=False, invert=True)
        linear = {r.text for r in results if not r.two_d}
        agreed = linear & self._previous_linear
        self._previous_linear = linear
        return [r for r in results if r.two_d or r.text in agreed]


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


def _centre(gray: np.ndarray, share: float) -> np.ndarray:
    """The middle ``share`` of the frame, enlarged back to about the frame's size."""
    height, width = gray.shape
    top, left = int(height * (1 - share) / 2), int(width * (1 - share) / 2)
    crop = gray[top : height - top, left : width - left]
    return cv2.resize(crop, None, fx=1.5, fy=1.5, interpolation=cv2.INTER_LINEAR)
