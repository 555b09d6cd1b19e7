"""The kiosk's voice: follows the screen and speaks each screen's essentials with espeak-ng.

``Speech`` is called with every ``ScreenView`` the kiosk shows (like ``KioskApp.on_screen``) and
returns at once: what to say goes into a one-place queue that ``run`` (a supervised task) speaks
from once the screen has settled (``SETTLE_S``), so speech never delays the screen or the print. A
new screen (the next scan's) interrupts whatever is being said: the sound stops and the new
screen's text is spoken. A redraw of the same screen is not spoken again.

The synthesizer is espeak-ng (Debian's package) in a subprocess, text on its stdin so no text can
become an option; ``SimulatedSynthesizer`` is its twin for the demo and the tests.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kiosk.config import AudioSection
from kiosk.presentation.speech import VOICES, spoken_text
from kiosk.presentation.view import ScreenView

__all__ = ["Speech", "Synthesizer", "EspeakSynthesizer", "SimulatedSynthesizer", "SpeechError", "speech_for"]

#: A screen is spoken once it has stayed this long: the page has painted it by then, so starting the
#: voice (a process to start) never competes with the paint, and a screen that is gone at once (a
#: quick "finding your voucher") is not begun only to be cut off.
SETTLE_S = 0.2


class SpeechError(RuntimeError):
    """espeak-ng is missing, lacks a voice, or failed."""


class Synthesizer(Protocol):
    async def say(self, text: str, voice: str) -> None:
        """Speak ``text``; returns when it has been said. Cancelling it stops the sound at once."""


class EspeakSynthesizer:
    """espeak-ng, playing on ``device`` (its -d; empty for the default) at ``rate`` words a minute."""

    def __init__(self, *, rate: int = 150, device: str = "", binary: str = "espeak-ng") -> None:
        self.rate = rate
        self.device = device
        self.binary = binary

    def _command(self, voice: str, *, to_stdout: bool) -> list[str]:
        path = shutil.which(self.binary)
        if path is None:
            raise SpeechError(f"{self.binary} is not installed (Debian: apt-get install espeak-ng)")
        where = ["--stdout"] if to_stdout else (["-d", self.device] if self.device else [])
        command = [path, "-v", voice, "-s", str(self.rate), *where, "--stdin"]
        # The voice takes only a processor nobody else wants (SCHED_IDLE), so it never delays the
        # screen or the print; without chrt, the lowest priority nice gives.
        idle = shutil.which("chrt")
        if idle:
            return [idle, "--idle", "0", *command]
        nice = shutil.which("nice")
        return [nice, "-n", "19", *command] if nice else command

    async def say(self, text: str, voice: str) -> None:
        await self._run(self._command(voice, to_stdout=False), text)

    async def wav(self, text: str, voice: str) -> bytes:
        """``text`` as a WAV file (for ``kiosk say --wav`` and the tests)."""
        return await self._run(self._command(voice, to_stdout=True), text)

    async def _run(self, command: list[str], text: str) -> bytes:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            out, err = await process.communicate(text.encode("utf-8"))
        except asyncio.CancelledError:
            process.kill()  # interrupted: the sound stops now
            await asyncio.shield(process.wait())
            raise
        if process.returncode != 0:
            raise SpeechError(f"espeak-ng failed ({process.returncode}): {err.decode(errors='replace').strip()[:200]}")
        return out

    def missing_voices(self, voices: Mapping[str, str]) -> dict[str, str]:
        """The locales whose voice this espeak-ng does not have (locale → voice)."""
        path = shutil.which(self.binary)
        if path is None:
            raise SpeechError(f"{self.binary} is not installed (Debian: apt-get install espeak-ng)")
        listing = subprocess.run([path, "--voices"], capture_output=True, text=True, check=True, timeout=30).stdout
        known = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
        return {locale: voice for locale, voice in voices.items() if voice not in known}


@dataclass
class SimulatedSynthesizer:
    """Speech's twin: records what it was asked to say, and takes a while to say it (so an
    interruption can be seen in ``interrupted``)."""

    seconds_per_char: float = 0.002
    said: list[tuple[str, str]] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)

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
    ) -> None:
        self.synthesizer = synthesizer
        self.settle_s = settle_s
        self.private = private
        self.voices = {**VOICES, **(voices or {})}
        self._last: str | None = None
        self._next: tuple[str, str] | None = None
        self._wanted = asyncio.Event()
        self._speaking: asyncio.Future[None] | None = None

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
        """Speak the newest wanted text, until cancelled; a synthesizer's failure is raised."""
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
            if not speaking.cancelled():
                speaking.result()  # a failure is raised for the supervisor

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
