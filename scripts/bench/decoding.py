#!/usr/bin/env python3
"""Decoder figures, from one run: raw zxing-cpp, raw pyzbar and our frame and still paths, on the
barcode corpus and on generated camera frames.

- Corpus (../shared/corpus, real photographs with expected text): share read correctly (the expected
  text among the answers), images with a wrong answer, false positives on no-barcode/.
- Camera frames (kiosk.sim.camera_frames, 1280x720): the tuning seed (what the passes were chosen on)
  and the untouched benchmark seed (never tuned on); share read, wrong answers, median and p95 ms
  per frame. Each decoder sees exactly the same frames.
- A code held up to the camera (kiosk.sim.camera_frames.moving_code_video at 15 fps): frames until
  the first decode and the time that takes, for each symbology.
- ``--ablation``: on the validation seed, our frame path with each pass left out in turn, so every
  pass kept shows what it reads that the others do not and what it costs.

"raw zxing-cpp" is ``zxingcpp.read_barcodes`` with its defaults (text mode Plain, so the texts
compare), "raw pyzbar" is ``pyzbar.decode`` with its defaults. Times are decoding only.
Run: .venv/bin/python scripts/bench/decoding.py [--corpus DIR] [--frames N] [--ablation]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import cv2
import numpy as np
import zxingcpp
from PIL import Image

from kiosk.devices.scanner.image_decoder import FRAME_PASSES, ImageDecoder, zbar_available
from kiosk.sim.camera_frames import (
    BENCHMARK_SEED,
    TUNING_SEED,
    VALIDATION_SEED,
    Symbology,
    camera_frames,
    moving_code_video,
    rezip_text,
)

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".pgm", ".tif", ".tiff"}
Decoder = Callable[[np.ndarray], list[str]]


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


def texts_of(decoder: ImageDecoder) -> Decoder:
    """Our decoder reads PIL images, as the camera delivers them: a BGR frame becomes greyscale
    first (OpenCV's weights, as in the frames' own tests), inside the time measured."""

    def decode(picture: np.ndarray) -> list[str]:
        gray = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY) if picture.ndim == 3 else picture
        return [d.text for d in decoder.decode(Image.fromarray(gray))]

    return decode


def decoders() -> dict[str, Decoder]:
    plain = zxingcpp.TextMode.Plain
    chosen: dict[str, Decoder] = {
        "raw zxing-cpp": lambda g: [r.text for r in zxingcpp.read_barcodes(g, text_mode=plain)]
    }
    if zbar_available():
        from pyzbar import pyzbar

        chosen["raw pyzbar"] = lambda g: [r.data.decode("utf-8", "replace") for r in pyzbar.decode(g)]
    chosen["ours: frame (camera)"] = texts_of(ImageDecoder("frame"))
    chosen["ours: still"] = texts_of(ImageDecoder("still"))
    return chosen


class Tally:
    """One decoder's reads, wrong answers and times over one set of pictures."""

    def __init__(self) -> None:
        self.read = self.wrong = self.count = 0
        self.times: list[float] = []

    def add(self, expected: str, texts: list[str], seconds: float) -> None:
        self.count += 1
        self.times.append(seconds * 1000)
        if expected in texts:
            self.read += 1
        elif texts:
            self.wrong += 1

    def line(self, name: str, extra: str = "") -> str:
        median, p95 = statistics.median(self.times), percentile(self.times, 0.95)
        return (
            f"  {name:22s} {self.read:4d}/{self.count} {self.read / self.count:6.1%}  wrong {self.wrong:2d}"
            f"{extra}  median {median:6.1f} ms  p95 {p95:6.1f} ms"
        )


def timed(decode: Decoder, picture: np.ndarray) -> tuple[list[str], float]:
    started = time.perf_counter()
    texts = decode(picture)
    return texts, time.perf_counter() - started


