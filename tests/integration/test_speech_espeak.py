"""Speech through Debian's espeak-ng (hardware/system-packages.txt): every kiosk language has a
voice, and every screen in every locale synthesizes to a WAV that is not silent and whose length
fits its text; ``kiosk say`` prints, speaks and saves it."""

from __future__ import annotations

import array
import asyncio
import io
import logging
import os
import stat
import wave
from collections.abc import Callable
from pathlib import Path

import pytest

from kiosk.cli.say import SCREENS
from kiosk.config import LOCALES
from kiosk.devices.audio.speech import EspeakSynthesizer, Speech, SpeechError, UtteranceFailed
from kiosk.presentation.speech import VOICES, spelled, spoken_text
from kiosk.presentation.view import build_screen_view
from tests.conftest import cancel_running, child_processes, run_kiosk

pytestmark = pytest.mark.integration

#: At 150 words a minute espeak-ng takes 0.05-0.15 s a character of these texts (numbers and a
#: spelled code take longest); well outside that, the WAV is not the text's.
SECONDS_PER_CHAR = (0.03, 0.25)


def _measure(data: bytes) -> tuple[float, float]:
    """Duration in seconds and RMS level (0-1) of espeak-ng's 16-bit mono WAV. Its --stdout header
    cannot know the length in advance, so the samples are counted."""
    with wave.open(io.BytesIO(data)) as audio:
        assert audio.getsampwidth() == 2 and audio.getnchannels() == 1
        rate = audio.getframerate()
        samples = array.array("h", audio.readframes(audio.getnframes()))
    rms = (sum(sample * sample for sample in samples) / max(1, len(samples))) ** 0.5 / 32768
    return len(samples) / rate, rms


def test_every_kiosk_language_has_an_espeak_ng_voice() -> None:
    assert set(VOICES) == set(LOCALES)
    assert EspeakSynthesizer().missing_voices(VOICES) == {}


def test_every_screen_in_every_locale_synthesizes_to_speech_that_fits_its_text() -> None:
    async def scenario() -> list[tuple[str, str, str, float, float]]:
        synthesizer = EspeakSynthesizer()
        found = []
        for locale in LOCALES:
            for name, screen in SCREENS.items():
                text = spoken_text(build_screen_view(screen, locale, "Europe/Copenhagen"), private=True)
                seconds, rms = _measure(await synthesizer.wav(text, VOICES[locale]))
                found.append((locale, name, text, seconds, rms))
        return found

    low, high = SECONDS_PER_CHAR
    for locale, name, text, seconds, rms in asyncio.run(scenario()):
        assert rms > 0.02, (locale, name, rms)  # speech, not silence
        assert low * len(text) <= seconds <= high * len(text), (locale, name, seconds, len(text))


def test_kiosk_say_prints_the_text_and_writes_a_private_wav(tmp_path: Path) -> None:
    voucher = SCREENS["voucher"].voucher
    assert voucher is not None
    code = voucher.code
    wav = tmp_path / "voucher.wav"
    result = run_kiosk("say", "--locale", "hu_HU", "--screen", "voucher", "--wav", str(wav))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == spoken_text(
        build_screen_view(SCREENS["voucher"], "hu_HU", "Europe/Copenhagen"), private=False
    )
    assert spelled(code) not in result.stdout and code not in result.stdout  # a speaker never says the code
    assert stat.S_IMODE(wav.stat().st_mode) == 0o600
    seconds, rms = _measure(wav.read_bytes())
    assert rms > 0.02 and seconds > 2
    private = run_kiosk("say", "--locale", "hu_HU", "--screen", "voucher", "--private", "--text-only")
    assert private.returncode == 0 and spelled(code) in private.stdout
    wrong = run_kiosk("say", "--locale", "hu_HU", "--screen", "fanfare", "--text-only")
    assert wrong.returncode == 2 and "--screen" in wrong.stderr


async def _until(condition: Callable[[], bool], what: str) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 5 s: {what}")


def test_the_kiosk_starts_one_voice_worker_and_it_starts_and_stops_espeak_ng() -> None:
    """The kiosk's only child is the worker, at SCHED_IDLE; espeak-ng is the worker's, and a
    cancelled utterance's espeak-ng is gone at once while the next is said in full."""

    async def scenario() -> None:
        synthesizer = EspeakSynthesizer(play=False)
        await synthesizer.start()
        try:
            worker = synthesizer._worker
            assert worker is not None
            assert os.sched_getscheduler(worker.pid) == os.SCHED_IDLE
            before = child_processes(os.getpid())
            long = asyncio.ensure_future(synthesizer.say("Lorem ipsum dolor sit amet. " * 3000, "en-gb"))
            await _until(lambda: len(child_processes(worker.pid)) == 1, "espeak-ng started by the worker")
            assert child_processes(os.getpid()) == before  # nothing new started by the kiosk itself
            long.cancel()
            with pytest.raises(asyncio.CancelledError):
                await long
            await _until(lambda: not child_processes(worker.pid), "the interrupted espeak-ng stopped")
            for locale in ("da_DK", "de_DE"):
                await asyncio.wait_for(synthesizer.say("Tak. 50,00 kr.", VOICES[locale]), 30)
        finally:
            await synthesizer.stop()
        assert worker.returncode == 0
        failing = EspeakSynthesizer(play=False, binary="false")  # a synthesizer that exits 1
        await failing.start()
        try:
            with pytest.raises(SpeechError, match=r"espeak-ng failed \(1\)"):
                await failing.say("Tak.", "da")
        finally:
            await failing.stop()

    asyncio.run(scenario())


