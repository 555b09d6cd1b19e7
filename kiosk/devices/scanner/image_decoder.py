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

import functools
import logging
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, cast

import zxingcpp
from PIL import Image, ImageChops, ImageFilter, ImageMath

__all__ = ["Decoded", "ImageDecoder", "zbar_available", "to_gray", "FRAME_PASSES", "REZIP_FORMATS"]

log = logging.getLogger(__name__)

_TWO_D = {"QRCode", "MicroQRCode", "RMQRCode", "DataMatrix", "Aztec", "PDF417", "MaxiCode"}
_TRUSTED_LINEAR = {"Code128"}
_F = zxingcpp.BarcodeFormat
#: The symbologies a RE-ZIP code is printed in, and their close relatives a label printer may pick.
REZIP_FORMATS = zxingcpp.BarcodeFormats([_F.QRCode, _F.MicroQRCode, _F.RMQRCode, _F.DataMatrix, _F.Aztec, _F.Code128])
_ALL_FORMATS = zxingcpp.BarcodeFormats([])  # zxing-cpp's way of saying every format

#: Gaussian kernels of 3 and 5 taps with OpenCV's fixed weights for those sizes (1-2-1, 1-4-6-4-1),
#: applied exactly, in integers.
_BLUR3 = ImageFilter.Kernel((3, 3), [a * b for a in (1, 2, 1) for b in (1, 2, 1)], 16)
_BLUR5 = ImageFilter.Kernel((5, 5), [a * b for a in (1, 4, 6, 4, 1) for b in (1, 4, 6, 4, 1)], 256)
#: Sobel's 3x3 derivatives, each split into its positive and its negative half (an 8-bit picture
#: holds no sign), at half scale: |d|/2 up to 510 of the 1020 a derivative can reach.
_SOBEL_X = (-1, 0, 1, -2, 0, 2, -1, 0, 1)
_SOBEL_Y = (-1, -2, -1, 0, 0, 0, 1, 2, 1)
_HALVES = [
    (ImageFilter.Kernel((3, 3), kernel, 2), ImageFilter.Kernel((3, 3), [-k for k in kernel], 2))
    for kernel in (_SOBEL_X, _SOBEL_Y)
]


@functools.cache
def _pyzbar() -> ModuleType | None:
    """pyzbar, loaded the first time a still needs a second opinion (the camera never does)."""
    try:
        from pyzbar import pyzbar

        pyzbar.decode(Image.new("L", (8, 8)))
    except (ImportError, OSError):  # pyzbar present but libzbar missing raises ImportError too
        return None
    return cast(ModuleType, pyzbar)


def zbar_available() -> bool:
    return _pyzbar() is not None


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


def to_gray(image: Image.Image) -> Image.Image:
    """8-bit greyscale (ITU-R 601 luma, as a camera's Y plane) from a picture in any mode."""
    return image if image.mode == "L" else image.convert("L")


