"""The decoder's image operations (Pillow, pure Python) against OpenCV's, the library they replace
in the kiosk: the same rectangles around the same patches, the same equalisation within a grey
level, the same border. OpenCV stays a test dependency for this."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from kiosk.devices.scanner.image_decoder import (
    ImageDecoder,
    _area,
    _blob_hulls,
    _crop_repeating_edges,
    _equalised,
    _min_area_rect,
    candidate_regions,
    upright_crop,
)
from kiosk.sim.camera_frames import TUNING_SEED, camera_frames


def _mask_of(points: list[tuple[int, int]], size: tuple[int, int] = (64, 48)) -> np.ndarray:
    mask = np.zeros((size[1], size[0]), np.uint8)
    for x, y in points:
        mask[y, x] = 255
    return mask


def _corners(rect: tuple[tuple[float, float], tuple[float, float], float]) -> np.ndarray:
    (cx, cy), (w, h), angle = rect
    u = np.array([math.cos(math.radians(angle)), math.sin(math.radians(angle))])
    v = np.array([-u[1], u[0]])
    return np.array([[cx, cy] + su * w / 2 * u + sv * h / 2 * v for su in (-1, 1) for sv in (-1, 1)])


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 47)), min_size=3, max_size=40))
def test_smallest_rectangle_matches_opencv(points: list[tuple[int, int]]) -> None:
    hulls = _blob_hulls(Image.fromarray(_mask_of(points)))
    contours, _ = cv2.findContours(_mask_of(points), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    assert len(hulls) == len(contours)  # the same 8-connected patches
    for hull in hulls:
        inside = [c for c in contours if cv2.pointPolygonTest(c, (float(hull[0][0]), float(hull[0][1])), False) >= 0]
        assert len(inside) == 1
        (_, _), (w, h), _ = cv2.minAreaRect(inside[0])
        rect = _min_area_rect(hull)
        assert rect[1][0] * rect[1][1] == pytest.approx(w * h, abs=1e-6)
        if len(hull) >= 3:
            assert _area(hull) == pytest.approx(cv2.contourArea(cv2.convexHull(inside[0])), abs=1e-6)
        # every point of the patch lies in our rectangle
        corners = _corners(rect)
        for x, y in hull:
            assert cv2.pointPolygonTest(cv2.convexHull(corners.astype(np.float32)), (float(x), float(y)), True) >= -1e-3


def test_equalisation_is_opencvs_clahe_within_one_grey_level() -> None:
    frame, _ = next(iter(camera_frames(1, seed=TUNING_SEED)))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    for picture in (gray, gray[:240, :240], gray[:237, :301]):  # tiles that divide the size, and not
        ours = np.asarray(_equalised(Image.fromarray(np.ascontiguousarray(picture)))).astype(int)
        theirs = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(picture).astype(int)
        tolerance = 1 if picture.shape[0] % 8 == 0 and picture.shape[1] % 8 == 0 else 40
        assert np.abs(ours - theirs).max() <= tolerance
        assert np.abs(ours - theirs).mean() < 1.0


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.integers(-30, 20), st.integers(-30, 20), st.integers(1, 60), st.integers(1, 60))
def test_crop_outside_the_picture_repeats_its_edges_as_opencv(left: int, top: int, width: int, height: int) -> None:
    picture = np.random.default_rng(7).integers(0, 256, (17, 23), dtype=np.uint8)
    ours = np.asarray(_crop_repeating_edges(Image.fromarray(picture), (left, top, left + width, top + height)))
    pad = 100
    padded = cv2.copyMakeBorder(picture, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    theirs = padded[top + pad : top + pad + height, left + pad : left + pad + width]
    assert ours.shape == theirs.shape
    assert np.array_equal(ours, theirs)


def test_upright_crop_matches_opencvs_rotation() -> None:
    """The same pixels as OpenCV's rotation (cubic, edges repeated), up to the two libraries'
    different cubic kernels."""
    frame, _ = next(iter(camera_frames(1, seed=TUNING_SEED)))
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    region = ((300.0, 200.0), (180.0, 90.0), 25.0)
    ours = np.asarray(upright_crop(Image.fromarray(gray), region)).astype(int)
    (cx, cy), (w, h), angle = region
    w, h = w * 1.25 + 16, h * 1.25 + 16
    scale = min(3.0, max(1.0, 500 / max(w, h)))
    turn = cv2.getRotationMatrix2D((cx, cy), angle, scale)
    turn[0, 2] += w * scale / 2 - cx
    turn[1, 2] += h * scale / 2 - cy
    theirs = cv2.warpAffine(
        gray, turn, (int(w * scale), int(h * scale)), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE
    )
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs.astype(int)).mean() < 4


def _opencv_regions(gray: np.ndarray, limit: int = 3) -> list[tuple[tuple[float, float], tuple[float, float], float]]:
    """The same search in OpenCV (what the decoder did before it dropped OpenCV)."""
    small = cv2.resize(gray, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    energy = cv2.blur(cv2.magnitude(gx, gy), (9, 9))
    threshold = max(3.0 * float(np.median(energy)), 40.0)
    mask = cv2.morphologyEx((energy > threshold).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    regions = []
    for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:limit]:
        if cv2.contourArea(contour) < 60:
            break
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        regions.append(((cx * 2, cy * 2), (w * 2, h * 2), angle))
    return regions


def test_candidate_regions_are_opencvs() -> None:
    """The largest candidate region of each generated frame is where OpenCV's search puts it."""
    same = 0
    frames = list(camera_frames(12, seed=TUNING_SEED))
    for frame, _ in frames:
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        ours, theirs = candidate_regions(Image.fromarray(gray)), _opencv_regions(gray)
        assert bool(ours) == bool(theirs)
        if ours and math.dist(ours[0][0], theirs[0][0]) < 12:
            o, t = ours[0][1], theirs[0][1]
            same += abs(o[0] * o[1] - t[0] * t[1]) <= 0.25 * t[0] * t[1]
    assert same >= len(frames) - 2


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.integers(1, 70),
    st.integers(1, 70),
    st.sampled_from(["L", "RGB", "RGBA", "1", "I", "F", "P"]),
    st.binary(min_size=64, max_size=64),
)
def test_any_picture_decodes_to_a_list_without_an_exception(width: int, height: int, mode: str, seed: bytes) -> None:
    """Odd sizes (a pixel, a line, smaller than a tile of the equalisation's grid) and any mode."""
    noise = np.random.default_rng(list(seed)).integers(0, 256, (height, width), dtype=np.uint8)
    picture = Image.fromarray(noise).convert(mode)
    for mode_name in ("frame", "still"):
        assert isinstance(ImageDecoder(mode_name).decode(picture), list)