def test_a_voice_worker_that_keeps_dying_never_stops_the_kiosk(caplog: pytest.LogCaptureFixture) -> None:
    """Each death is logged and a new worker started after a back-off; speech never ends and never
    raises, so the kiosk's supervisor (which gives up after 5 failures) never hears of it."""

    async def scenario() -> tuple[bool, set[int]]:
        synthesizer = EspeakSynthesizer(play=False)
        speech = Speech(synthesizer, private=False, settle_s=0.0, restart_first_s=0.01)
        speaking = asyncio.ensure_future(speech.run())
        workers: set[int] = set()
        for n in range(6):  # more deaths than the kiosk's supervisor would forgive
            await _until(
                lambda: synthesizer._worker is not None and synthesizer._worker.pid not in workers, "a new worker"
            )
            worker = synthesizer._worker
            assert worker is not None
            workers.add(worker.pid)
            worker.kill()
            speech(build_screen_view(SCREENS["idle" if n % 2 else "issuing"], "da_DK", "Europe/Copenhagen"))
        await _until(lambda: synthesizer._worker is not None and synthesizer._worker.pid not in workers, "a worker")
        running = await cancel_running(speaking)
        return running, workers

    with caplog.at_level(logging.ERROR, logger="kiosk.devices.audio.speech"):
        running, workers = asyncio.run(scenario())
    assert running and len(workers) == 6
    assert any("speech stopped" in r.getMessage() and "starts again" in r.getMessage() for r in caplog.records)


def test_an_espeak_ng_that_cannot_run_is_an_utterance_that_failed(tmp_path: Path) -> None:
    """A synthesizer file that is there but cannot run (a truncated binary, another CPU's):
    the worker answers each utterance as failed and lives on."""
    broken = tmp_path / "espeak-ng"
    broken.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(40))  # an executable that is no program
    broken.chmod(0o755)

    async def scenario() -> None:
        synthesizer = EspeakSynthesizer(play=False, binary=str(broken))
        await synthesizer.start()
        try:
            worker = synthesizer._worker
            for _ in range(3):
                with pytest.raises(UtteranceFailed, match="cannot run"):
                    await asyncio.wait_for(synthesizer.say("Tak.", "da"), 10)
            assert synthesizer._worker is worker and worker is not None and worker.returncode is None
        finally:
            await synthesizer.stop()

    asyncio.run(scenario())


def test_a_killed_worker_takes_its_espeak_ng_along_and_no_text_hangs_it() -> None:
    async def scenario() -> None:
        synthesizer = EspeakSynthesizer(play=False)
        await synthesizer.start()
        try:
            # Text no UTF-8 can hold (a lone surrogate) is said as well as it can be, not hung on.
            await asyncio.wait_for(synthesizer.say("Tak \ud800 50,00 kr.", "da"), 30)
            worker = synthesizer._worker
            assert worker is not None
            long = asyncio.ensure_future(synthesizer.say("Lorem ipsum dolor sit amet. " * 3000, "en-gb"))
            await _until(lambda: len(child_processes(worker.pid)) == 1, "espeak-ng started by the worker")
            (voice,) = child_processes(worker.pid)
            worker.kill()
            with pytest.raises(SpeechError, match="voice worker ended"):
                await asyncio.wait_for(long, 10)
            await _until(lambda: not Path(f"/proc/{voice}").exists(), "espeak-ng gone with its worker")
        finally:
            await synthesizer.stop()

    asyncio.run(scenario())


def test_without_espeak_ng_the_kiosk_goes_on_silent(caplog: pytest.LogCaptureFixture) -> None:
    """Speech turned on where espeak-ng is not installed: said once in the log, never a failure
    for the supervisor (which would stop the kiosk for every customer)."""

    async def scenario() -> bool:
        speech = Speech(EspeakSynthesizer(binary="no-such-espeak-ng"), private=False, settle_s=0.0)
        task = asyncio.ensure_future(speech.run())
        for _ in range(3):
            speech(build_screen_view(SCREENS["idle"], "da_DK", "Europe/Copenhagen"))
            await asyncio.sleep(0.05)
        running = await cancel_running(task)
        return running

    with caplog.at_level(logging.ERROR, logger="kiosk.devices.audio.speech"):
        assert asyncio.run(scenario())
    assert [r.getMessage() for r in caplog.records] == [
        "speech is on, but there is no voice: no-such-espeak-ng is not installed (Debian: apt-get install "
        "espeak-ng); the kiosk goes on without speech"
    ]


def test_a_sound_device_that_is_not_there_is_an_utterance_that_failed() -> None:
    """espeak-ng exits 0 when it cannot open the sound device and only says so on stderr: the
    worker answers that utterance as failed, so the log says why the kiosk is silent."""

    async def scenario() -> None:
        synthesizer = EspeakSynthesizer(device="no-such-sound-device")
        await synthesizer.start()
        try:
            with pytest.raises(UtteranceFailed, match="no-such-sound-device"):
                await asyncio.wait_for(synthesizer.say("Tak.", "da"), 30)
        finally:
            await synthesizer.stop()

    asyncio.run(scenario())
