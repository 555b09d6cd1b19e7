"""The kiosk's voice: follows the screen and speaks each screen's essentials with espeak-ng.

``Speech`` is called with every ``ScreenView`` the kiosk shows (like ``KioskApp.on_screen``) and
returns at once: what to say goes into a one-place queue that ``run`` (a supervised task) speaks
from once the screen has settled (``SETTLE_S``), so speech never delays the screen or the print. A
new screen (the next scan's) interrupts whatever is being said: the sound stops and the new
screen's text is spoken. A redraw of the same screen is not spoken again.

The synthesizer is espeak-ng (Debian's package), started by the voice worker (``voice_worker.py``)
with the text on its stdin so no text can become an option; ``SimulatedSynthesizer`` is its twin
for the demo and the tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from kiosk.config import AudioSection
from kiosk.presentation.speech import spoken_text, voices_with
from kiosk.presentation.view import ScreenView

__all__ = [
    "Speech",
    "Synthesizer",
    "EspeakSynthesizer",
    "SimulatedSynthesizer",
    "SpeechError",
    "SpeechUnavailable",
    "UtteranceFailed",
    "speech_for",
]

log = logging.getLogger(__name__)

#: A screen is spoken once it has stayed this long: the page has painted it by then, so the voice's
#: synthesis never competes with the paint, and a screen that is gone at once (a
#: quick "finding your voucher") is not begun only to be cut off.
SETTLE_S = 0.2

#: A voice worker that died is started again after this back-off, doubling up to the last.
_RESTART_FIRST_S = 0.5
_RESTART_MAX_S = 30.0


class SpeechError(RuntimeError):
    """espeak-ng is missing, lacks a voice, or failed."""


class SpeechUnavailable(SpeechError):
    """No synthesizer here at all (espeak-ng not installed): the kiosk goes on without a voice."""


class UtteranceFailed(SpeechError):
    """One text could not be said (espeak-ng failed on it, or lacks its voice): the next may be."""


class Synthesizer(Protocol):
    async def start(self) -> None:
        """Be ready to speak (before the first customer: whatever takes a while happens here)."""

    async def say(self, text: str, voice: str) -> None:
        """Speak ``text``; returns when it has been said. Cancelling it stops the sound at once."""

    async def stop(self) -> None:
        """Stop speaking for good."""


class EspeakSynthesizer:
    """espeak-ng, playing on ``device`` (its -d; empty for the default) at ``rate`` words a minute.

    ``say`` goes through the voice worker (``voice_worker.py``), a small process started once by
    ``start`` before the first customer, which starts and stops espeak-ng so the kiosk's event loop
    never starts a process while a scan is served. ``play=False`` synthesizes without sound (a
    benchmark, or a machine with no sound card). ``wav`` starts espeak-ng itself: it serves
    ``kiosk say --wav`` and the tests, never a customer.
    """

    def __init__(self, *, rate: int = 150, device: str = "", binary: str = "espeak-ng", play: bool = True) -> None:
        self.rate = rate
        self.device = device
        self.binary = binary
        self.play = play
        self._worker: asyncio.subprocess.Process | None = None
        self._utterances = 0

    def _espeak(self) -> list[str]:
        path = shutil.which(self.binary)
        if path is None:
            raise SpeechUnavailable(f"{self.binary} is not installed (Debian: apt-get install espeak-ng)")
        return [path, "-s", str(self.rate)]

    async def start(self) -> None:
        """Start the voice worker (again, if it has gone); call it before the first customer."""
        if self._worker is not None and self._worker.returncode is None:
            return
        if not self.play:
            where = ["--stdout"]  # the worker throws the sound away
        else:
            where = ["-d", self.device] if self.device else []
        self._worker = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            str(Path(__file__).with_name("voice_worker.py")),
            *self._espeak(),
            *where,
            "--stdin",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert self._worker.stdout is not None
        ready = await self._worker.stdout.readline()
        if not ready.startswith(b'{"ready"'):
            raise SpeechError(f"the voice worker did not start ({await self._worker.wait()})")

    async def stop(self) -> None:
        """End the voice worker (closing its stdin stops what it says)."""
        worker, self._worker = self._worker, None
        if worker is not None and worker.returncode is None:
            assert worker.stdin is not None
            worker.stdin.close()
            try:
                await asyncio.wait_for(worker.wait(), 5)
            except TimeoutError:
                worker.kill()
                await worker.wait()

    async def say(self, text: str, voice: str) -> None:
        worker = self._worker
        if worker is None or worker.returncode is not None:
            raise SpeechError("the voice worker is not running (start it first)")
        assert worker.stdin is not None and worker.stdout is not None
        self._utterances += 1
        utterance = self._utterances
        try:
            worker.stdin.write(json.dumps({"id": utterance, "voice": voice, "text": text}).encode() + b"\n")
            await worker.stdin.drain()
            while True:
                line = await worker.stdout.readline()
                if not line:
                    raise SpeechError(f"the voice worker ended ({await worker.wait()})")
                answer = json.loads(line)
                if answer["id"] == utterance:
                    break  # earlier lines end utterances that were stopped
        except asyncio.CancelledError:
            if worker.returncode is None:
                worker.stdin.write(json.dumps({"stop": utterance}).encode() + b"\n")  # the sound stops now
            raise
        except (ConnectionError, ValueError, KeyError) as error:
            raise SpeechError(f"the voice worker failed: {error!r}") from error
        if answer["status"] != 0:
            raise UtteranceFailed(f"espeak-ng failed ({answer['status']}): {str(answer['error']).strip()}")

    async def wav(self, text: str, voice: str) -> bytes:
        """``text`` as a WAV file (for ``kiosk say --wav`` and the tests)."""
        process = await asyncio.create_subprocess_exec(
            *self._espeak(),
            "-v",
            voice,
            "--stdout",
            "--stdin",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await process.communicate(text.encode("utf-8"))
        if process.returncode != 0:
            raise SpeechError(f"espeak-ng failed ({process.returncode}): {err.decode(errors='replace').strip()[:200]}")
        return out

    def missing_voices(self, voices: Mapping[str, str]) -> dict[str, str]:
        """The locales whose voice this espeak-ng does not have (locale → voice). A variant
        (``en+f3``) is espeak-ng's own, added to any voice: only the voice before it is looked up."""
        listing = subprocess.run(
            [*self._espeak()[:1], "--voices"], capture_output=True, text=True, errors="replace", check=True, timeout=30
        )
        known = {line.split()[1] for line in listing.stdout.splitlines()[1:] if len(line.split()) > 1}
        return {locale: voice for locale, voice in voices.items() if voice.partition("+")[0] not in known}