def _zxing(
    gray: Image.Image,
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


def _zbar(gray: Image.Image) -> list[Decoded]:
    pyzbar = _pyzbar()
    if pyzbar is None:
        return []
    out = []
    for result in pyzbar.decode(gray):
        try:
            text = result.data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(Decoded(text, "QRCode" if result.type == "QRCODE" else result.type))
    return out


def _scaled(gray: Image.Image, factor: float, resample: Image.Resampling) -> Image.Image:
    return gray.resize((round(gray.width * factor), round(gray.height * factor)), resample)


# --- candidate regions --------------------------------------------------------------------------


#: A rotated rectangle in frame pixels: centre, (width, height), and the direction of the width
#: side in degrees (x to the right, y down).
_Rect = tuple[tuple[float, float], tuple[float, float], float]
_Point = tuple[int, int]
_WHITE_RUN = re.compile(rb"\xff+")


def candidate_regions(gray: Image.Image, limit: int = 3) -> list[_Rect]:
    """Where codes probably are: the largest patches of dense strong edges, on a half-size copy.

    Kraft, card and skin have weak, sparse edges; bars and modules have strong ones every few
    pixels, so the local mean of the gradient's magnitude stands out well above the frame's median.
    """
    if min(gray.size) < 32:  # too small to hold a code worth a second look (and to halve)
        return []
    small = gray.reduce(2)
    # PIL leaves a kernel's outermost pixels as they were: filtered with a pixel of margin that
    # repeats the edge, then cut back, the border's derivatives are real ones.
    framed = _crop_repeating_edges(small, (-1, -1, small.width + 1, small.height + 1))
    inside = (1, 1, small.width + 1, small.height + 1)
    dx, dy = (ImageChops.add(framed.filter(plus), framed.filter(minus)).crop(inside) for plus, minus in _HALVES)
    magnitude = ImageMath.lambda_eval(lambda v: (v["float"](v["x"]) ** 2 + v["float"](v["y"]) ** 2) ** 0.5, x=dx, y=dy)
    energy = magnitude.convert("L").filter(ImageFilter.BoxBlur(4))  # the mean over 9x9, in halves
    threshold = max(3 * _median(energy), 20)  # 40 in the derivative's own units
    mask = energy.point(lambda v: 255 if v > threshold else 0)
    mask = _closed(mask, 7)
    regions: list[_Rect] = []
    blobs = sorted(_blob_hulls(mask), key=_area, reverse=True)
    for hull in blobs[:limit]:
        if _area(hull) < 60:  # smaller than a 2 px-module DataMatrix at half size
            break
        (cx, cy), (w, h), angle = _min_area_rect(hull)
        regions.append(((cx * 2, cy * 2), (w * 2, h * 2), angle))
    return regions


def _median(gray: Image.Image) -> int:
    histogram, half, seen = gray.histogram(), gray.width * gray.height / 2, 0
    for value, count in enumerate(histogram):
        seen += count
        if seen >= half:
            return value
    return 255


def _closed(mask: Image.Image, size: int) -> Image.Image:
    """Morphological closing of a black-and-white mask by a size x size square: a dilation (any
    white pixel in the window) then an erosion (all white), each as a box mean and a threshold."""
    box = ImageFilter.BoxBlur(size // 2)
    dilated = mask.filter(box).point(lambda v: 255 if v > 0 else 0)
    return dilated.filter(box).point(lambda v: 255 if v == 255 else 0)


def _blob_hulls(mask: Image.Image) -> list[list[_Point]]:
    """The convex hull of each 8-connected white patch of the mask, found from its runs of white
    pixels row by row (a union-find over runs: few of them, as codes are few)."""
    width, data = mask.width, mask.tobytes()
    parent: list[int] = []
    runs: list[tuple[int, int, int]] = []  # y, first x, last x

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    above: list[int] = []
    for y in range(mask.height):
        row = data[y * width : (y + 1) * width]
        here: list[int] = []
        j = 0
        for match in _WHITE_RUN.finditer(row):
            first, last = match.start(), match.end() - 1
            index = len(runs)
            runs.append((y, first, last))
            parent.append(index)
            here.append(index)
            while j < len(above) and runs[above[j]][2] < first - 1:
                j += 1
            k = j
            while k < len(above) and runs[above[k]][1] <= last + 1:
                a, b = root(above[k]), root(index)
                if a != b:
                    parent[b] = a
                k += 1
        above = here
    points: dict[int, list[_Point]] = {}
    for index, (y, first, last) in enumerate(runs):
        points.setdefault(root(index), []).extend(((first, y), (last, y)))
    return [_convex_hull(found) for found in points.values()]


def _convex_hull(points: list[_Point]) -> list[_Point]:
    """Andrew's monotone chain, counter-clockwise, without repeated or collinear points."""
    ordered = sorted(set(points))
    if len(ordered) < 3:
        return ordered

    def half(sequence: Iterable[_Point]) -> list[_Point]:
        chain: list[_Point] = []
        for p in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain

    lower, upper = half(ordered), half(reversed(ordered))
    return lower[:-1] + upper[:-1]


def _cross(o: _Point, a: _Point, b: _Point) -> int:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _area(hull: list[_Point]) -> float:
    """The polygon's area (shoelace), as OpenCV's contourArea of a patch's outline."""
    return abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(hull, hull[1:] + hull[:1], strict=True))) / 2


