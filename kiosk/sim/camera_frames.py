"""Synthetic camera frames of RE-ZIP packaging codes, for the camera tests and benchmarks.

Each frame is 1280x720 BGR: a textured background with a printed QR label on it, rotated, seen in
perspective, blurred, noisy, with a glare spot, and passed through JPEG compression, the troubles a
kiosk camera meets. Deterministic for a given seed.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from kiosk.presentation.qr import qr_image
from kiosk.sim.backend_store import new_ulid

__all__ = ["synthetic_frames", "label_frame"]

SIZE = (1280, 720)


def label_frame(text: str, rng: np.random.Generator, *, hard: bool = True) -> np.ndarray:
    """One frame showing ``text`` as a QR label."""
    width, height = SIZE
    background = rng.integers(60, 200, size=(height // 8, width // 8, 3), dtype=np.uint8)
    frame = cv2.resize(background, SIZE, interpolation=cv2.INTER_CUBIC)
    module = int(rng.integers(5, 9))
    label = np.asarray(qr_image(text, module_px=module, quiet_modules=4).convert("RGB"))[:, :, ::-1].copy()
    side = label.shape[0]
    angle = float(rng.uniform(-35, 35)) if hard else 0.0
    scale_jitter = float(rng.uniform(0.85, 1.15)) if hard else 1.0
    centre = (float(rng.uniform(0.35, 0.65) * width), float(rng.uniform(0.35, 0.65) * height))
    corners = np.float32([[0, 0], [side, 0], [side, side], [0, side]])
    tilt = rng.uniform(-0.12, 0.12, size=(4, 2)) * side if hard else np.zeros((4, 2))
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, scale_jitter)
    rotated = np.hstack([corners, np.ones((4, 1), np.float32)]) @ rotation.T
    target = (rotated + tilt + (np.float32(centre) - side / 2)).astype(np.float32)
    warp = cv2.getPerspectiveTransform(corners, target)
    mask = cv2.warpPerspective(np.full((side, side), 255, np.uint8), warp, SIZE)
    pasted = cv2.warpPerspective(label, warp, SIZE)
    frame[mask > 0] = pasted[mask > 0]
    if hard:
        sigma = float(rng.uniform(0.0, 1.6))
        if sigma > 0.3:
            frame = cv2.GaussianBlur(frame, (0, 0), sigma)
        noise = rng.normal(0, rng.uniform(2, 10), frame.shape)
        frame = np.clip(frame.astype(np.float32) + noise, 0, 255).astype(np.uint8)
        glare = np.zeros((height, width), np.float32)
        cv2.ellipse(
            glare,
            (int(rng.uniform(0, width)), int(rng.uniform(0, height))),
            (int(rng.uniform(60, 220)), int(rng.uniform(40, 140))),
            float(rng.uniform(0, 180)),
            0,
            360,
            1.0,
            -1,
        )
        glare = cv2.GaussianBlur(glare, (0, 0), 40) * float(rng.uniform(40, 110))
        frame = np.clip(frame.astype(np.float32) + glare[:, :, None], 0, 255).astype(np.uint8)
        quality = int(rng.integers(45, 90))
        ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
        frame = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    return frame


def synthetic_frames(count: int, *, seed: int = 1, hard: bool = True) -> Iterator[tuple[np.ndarray, str]]:
    """``count`` frames, each with the code it shows (a RE-ZIP URL or a bare code)."""
    rng = np.random.default_rng(seed)
    for index in range(count):
        code = "10HS" + new_ulid(seed=f"frame:{seed}:{index}")
        text = f"https://re-zip.example/p/{code}" if index % 2 else code
        yield label_frame(text, rng, hard=hard), text