@dataclass
class SimulatedSynthesizer:
    """Speech's twin: records what it was asked to say, and takes a while to say it (so an
    interruption can be seen in ``interrupted``)."""

    seconds_per_char: float = 0.002
    said: list[tuple[str, str]] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

    async def start(self) -> None:
        """Nothing to start: the twin speaks in this process."""

    async def stop(self) -> None:
        """Nothing to stop."""

    async def say(self, text: str, voice: str) -> None:
        try:
            await asyncio.sleep(self.seconds_per_char * len(text))
        except asyncio.CancelledError:
            self.interrupted.append(text)
            raise
        self.said.append((text, voice))


class Speech:
    """Follows the screen (call it with each ``ScreenView``); ``run`` speaks, under the supervisor."""

    def __init__(
        self,
        synthesizer: Synthesizer,
        *,
        private: bool,
        voices: Mapping[str, str] | None = None,
        settle_s: float = SETTLE_S,
        restart_first_s: float = _RESTART_FIRST_S,
    ) -> None:
        self.synthesizer = synthesizer
        self.settle_s = settle_s
        self.restart_first_s = restart_first_s
        self.private = private
        self.voices = voices_with(voices)
        self._last: str | None = None
        self._next: tuple[str, str] | None = None
        self._wanted = asyncio.Event()
        self._speaking: asyncio.Future[None] | None = None
        self._failed_voices: set[str] = set()

    def __call__(self, view: ScreenView) -> None:
        """Queue what ``view`` says, interrupting what is being said; returns at once."""
        text = spoken_text(view, private=self.private)
        if text == self._last:
            return  # a redraw: said already
        self._last = text
        self._next = (text, self.voices[view.locale])
        self._wanted.set()
        if self._speaking is not None:
            self._speaking.cancel()

    async def run(self) -> None:
        """Speak the newest wanted text, until cancelled. Speech is the kiosk's second voice, so no
        failure of its own ends it or counts against the kiosk (whose supervisor would stop serving
        everyone after a few): without a synthesizer installed it stays silent, said once in the
        log (``kiosk doctor`` says it too); a voice worker that dies or will not start is logged and
        started again after a back-off (0.5 s, doubling to 30 s). Anything else is a bug, raised."""
        loop = asyncio.get_running_loop()
        delay = self.restart_first_s
        while True:
            began = loop.time()
            try:
                await self.synthesizer.start()
                await self._speak()
            except SpeechUnavailable as missing:
                log.error("speech is on, but there is no voice: %s; the kiosk goes on without speech", missing)
                await asyncio.Event().wait()  # silent until the kiosk stops
            except SpeechError as failed:
                if loop.time() - began > _RESTART_MAX_S:
                    delay = self.restart_first_s  # it had worked a good while: a fresh failure
                log.error("speech stopped (%s); it starts again in %.1f s", failed, delay)
            finally:
                await self.synthesizer.stop()
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RESTART_MAX_S)

    async def _speak(self) -> None:
        while True:
            await self._wanted.wait()
            await self._settled()
            if self._next is None:
                continue
            (text, voice), self._next = self._next, None
            speaking = self._speaking = asyncio.ensure_future(self.synthesizer.say(text, voice))
            try:
                await asyncio.wait({speaking})
            finally:
                self._speaking = None
                if not speaking.done():
                    speaking.cancel()  # the kiosk stops: so does the voice
            if speaking.cancelled():
                continue
            try:
                speaking.result()  # any other failure is raised for the supervisor
            except UtteranceFailed as failed:
                # Speech is the kiosk's second voice: a language it cannot say stays silent, said
                # once per voice in the log, and every customer is still served.
                level = logging.DEBUG if voice in self._failed_voices else logging.ERROR
                self._failed_voices.add(voice)
                log.log(level, "speech in voice %s failed, that screen stays silent: %s", voice, failed)

    async def _settled(self) -> None:
        """Wait until the screen has stayed ``settle_s`` unchanged."""
        while True:
            self._wanted.clear()
            try:
                await asyncio.wait_for(self._wanted.wait(), self.settle_s)
            except TimeoutError:
                return


def speech_for(audio: AudioSection) -> Speech | None:
    """The kiosk's speech as ``[audio]`` configures it (None when it is off)."""
    if not audio.enabled:
        return None
    synthesizer = EspeakSynthesizer(rate=audio.rate, device=audio.device)
    return Speech(synthesizer, private=audio.private, voices=audio.voice_overrides)
