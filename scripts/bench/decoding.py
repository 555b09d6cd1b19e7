#!/usr/bin/env python3
"""Decoder figures on the barcode corpus (real photographs with expected text) and on synthetic
camera frames.

Corpus (../shared/corpus): share decoded correctly (the expected text among the answers), images
with a wrong answer (answers, none of them the expected text), false positives on no-barcode/, and
median/p95 ms per image (decoding only, not loading), for zxing-cpp alone, pyzbar alone and our
still-image pipeline. Synthetic frames: 1280x720 pictures of a RE-ZIP QR code, rotated, in
perspective, blurred, noisy, with glare and JPEG-compressed; ms per frame on one core in the camera
(frame) mode, share decoded, and the sustained rate of the capture + decode pipeline reading a video
file through OpenCV.
Run: .venv/bin/python scripts/bench/decoding.py [--corpus DIR] [--frames N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import zxingcpp
from PIL import Image

from kiosk.devices.scanner.image_decoder import ImageDecoder, zbar_available
from kiosk.sim.camera_frames import synthetic_frames

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".pgm", ".tif", ".tiff"}


def load_corpus(root: Path) -> tuple[list[tuple[Path, str]], list[Path]]:
    samples = []
    for expected in sorted((root / "barcodes").rglob("*.txt")):
        if expected.name.endswith(".result.txt"):
            continue
        images = [p for p in expected.parent.glob(expected.stem + ".*") if p.suffix.lower() in IMAGE_SUFFIXES]
        if images:
            samples.append((images[0], expected.read_bytes().decode("utf-8", errors="surrogateescape")))
    negatives = [p for p in sorted((root / "no-barcode").rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
    return samples, negatives


def gray_of(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("L"))


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


def corpus_figures(name: str, decode, samples, negatives) -> None:
    correct = wrong = 0
    times = []
    wrong_files = []
    for path, expected in samples:
        gray = gray_of(path)
        started = time.perf_counter()
        texts = decode(gray)
        times.append((time.perf_counter() - started) * 1000)
        if expected in texts:
            correct += 1
        elif texts:
            wrong += 1
            wrong_files.append(f"{path.parent.name}/{path.name}: {texts[0][:30]!r}")
    false_positives = sum(1 for path in negatives if decode(gray_of(path)))
    print(
        f"{name:24s} {correct}/{len(samples)} correct ({correct / len(samples):.1%}), {wrong} wrong, "
        f"{false_positives}/{len(negatives)} false positives, median {statistics.median(times):.1f} ms, "
        f"p95 {percentile(times, 0.95):.1f} ms"
    )
    for line in wrong_files:
        print(f"    wrong: {line}")


def frame_figures(count: int) -> None:
    cv2.setNumThreads(1)
    decoder = ImageDecoder("frame")
    frames = list(synthetic_frames(count, seed=7))
    times, hits = [], 0
    for frame, expected in frames:
        started = time.perf_counter()
        texts = [d.text for d in decoder.decode(frame)]
        times.append((time.perf_counter() - started) * 1000)
        hits += expected in texts
    print(
        f"synthetic 1280x720 frames (one core): {hits}/{len(frames)} decoded, median {statistics.median(times):.1f} ms, "
        f"p95 {percentile(times, 0.95):.1f} ms"
    )
    empty = [
        cv2.GaussianBlur(np.random.default_rng(n).integers(0, 255, (720, 1280, 3), dtype=np.uint8), (0, 0), 3)
        for n in range(30)
    ]
    empty_times = []
    for frame in empty:
        started = time.perf_counter()
        found = decoder.decode(frame)
        empty_times.append((time.perf_counter() - started) * 1000)
        assert not found, "a code was found in a frame without one"
    print(
        f"frames without a code (one core): median {statistics.median(empty_times):.1f} ms, "
        f"p95 {percentile(empty_times, 0.95):.1f} ms"
    )
    with tempfile.TemporaryDirectory() as work:
        video = Path(work) / "frames.avi"
        writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 30, (1280, 720))
        for frame, _ in frames:
            writer.write(frame)
        writer.release()
        capture = cv2.VideoCapture(str(video))
        decoder = ImageDecoder("frame")
        started = time.perf_counter()
        processed = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            decoder.decode(frame)
            processed += 1
        elapsed = time.perf_counter() - started
        capture.release()
    print(f"capture (MJPG decode) + decode pipeline, one core: {processed / elapsed:.1f} frames/s sustained")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=Path(__file__).resolve().parents[3] / "shared" / "corpus")
    parser.add_argument("--frames", type=int, default=200)
    args = parser.parse_args()
    samples, negatives = load_corpus(args.corpus)
    plain = zxingcpp.TextMode.Plain
    corpus_figures(
        "zxing-cpp alone", lambda g: [r.text for r in zxingcpp.read_barcodes(g, text_mode=plain)], samples, negatives
    )
    if zbar_available():
        from pyzbar import pyzbar

        corpus_figures(
            "pyzbar alone", lambda g: [r.data.decode("utf-8", "replace") for r in pyzbar.decode(g)], samples, negatives
        )
    pipeline = ImageDecoder("still")
    corpus_figures("our pipeline (still)", lambda g: [d.text for d in pipeline.decode(g)], samples, negatives)
    without_zbar = ImageDecoder("still", use_zbar=False)
    corpus_figures("our pipeline, no pyzbar", lambda g: [d.text for d in without_zbar.decode(g)], samples, negatives)
    frame_figures(args.frames)


if __name__ == "__main__":
    main()