def corpus_figures(chosen: dict[str, Decoder], samples: list[tuple[Path, str]], negatives: list[Path]) -> None:
    if not samples:
        raise SystemExit("decoding.py: no corpus images found (see --corpus)")
    print(f"corpus: {len(samples)} images with a barcode, {len(negatives)} without")
    pictures = [(gray_of(path), expected) for path, expected in samples]
    empty = [gray_of(path) for path in negatives]
    for name, decode in chosen.items():
        tally = Tally()
        for gray, expected in pictures:
            tally.add(expected, *timed(decode, gray))
        false_positives = sum(1 for gray in empty if decode(gray))
        print(tally.line(name, f"  false positives {false_positives}/{len(empty)}"))


def frame_figures(chosen: dict[str, Decoder], seed: int, count: int, label: str) -> dict[str, Tally]:
    print(f"camera frames, {label} seed {seed}: {count} frames of 1280x720")
    tallies = {name: Tally() for name in chosen}
    for frame, conditions in camera_frames(count, seed=seed):
        for name, decode in chosen.items():
            tallies[name].add(conditions.text, *timed(decode, frame))
    for name, tally in tallies.items():
        print(tally.line(name))
    return tallies


def ablation(count: int) -> None:
    """Our frame path on the validation seed, whole and with each pass left out."""
    print(f"ablation, validation seed {VALIDATION_SEED}: {count} frames, our frame path without one pass")
    frames = list(camera_frames(count, seed=VALIDATION_SEED))
    variants: list[tuple[str, tuple[str, ...]]] = [("all passes", tuple(FRAME_PASSES))]
    variants += [(f"without {left_out}", tuple(p for p in FRAME_PASSES if p != left_out)) for left_out in FRAME_PASSES]
    for name, passes in variants:
        decode = texts_of(ImageDecoder("frame", frame_passes=passes))
        tally = Tally()
        for frame, conditions in frames:
            tally.add(conditions.text, *timed(decode, frame))
        print(tally.line(name))


def video_figures(symbologies: Iterable[Symbology], clips: int, fps: float = 15.0) -> None:
    """Frames until the first decode of a code sliding in blurred, decoded frame by frame."""
    print(f"a code held up to the camera ({clips} clips of 30 frames per symbology at {fps:.0f} fps, frame path)")
    for symbology in symbologies:
        needed, seconds, missed = [], [], 0
        for clip in range(clips):
            decode = texts_of(ImageDecoder("frame"))
            text = rezip_text(np.random.default_rng([clip, 99]), f"video:{symbology}:{clip}")
            elapsed = 0.0
            for index, frame in enumerate(moving_code_video(text, symbology, 30, seed=clip)):
                texts, took = timed(decode, frame)
                elapsed = index / fps + took
                if text in texts:
                    needed.append(index + 1)
                    seconds.append(elapsed)
                    break
            else:
                missed += 1
        if needed:
            print(
                f"  {symbology:10s} first decode after median {statistics.median(needed):.0f} frames "
                f"(max {max(needed)}), {statistics.median(seconds):.2f} s after the code appears; "
                f"never read in {missed}/{clips} clips"
            )
        else:
            print(f"  {symbology:10s} never read in {clips} clips")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    beside = [parent / "shared" / "corpus" for parent in Path(__file__).resolve().parents]
    parser.add_argument(
        "--corpus",
        type=Path,
        default=next((path for path in beside if path.is_dir()), beside[-1]),
        help="the barcode corpus (default: shared/corpus in the nearest folder above that has one)",
    )
    parser.add_argument("--frames", type=int, default=214, help="frames per seed (default: 214, the issue's scale)")
    parser.add_argument("--clips", type=int, default=5, help="videos per symbology (default: 5)")
    parser.add_argument("--ablation", action="store_true", help="also measure each frame pass on the validation seed")
    parser.add_argument("--no-corpus", action="store_true", help="skip the corpus")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    chosen = decoders()
    if not args.no_corpus:
        corpus_figures(chosen, *load_corpus(args.corpus))
    frame_figures(chosen, TUNING_SEED, args.frames, "tuning")
    frame_figures(chosen, BENCHMARK_SEED, args.frames, "untouched benchmark")
    if args.ablation:
        ablation(args.frames)
    video_figures(("QRCode", "DataMatrix", "Code128"), args.clips)


if __name__ == "__main__":
    main()
