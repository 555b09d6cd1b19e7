"""The synthetic camera frames: deterministic per seed and frame, and every frame a RE-ZIP code."""

from __future__ import annotations

import hashlib

import numpy as np

from kiosk.core.codes import PackagingCode, normalise
from kiosk.sim.camera_frames import BENCHMARK_SEED, SIZE, TUNING_SEED, VALIDATION_SEED, camera_frames


def digest(frame: np.ndarray) -> str:
    return hashlib.sha256(frame.tobytes()).hexdigest()


def test_a_seed_gives_the_same_frames_however_they_are_asked_for() -> None:
    first = [(digest(frame), conditions) for frame, conditions in camera_frames(4, seed=TUNING_SEED)]
    again = [(digest(frame), conditions) for frame, conditions in camera_frames(4, seed=TUNING_SEED)]
    later = [(digest(frame), conditions) for frame, conditions in camera_frames(2, seed=TUNING_SEED, start=2)]
    assert first == again
    assert first[2:] == later  # frame 2 does not depend on the frames drawn before it
    assert len({d for d, _ in first}) == 4


def test_the_seeds_are_different_frames() -> None:
    seeds = (TUNING_SEED, VALIDATION_SEED, BENCHMARK_SEED)
    assert len(set(seeds)) == 3
    texts = {conditions.text for seed in seeds for _, conditions in camera_frames(2, seed=seed)}
    assert len(texts) == 6


def test_every_frame_is_a_camera_picture_of_a_rezip_code() -> None:
    symbologies = set()
    for frame, conditions in camera_frames(8, seed=VALIDATION_SEED):
        assert frame.shape == (SIZE[1], SIZE[0], 3) and frame.dtype == np.uint8
        assert isinstance(normalise(conditions.text, url_hosts=("re-zip.com",)), PackagingCode), conditions.text
        symbologies.add(conditions.symbology)
    assert symbologies == {"QRCode", "DataMatrix", "Code128"}
