"""Synthetic camera frames of RE-ZIP packaging codes, for the camera tests and the decoding benchmark.

Each frame is 1280x720 BGR and shows one code (QR, DataMatrix or Code 128 carrying a RE-ZIP code or,
in a QR, a RE-ZIP link) on kraft packaging, with what a kiosk camera meets: small modules (down to
about 2 px), any rotation, perspective, curved packaging, defocus and motion blur, illumination
gradients, shadows, glare, a finger over part of the code, the odd inverted print, a code shown on a
phone screen photographed with moiré, sensor noise and JPEG at 55-95 %. Frame ``index`` of ``seed``
is the same picture on every machine and for every ``count`` (its random numbers come from
``(seed, index)`` alone), and nothing is downloaded: zxing-cpp's writer draws the symbols.

Which seed is which (scripts/bench/decoding.py prints the first and the last):

- ``TUNING_SEED``: the frames the decoder's passes and parameters were chosen on.
- ``VALIDATION_SEED``: used only to check that every pass kept pays for itself on frames it was
  not chosen on (the benchmark's ``--ablation``); nothing was changed to fit them.
- ``BENCHMARK_SEED``: the untouched, held-out part; its figures are reported, never tuned on.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, cast

import cv2
import numpy as np
import zxingcpp

from kiosk.sim.backend_store import new_ulid

__all__ = [
    "SIZE",
    "TUNING_SEED",
    "VALIDATION_SEED",
    "BENCHMARK_SEED",
    "Conditions",
    "Symbology",
    "draw_conditions",
    "render_frame",
    "camera_frames",
    "moving_code_video",
    "rezip_text",
]

SIZE = (1280, 720)
TUNING_SEED = 14_001
VALIDATION_SEED = 14_002
BENCHMARK_SEED = 14_003

Symbology = Literal["QRCode", "DataMatrix", "Code128"]
_FORMATS = {
    "QRCode": zxingcpp.BarcodeFormat.QRCode,
    "DataMatrix": zxingcpp.BarcodeFormat.DataMatrix,
    "Code128": zxingcpp.BarcodeFormat.Code128,
}


@dataclass(frozen=True)
class Conditions:
    """What one frame shows and how badly; the benchmark breaks its figures down by these."""

    text: str
    symbology: Symbology
    module_px: float  # module (narrowest bar) width on the sensor
    angle_deg: float
    tilt: float  # perspective: corner displacement as a share of the symbol's shorter side
    curve: float  # 0 flat; up to 1 for a symbol wrapped a third of the way round a tube
    defocus_px: float  # Gaussian sigma
    motion_px: int  # length of a straight motion-blur streak, 0 for none
    motion_deg: float  # its direction
    gradient: float  # darkest share of the light across the frame
    shadow: float  # darkening inside a shadow edge, 0 for none
    glare: float  # added brightness at the glare's centre, 0 for none
    occlusion: float  # share of the symbol's side a finger covers, 0 for none
    inverted: bool  # light print on a dark label
    on_label: bool  # printed on a white label (else straight onto the kraft)
    screen: bool  # shown on a phone screen, photographed (moiré)
    noise: float  # sensor noise sigma
    jpeg_quality: int


def rezip_text(rng: np.random.Generator, tag: str) -> str:
    """A RE-ZIP packaging code (a ULID or a short serial behind a 4-character prefix)."""
    prefix = f"{int(rng.integers(10, 100))}{str(rng.choice(['HS', 'GB', 'PH', 'ZX', 'M1']))}"
    if rng.random() < 0.7:
        return prefix + new_ulid(seed=tag)
    return prefix + str(int(rng.integers(10, 100_000))).zfill(int(rng.integers(2, 6)))


def draw_conditions(rng: np.random.Generator, tag: str) -> Conditions:
    """Random conditions, each trouble at a rate and a strength a kiosk camera meets."""
    symbology = cast(Symbology, str(rng.choice(["QRCode", "DataMatrix", "Code128"], p=[0.4, 0.3, 0.3])))
    code = rezip_text(rng, tag)
    text = f"https://re-zip.com/p/{code}" if symbology == "QRCode" and rng.random() < 0.5 else code
    if symbology == "Code128":
        upright = len(code) < 20 and rng.random() < 0.3  # a box on its side (a long code would not fit)
        room = (0.85 * (SIZE[1] if upright else SIZE[0])) / (11 * len(code) + 55 + 20)  # modules + quiet zones
        module = min(float(rng.uniform(2.2, 3.6)), room)
        angle = float(rng.normal(0, 6)) + (90.0 if upright else 0.0)
    else:
        module = float(rng.choice([rng.uniform(2.0, 3.0), rng.uniform(3.0, 8.0)], p=[0.25, 0.75]))
        angle = float(rng.uniform(-180, 180))

    def sometimes(share: float, low: float, high: float) -> float:
        return float(rng.uniform(low, high)) if rng.random() < share else 0.0

    return Conditions(
        text=text,
        symbology=symbology,
        module_px=module,
        angle_deg=angle,
        tilt=float(rng.uniform(0, 0.18)),
        curve=sometimes(0.25, 0.2, 1.0),
        defocus_px=float(rng.choice([rng.uniform(0, 0.8), rng.uniform(0.8, 1.5)], p=[0.8, 0.2])),
        motion_px=int(rng.integers(3, 8)) if rng.random() < 0.2 else 0,
        motion_deg=float(rng.uniform(0, 180)),
        gradient=float(rng.uniform(0.35, 1.0)),
        shadow=sometimes(0.3, 0.25, 0.6),
        glare=sometimes(0.35, 50, 180),
        occlusion=sometimes(0.12, 0.05, 0.25),
        inverted=bool(rng.random() < 0.07),
        on_label=bool(rng.random() < 0.6),
        screen=bool(rng.random() < 0.08),
        noise=float(rng.uniform(1.5, 9)),
        jpeg_quality=int(rng.integers(55, 96)),
    )


def _modules(text: str, symbology: Symbology) -> np.ndarray:
    """The symbol, one pixel per module, 0 dark and 255 light, without quiet zone."""
    symbol = zxingcpp.create_barcode(text, _FORMATS[symbology])
    matrix = np.asarray(symbol.to_image(scale=1, add_quiet_zones=False), dtype=np.uint8)
    if symbology == "Code128":
        row = matrix[matrix.shape[0] // 2]
        return np.repeat(row[None, :], max(12, row.size // 4), axis=0)
    return matrix


def _kraft(rng: np.random.Generator) -> np.ndarray:
    """Brown corrugated card with fibres and print-through stripes, float32 BGR."""
    width, height = SIZE
    tone = np.array([95, 140, 180], np.float32) * float(rng.uniform(0.8, 1.15))
    fibres = cv2.resize(rng.normal(0, 1, (height // 4, width // 4)).astype(np.float32), SIZE)
    fibres = cv2.GaussianBlur(fibres, (0, 0), 1.2) * 10
    flutes = np.sin(np.arange(height, dtype=np.float32)[:, None] * (2 * math.pi / rng.uniform(18, 40))) * 4
    card = tone[None, None, :] + (fibres + flutes)[:, :, None]
    return np.asarray(card, np.float32)


def _curved(label: np.ndarray, curve: float) -> tuple[np.ndarray, np.ndarray]:
    """The label wrapped round a horizontal tube: squeezed and darker towards its sides."""
    height, width = label.shape[:2]
    if curve <= 0:
        return label, np.ones((height, width), np.float32)
    half = width / 2
    radius = half / math.sin(min(curve, 1.0) * math.pi / 3)
    seen = np.linspace(-half, half, width, dtype=np.float32) * math.sin(half / radius) * radius / half
    source_x = (radius * np.arcsin(np.clip(seen / radius, -1, 1)) + half).astype(np.float32)
    map_x = np.repeat(source_x[None, :], height, axis=0)
    map_y = np.repeat(np.arange(height, dtype=np.float32)[:, None], width, axis=1)
    bent = cv2.remap(label, map_x, map_y, cv2.INTER_LINEAR, borderValue=255)
    shade = np.cos(np.arcsin(np.clip(seen / radius, -1, 1)))[None, :].astype(np.float32)
    return bent, np.repeat(0.55 + 0.45 * shade, height, axis=0)


def render_frame(
    conditions: Conditions, rng: np.random.Generator, *, centre: tuple[float, float] | None = None, fit: bool = True
) -> np.ndarray:
    """The frame ``conditions`` describe; ``rng`` supplies the textures and exact placements. The symbol
    is moved wholly into the picture unless ``fit`` is false (a code sliding in)."""
    c = conditions
    width, height = SIZE
    modules = _modules(c.text, c.symbology)
    scale = max(1, round(c.module_px))
    quiet = 10 if c.symbology == "Code128" else 4
    rows, cols = modules.shape
    label = np.full(((rows + 2 * quiet) * scale, (cols + 2 * quiet) * scale), 255, np.uint8)
    label[quiet * scale : (quiet + rows) * scale, quiet * scale : (quiet + cols) * scale] = np.kron(
        modules, np.ones((scale, scale), np.uint8)
    )
    label, shade = _curved(label, c.curve)
    side_h, side_w = label.shape
    factor = c.module_px / scale
    if centre is None:
        centre = (float(rng.uniform(0.3, 0.7) * width), float(rng.uniform(0.3, 0.7) * height))
    corners = np.array([[0, 0], [side_w, 0], [side_w, side_h], [0, side_h]], np.float32)
    rotation = cv2.getRotationMatrix2D((side_w / 2, side_h / 2), c.angle_deg, factor)
    placed = np.hstack([corners, np.ones((4, 1), np.float32)]) @ rotation.T
    tilt = rng.uniform(-c.tilt, c.tilt, size=(4, 2)) * min(side_w, side_h) * factor
    target = placed + tilt + (np.array(centre) - np.array([side_w, side_h]) / 2)
    if fit:  # the whole symbol in the picture
        low, high = target.min(axis=0) - 12, target.max(axis=0) + 12
        target += np.clip(-low, 0, None) - np.clip(high - np.array(SIZE), 0, None)
    target = target.astype(np.float32)
    warp = cv2.getPerspectiveTransform(corners, target)

    # Reflectance: ink 0.08-0.3 of the paper's light, the kraft itself, or the inverse.
    paper = np.array([235, 240, 245], np.float32) if c.on_label else np.array([150, 180, 205], np.float32)
    ink = np.array([30, 30, 35], np.float32) * float(rng.uniform(0.6, 1.6))
    if c.inverted:
        paper, ink = np.array([40, 38, 36], np.float32), np.array([225, 228, 230], np.float32)
    light = label.astype(np.float32) / 255.0
    printed = (ink[None, None, :] + light[:, :, None] * (paper - ink)[None, None, :]) * shade[:, :, None]
    mask = cv2.warpPerspective(shade * 0 + 1, warp, SIZE, flags=cv2.INTER_LINEAR)
    pasted = cv2.warpPerspective(printed, warp, SIZE, flags=cv2.INTER_LINEAR)
    frame = _kraft(rng)
    if c.screen:  # a phone's screen: a dark bezel round the code, a pixel grid that beats with the sensor's
        bezel = cv2.dilate(mask, np.ones((61, 61), np.uint8))
        frame = frame * (1 - bezel[:, :, None]) + 20 * bezel[:, :, None]
    frame = frame * (1 - mask[:, :, None]) + pasted * mask[:, :, None]
    if c.screen:
        period = float(rng.uniform(2.2, 3.6))
        turn = float(rng.uniform(0, math.pi))
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        phase = (xs * math.cos(turn) + ys * math.sin(turn)) * (2 * math.pi / period)
        frame *= (0.78 + 0.22 * np.sin(phase))[:, :, None]

    if c.occlusion:
        # A finger from the right-hand edge, its tip ``occlusion`` of the symbol's width over it.
        across = target[1] - target[0]
        finger_width = 0.35 * min(side_w, side_h) * factor
        tip = (target[1] + target[2]) / 2 - across * c.occlusion
        finger_centre = tip + across / np.linalg.norm(across) * 3 * finger_width
        axes = (int(3 * finger_width), int(finger_width / 2))
        skin = np.zeros((height, width), np.float32)
        pointing = math.degrees(math.atan2(float(across[1]), float(across[0])))
        cv2.ellipse(skin, (int(finger_centre[0]), int(finger_centre[1])), axes, pointing, 0, 360, 1.0, -1)
        covered = np.asarray(cv2.GaussianBlur(skin, (0, 0), 3), np.float32)[:, :, None]
        frame = frame * (1 - covered) + np.array([120, 150, 210], np.float32) * covered

    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    direction = float(rng.uniform(0, 2 * math.pi))
    ramp = (xs - width / 2) * math.cos(direction) + (ys - height / 2) * math.sin(direction)
    ramp = (ramp - ramp.min()) / (ramp.max() - ramp.min())
    light_map = c.gradient + (1 - c.gradient) * ramp
    if c.shadow:
        edge = float(rng.uniform(0.3, 0.7))
        turn = float(rng.uniform(0, 2 * math.pi))
        side = ((xs / width - edge) * math.cos(turn) + (ys / height - 0.5) * math.sin(turn)) > 0
        light_map *= 1 - c.shadow * cv2.GaussianBlur(side.astype(np.float32), (0, 0), 6)
    frame *= light_map[:, :, None]
    if c.glare:
        spot = np.zeros((height, width), np.float32)
        near = target.mean(axis=0) + rng.normal(0, 60, 2)
        axes = (int(rng.uniform(40, 160)), int(rng.uniform(25, 90)))
        cv2.ellipse(spot, (int(near[0]), int(near[1])), axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        frame += (cv2.GaussianBlur(spot, (0, 0), 25) * c.glare)[:, :, None]

    if c.defocus_px > 0.3:
        frame = cv2.GaussianBlur(frame, (0, 0), c.defocus_px)
    if c.motion_px:
        kernel = np.zeros((c.motion_px, c.motion_px), np.float32)
        kernel[c.motion_px // 2, :] = 1 / c.motion_px
        streak = cv2.getRotationMatrix2D(((c.motion_px - 1) / 2, (c.motion_px - 1) / 2), c.motion_deg, 1)
        kernel = np.asarray(cv2.warpAffine(kernel, streak, (c.motion_px, c.motion_px)), np.float32)
        frame = cv2.filter2D(frame, -1, kernel / max(float(kernel.sum()), 1e-6))
    frame += rng.normal(0, c.noise, frame.shape).astype(np.float32)
    image = np.clip(frame, 0, 255).astype(np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, c.jpeg_quality])
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise RuntimeError("OpenCV could not round-trip a JPEG it encoded")
    return decoded


def camera_frames(count: int, *, seed: int, start: int = 0) -> Iterator[tuple[np.ndarray, Conditions]]:
    """Frames ``start`` to ``start + count`` of ``seed``, each with its conditions (text = the answer)."""
    for index in range(start, start + count):
        rng = np.random.default_rng([seed, index])
        conditions = draw_conditions(rng, tag=f"frame:{seed}:{index}")
        yield render_frame(conditions, rng), conditions


def moving_code_video(text: str, symbology: Symbology, frames: int, *, seed: int) -> Iterator[np.ndarray]:
    """A code held up to the camera: it slides in from the left edge, motion-blurred and out of focus,
    and comes to rest sharp in the middle over the first two thirds of the clip."""
    rng = np.random.default_rng([seed, 0])
    base = draw_conditions(rng, tag=f"video:{seed}")
    width, height = SIZE
    settle = max(1, frames * 2 // 3)
    for index in range(frames):
        moving = max(0.0, 1 - index / settle)  # 1 when entering, 0 at rest
        conditions = Conditions(
            **{
                **base.__dict__,
                "text": text,
                "symbology": symbology,
                "module_px": min(4.0, 0.8 * width / (11 * len(text) + 75)) if symbology == "Code128" else 4.0,
                "angle_deg": 8.0,
                "occlusion": 0.0,
                "screen": False,
                "inverted": False,
                "glare": 0.0,
                "motion_px": int(2 + 28 * moving) if moving > 0.05 else 0,
                "motion_deg": 0.0,
                "defocus_px": 0.5 + 3.0 * moving,
            }
        )
        centre = (width * (0.5 - 0.6 * moving), height * 0.5)
        yield render_frame(conditions, np.random.default_rng([seed, index + 1]), centre=centre, fit=False)