def _min_area_rect(hull: list[_Point]) -> _Rect:
    """The smallest rectangle around the hull (rotating calipers: one of its sides lies on a side
    of the hull)."""
    if len(hull) == 1:
        return (float(hull[0][0]), float(hull[0][1])), (0.0, 0.0), 0.0
    best: tuple[float, _Rect] | None = None
    for a, b in zip(hull, hull[1:] + hull[:1], strict=True):
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        if length == 0:
            continue
        ux, uy = (b[0] - a[0]) / length, (b[1] - a[1]) / length
        along = [p[0] * ux + p[1] * uy for p in hull]
        across = [-p[0] * uy + p[1] * ux for p in hull]
        w, h = max(along) - min(along), max(across) - min(across)
        if best is None or w * h < best[0]:
            mid_u, mid_v = (max(along) + min(along)) / 2, (max(across) + min(across)) / 2
            centre = (mid_u * ux - mid_v * uy, mid_u * uy + mid_v * ux)
            best = (w * h, (centre, (w, h), math.degrees(math.atan2(uy, ux))))
    assert best is not None
    return best[1]


def upright_crop(gray: Image.Image, region: _Rect, *, enlarge_to: float = 500.0) -> Image.Image:
    """The region with a margin, turned so its long side is horizontal (a linear code's bars then
    stand upright, so every scan row crosses all of them) and enlarged, up to 3x, towards
    ``enlarge_to`` pixels (small modules get more pixels to be binarized with). Outside the frame
    the edge pixels repeat, so the frame's border draws no bar."""
    (cx, cy), (w, h), angle = region
    if w < h:
        w, h, angle = h, w, angle + 90
    w, h = w * 1.25 + 16, h * 1.25 + 16
    scale = min(3.0, max(1.0, enlarge_to / max(w, h)))
    size = (int(w * scale), int(h * scale))
    cos, sin = math.cos(math.radians(angle)) / scale, math.sin(math.radians(angle)) / scale
    # Output pixel (u, v) reads the frame at centre + R(angle) . ((u, v) - (w, h) * scale / 2) / scale.
    half_w, half_h = w * scale / 2, h * scale / 2
    corners = [(u * half_w, v * half_h) for u in (-1, 1) for v in (-1, 1)]
    xs = [cx + cos * du - sin * dv for du, dv in corners]
    ys = [cy + sin * du + cos * dv for du, dv in corners]
    left, top = math.floor(min(xs)) - 3, math.floor(min(ys)) - 3  # bicubic reads 2 pixels around
    source = _crop_repeating_edges(gray, (left, top, math.ceil(max(xs)) + 4, math.ceil(max(ys)) + 4))
    # Pillow puts a pixel's centre at +0.5 in both pictures, where the sums above put it at 0.
    offset_x = cx - left - cos * (half_w + 0.5) + sin * (half_h + 0.5) + 0.5
    offset_y = cy - top - sin * (half_w + 0.5) - cos * (half_h + 0.5) + 0.5
    matrix = (cos, -sin, offset_x, sin, cos, offset_y)
    return source.transform(size, Image.Transform.AFFINE, matrix, resample=Image.Resampling.BICUBIC)


def _crop_repeating_edges(gray: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """``box`` of the picture, where it reaches outside the picture filled with the edge pixels."""
    left, top, right, bottom = box
    if left >= 0 and top >= 0 and right <= gray.width and bottom <= gray.height:
        return gray.crop(box)
    out = Image.new("L", (right - left, bottom - top))
    y = 0
    for row_from, row_to, height in _pieces(top, bottom, gray.height):
        x = 0
        for column_from, column_to, width in _pieces(left, right, gray.width):
            piece = gray.crop((column_from, row_from, column_to, row_to))
            out.paste(piece if piece.size == (width, height) else piece.resize((width, height)), (x, y))
            x += width
        y += height
    return out


def _pieces(start: int, stop: int, length: int) -> list[tuple[int, int, int]]:
    """How ``start..stop`` reads a line of ``length`` pixels whose ends repeat: (first, end, how
    many pixels out) for the part before the line (its first pixel), on it, and after it (its last)."""
    before = (0, 1, min(stop, 0) - start)
    inside = (max(start, 0), min(stop, length), min(stop, length) - max(start, 0))
    after = (length - 1, length, stop - max(start, length))
    return [piece for piece in (before, inside, after) if piece[2] > 0]


class _Picture:
    """One picture being decoded: its greyscale pixels, and its candidate regions, found once for
    all the passes that read them."""

    def __init__(self, gray: Image.Image) -> None:
        self.gray = gray

    @functools.cached_property
    def regions(self) -> list[_Rect]:
        return candidate_regions(self.gray)


def _in_regions(prepare: Callable[[Image.Image], Image.Image]) -> _Pass:
    """A pass reading each candidate region's upright crop, after ``prepare``, until one reads."""

    def run(picture: _Picture, formats: zxingcpp.BarcodeFormats) -> list[Decoded]:
        for region in picture.regions:
            found = _zxing(prepare(upright_crop(picture.gray, region)), formats)
            if found:
                return found
        return []

    return run


def _adaptive(gray: Image.Image, block: int = 31, offset: int = 5) -> Image.Image:
    """Black and white by the local mean: shadows, glare and gradients do not move the threshold.
    White where a pixel is above its Gaussian-weighted neighbourhood's mean less ``offset``; the
    weights' spread is OpenCV's for a ``block`` x ``block`` window."""
    sigma = 0.3 * ((block - 1) * 0.5 - 1) + 0.8
    above = ImageChops.subtract(gray, gray.filter(ImageFilter.GaussianBlur(sigma)), 1.0, offset)
    return above.point(lambda v: 255 if v > 0 else 0)


def _equalised(gray: Image.Image, clip_limit: float = 2.0, grid: int = 8) -> Image.Image:
    """Contrast-limited adaptive histogram equalisation (CLAHE, with OpenCV's rules): each tile of
    a ``grid`` x ``grid`` division gets its own equalising table, its histogram clipped at
    ``clip_limit`` times the mean bin and the excess spread over all bins (so noise in a flat tile
    is not blown up); each pixel takes the tables of the four tiles whose centres surround it,
    weighted by how near it is to each."""
    tile_w, tile_h = math.ceil(gray.width / grid), math.ceil(gray.height / grid)
    tables = [
        [
            _clipped_equaliser(gray.crop((tx * tile_w, ty * tile_h, (tx + 1) * tile_w, (ty + 1) * tile_h)), clip_limit)
            for tx in range(grid)
        ]
        for ty in range(grid)
    ]
    xs = _spans(gray.width, tile_w, grid)
    ys = _spans(gray.height, tile_h, grid)
    out = Image.new("L", gray.size)
    for ky, (top, bottom) in enumerate(ys):
        if bottom <= top:
            continue
        upper, lower = max(ky - 1, 0), min(ky, grid - 1)
        down = _ramp(top, bottom, (ky - 0.5) * tile_h, tile_h).transpose(Image.Transpose.TRANSPOSE)
        for kx, (left, right) in enumerate(xs):
            if right <= left:
                continue
            west, east = max(kx - 1, 0), min(kx, grid - 1)
            cell = gray.crop((left, top, right, bottom))
            across = _ramp(left, right, (kx - 0.5) * tile_w, tile_w).resize(cell.size)
            rows = [
                Image.composite(cell.point(tables[ty][west]), cell.point(tables[ty][east]), across)
                for ty in (upper, lower)
            ]
            out.paste(Image.composite(rows[0], rows[1], down.resize(cell.size)), (left, top))
    return out


def _clipped_equaliser(tile: Image.Image, clip_limit: float) -> list[int]:
    histogram = tile.histogram()
    area = tile.width * tile.height
    limit = max(int(clip_limit * area / 256), 1)
    excess = sum(max(count - limit, 0) for count in histogram)
    histogram = [min(count, limit) + excess // 256 for count in histogram]
    residual = excess % 256
    if residual:
        step = max(256 // residual, 1)
        for value in range(0, 256, step)[:residual]:
            histogram[value] += 1
    table, total = [], 0
    for count in histogram:
        total += count
        table.append(min(255, round(total * 255 / area)))
    return table


def _spans(length: int, tile: int, grid: int) -> list[tuple[int, int]]:
    """The stretches between neighbouring tile centres (and from each edge to the first centre)."""
    cuts = [0] + [min(length, round((t + 0.5) * tile)) for t in range(grid)] + [length]
    return list(zip(cuts, cuts[1:], strict=False))


def _ramp(start: int, stop: int, centre: float, tile: int) -> Image.Image:
    """One row of weights for the table of the tile centred at ``centre``: 255 there, falling
    evenly to 0 at the next tile's centre."""
    weights = (255 * (1 - min(1.0, max(0.0, (x - centre) / tile))) for x in range(start, stop))
    return Image.frombytes("L", (stop - start, 1), bytes(round(w) for w in weights))


def _sharpened(gray: Image.Image) -> Image.Image:
    """Unsharp masking, 2.5 x the picture less 1.5 x its blur: gives defocused narrow bars and
    modules back some contrast."""
    return gray.filter(ImageFilter.UnsharpMask(radius=2.5, percent=150, threshold=0))


# --- passes -------------------------------------------------------------------------------------

#: A pass: a picture and formats in, decoded symbols out.
_Pass = Callable[[_Picture, zxingcpp.BarcodeFormats], list[Decoded]]

#: The camera's passes, in the order they run (each only when those before found nothing trusted).
FRAME_PASSES: dict[str, _Pass] = {
    "global": lambda p, f: _zxing(p.gray, f, invert=False, binarizer=zxingcpp.Binarizer.GlobalHistogram),
    "blurred": lambda p, f: _zxing(p.gray.filter(_BLUR3), f, binarizer=zxingcpp.Binarizer.GlobalHistogram),
    "local": lambda p, f: _zxing(p.gray, f),
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
    ("adaptive", "adaptive", lambda p, f: _zxing(_adaptive(p.gray))),
    ("zbar", "zbar", lambda p, f: _zbar(p.gray)),
    (
        "upscale2",
        "upscale2",
        lambda p, f: _zxing(_scaled(p.gray, 2.0, Image.Resampling.BICUBIC)) if max(p.gray.size) < 1600 else [],
    ),
    (
        "upscale1.5",
        "upscale1.5",
        lambda p, f: _zxing(_scaled(p.gray, 1.5, Image.Resampling.BILINEAR)) if max(p.gray.size) < 2000 else [],
    ),
    ("equalised", "equalised", lambda p, f: _zxing(_equalised(p.gray))),
    ("blur3", "blur3", lambda p, f: _zxing(p.gray.filter(_BLUR3))),
    ("blur5", "blur5", lambda p, f: _zxing(p.gray.filter(_BLUR5))),
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
        self.use_zbar = use_zbar and mode == "still" and zbar_available()
        self.frame_passes = tuple(frame_passes)

    def decode(self, image: Image.Image) -> list[Decoded]:
        picture = _Picture(to_gray(image))
        return self._still(picture) if self.mode == "still" else self._frame(picture)

    def _frame(self, picture: _Picture) -> list[Decoded]:
        for name in self.frame_passes:
            trusted = _unique(r for r in FRAME_PASSES[name](picture, REZIP_FORMATS) if r.trusted)
            if trusted:
                return trusted
        return []

    def _still(self, picture: _Picture) -> list[Decoded]:
        trusted: list[Decoded] = []
        support: dict[str, set[str]] = {}
        passes_of: dict[str, set[str]] = {}
        symbols: dict[str, Decoded] = {}
        for name, group, run in _STILL_PASSES:
            if name == "zbar" and not self.use_zbar:
                continue
            if trusted:
                break  # a code that needs no vote: done
            for result in run(picture, _ALL_FORMATS):
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
