"""Speech output (issue 17): the exact spoken texts per locale and screen, the headset rule, and
the adapter's queue (never waits, the next screen interrupts, a redraw is not said again)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from kiosk.cli.say import SCREENS
from kiosk.config import LOCALES, parse_config
from kiosk.core.flow import Screen, State
from kiosk.devices.audio.speech import SimulatedSynthesizer, Speech, UtteranceFailed, speech_for
from kiosk.presentation.i18n import labels
from kiosk.presentation.speech import VOICES, spelled, spoken_text
from kiosk.presentation.view import build_screen_view
from tests.conftest import cancel_running
from tests.unit.test_config import MINIMAL

#: The sample voucher's screen (DKK 50.00, code HS50-7QX2, expiring 15 March 2027) to a headset.
VOUCHER_TO_A_HEADSET = {
    "da_DK": "Din kupon: 50,00\xa0kr. Din kode: H S 5 0, 7 Q X 2. Udløbsdato: 15.3.2027. Din kupon bliver udskrevet.",
    "de_AT": "Ihr Gutschein: DKK\xa050,00. Ihr Code: H S 5 0, 7 Q X 2. "
    "Ablaufdatum: 15.3.2027. Ihr Gutschein wird gedruckt.",
    "de_DE": "Ihr Gutschein: 50,00\xa0DKK. Ihr Code: H S 5 0, 7 Q X 2. "
    "Ablaufdatum: 15.3.2027. Ihr Gutschein wird gedruckt.",
    "en_GB": "Your voucher: DKK\xa050.00. Your code: H S 5 0, 7 Q X 2. Expiration date: 15/03/2027. "
    "Your voucher is being printed.",
    "fr_BE": "Votre bon d’achat\xa0: 50,00\xa0DKK. Votre code\xa0: H S 5 0, 7 Q X 2. "
    "Date d’expiration\xa0: 15/03/2027. Votre bon d’achat est en cours d’impression.",
    "fr_FR": "Votre bon d’achat\xa0: 50,00\xa0DKK. Votre code\xa0: H S 5 0, 7 Q X 2. "
    "Date d’expiration\xa0: 15/03/2027. Votre bon d’achat est en cours d’impression.",
    "hu_HU": "Az Ön kuponja: 50,00\xa0DKK. Az Ön kódja: H S 5 0, 7 Q X 2. Lejárati dátum: 2027. 03. 15. "
    "A kuponját most nyomtatjuk.",
    "nl_BE": "Je tegoedbon: DKK\xa050,00. Je code: H S 5 0, 7 Q X 2. "
    "Vervaldatum: 15/3/2027. Je tegoedbon wordt afgedrukt.",
    "nl_NL": "Je tegoedbon: DKK\xa050,00. Je code: H S 5 0, 7 Q X 2. "
    "Vervaldatum: 15-3-2027. Je tegoedbon wordt afgedrukt.",
    "sq_AL": "Kuponi juaj: 50,00\xa0DKK. Kodi juaj: H S 5 0, 7 Q X 2. "
    "Data e skadimit: 15.3.2027. Kuponi juaj po shtypet.",
}

#: Every screen in English through a speaker.
ENGLISH = {
    "idle": "Scan the code on your RE-ZIP packaging. Hold the code in front of the scanner.",
    "drop_prompt": "Drop the packaging in the slot.",
    "issuing": "Finding your voucher…",
    "voucher": "Your voucher: DKK\xa050.00. Expiration date: 15/03/2027. Your voucher is being printed.",
    "voucher_kept": "Your voucher: DKK\xa050.00. Expiration date: 15/03/2027. Your voucher is being printed. "
    "The voucher stays on the screen a little longer.",
    "printer_trouble": "The printer is not working. Your voucher: DKK\xa050.00. Expiration date: 15/03/2027. "
    "Scan the QR code with your phone to keep your voucher.",
    "printer_back": "The printer is working again. Your voucher: DKK\xa050.00. Expiration date: 15/03/2027. "
    "Scan your packaging again to print your voucher.",
    "invalid_code": "That is not a RE-ZIP code. Please scan the code printed on the RE-ZIP packaging.",
    "already_returned": "This packaging has already been returned. Each packaging earns one voucher.",
    "none_available": "Thank you! No voucher is available right now. Your return has been counted.",
    "backend_trouble": "We cannot issue a voucher right now. Please try again in a moment.",
    "offline_limit": "No voucher can be issued while this kiosk is offline. "
    "Please keep your packaging and return it again later.",
    "deposit_timeout": "N"
    "o packaging was dropped in time. Please scan the code again and drop the packaging in the slot.",
}


def said(screen: str, locale: str, *, private: bool) -> str:
    return spoken_text(build_screen_view(SCREENS[screen], locale, "Europe/Copenhagen"), private=private)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_voucher_is_spoken_in_the_customers_language_with_icu_amounts_and_dates(locale: str) -> None:
    assert said("voucher", locale, private=True) == VOUCHER_TO_A_HEADSET[locale]


@pytest.mark.parametrize("screen", sorted(ENGLISH))
def test_every_screen_says_its_essentials(screen: str) -> None:
    assert set(ENGLISH) == set(SCREENS)
    assert said(screen, "en_GB", private=False) == ENGLISH[screen]


@pytest.mark.parametrize("locale", LOCALES)
def test_every_screen_in_every_locale_is_said_in_that_locales_words(locale: str) -> None:
    """No English leaks into another language's speech: each screen's text starts with the
    catalog's own title or voucher sentence, and ends a sentence."""
    text = labels(locale)
    for name in SCREENS:
        spoken = said(name, locale, private=False)
        view = build_screen_view(SCREENS[name], locale, "UTC")
        first = view.title if view.voucher is None or view.notice else text["speech.discount"].split("{")[0]
        assert spoken.startswith(first) and spoken[-1] in ".!?…", (locale, name, spoken)
        if not locale.startswith("en"):
            assert spoken != ENGLISH[name], (locale, name)


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("screen", ["voucher", "voucher_kept", "printer_trouble", "printer_back"])
def test_the_code_is_spoken_only_to_a_headset(screen: str, locale: str) -> None:
    """Through a speaker: the discount and that the voucher is printed, never the code; to a
    headset: the code as well, one character at a time."""
    voucher = SCREENS[screen].voucher
    assert voucher is not None
    public, private = said(screen, locale, private=False), said(screen, locale, private=True)
    code_sentence = labels(locale)["speech.code"].format(code=spelled(voucher.code))
    assert spelled(voucher.code) not in public and voucher.code not in public
    assert code_sentence in private and private.replace(code_sentence + " ", "") == public
    if screen == "voucher":
        assert labels(locale)["speech.printed"] in public


def test_the_audio_section_decides_who_may_hear_the_code() -> None:
    def audio(**section: object):
        return parse_config({**MINIMAL, "audio": section}, base=Path("/")).audio

    assert speech_for(audio()) is None  # off by default
    assert not audio(enabled=True).private
    assert audio(enabled=True, output="headset").private
    assert audio(enabled=True, always_private=True).private
    speech = speech_for(audio(enabled=True, output="headset", voices=["fr_BE=fr-fr"]))
    assert speech is not None and speech.private and speech.voices["fr_BE"] == "fr-fr"
    assert speech.voices["hu_HU"] == VOICES["hu_HU"]


def test_spelled_reads_a_code_one_character_at_a_time() -> None:
    assert spelled("GB15-07UX") == "G B 1 5, 0 7 U X"
    assert spelled("abc") == "a b c" and spelled("A--B/C") == "A, B, C"


def _view(name: str, locale: str = "en_GB"):
    return build_screen_view(SCREENS[name], locale, "UTC")


def test_speech_follows_the_screen_without_waiting_and_the_next_screen_interrupts() -> None:
    """Calling the adapter only queues; a new screen stops what is being said; a redraw is not
    said again; each text goes to its locale's voice."""

    async def scenario() -> tuple[SimulatedSynthesizer, list[bool]]:
        synthesizer = SimulatedSynthesizer(seconds_per_char=0.02)  # two seconds for the voucher
        speech = Speech(synthesizer, private=False, settle_s=0.0)
        task = asyncio.create_task(speech.run())
        speech(_view("voucher", "da_DK"))
        await asyncio.sleep(0.1)  # speaking the voucher now
        speech(_view("issuing"))  # the next customer's scan
        await asyncio.sleep(1.0)  # "Finding your voucher…" takes under half a second
        speech(_view("issuing"))  # a redraw (the offline banner changed): not said again
        speech(_view("idle", "hu_HU"))
        await asyncio.sleep(2.5)
        quiet = [task.done()]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return synthesizer, quiet

    synthesizer, quiet = asyncio.run(scenario())
    assert quiet == [False]  # it keeps listening
    assert synthesizer.interrupted == [said("voucher", "da_DK", private=False)]
    assert synthesizer.said == [
        (said("issuing", "en_GB", private=False), "en-gb"),
        (said("idle", "hu_HU", private=False), "hu"),
    ]


def test_a_screen_gone_before_it_settled_is_not_begun() -> None:
    """ "Finding your voucher…" replaced by the voucher within the settling time is never started
    (so never cut off); the voucher is said whole."""

    async def scenario() -> SimulatedSynthesizer:
        synthesizer = SimulatedSynthesizer(seconds_per_char=0.001)
        speech = Speech(synthesizer, private=False, settle_s=0.3)
        task = asyncio.create_task(speech.run())
        speech(_view("issuing"))
        await asyncio.sleep(0.05)
        speech(_view("voucher"))
        await asyncio.sleep(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return synthesizer

    synthesizer = asyncio.run(scenario())
    assert synthesizer.interrupted == []
    assert synthesizer.said == [(said("voucher", "en_GB", private=False), "en-gb")]


def test_a_failing_synthesizer_is_raised_for_the_supervisor() -> None:
    class Broken(SimulatedSynthesizer):
        async def say(self, text: str, voice: str) -> None:
            raise RuntimeError("no sound card")

    async def scenario() -> None:
        speech = Speech(Broken(), private=False)
        task = asyncio.create_task(speech.run())
        speech(build_screen_view(Screen(State.IDLE), "en_GB", "UTC"))
        await asyncio.wait_for(task, 5)

    with pytest.raises(RuntimeError, match="no sound card"):
        asyncio.run(scenario())


def test_a_voice_that_cannot_speak_stays_silent_and_the_others_go_on(caplog: pytest.LogCaptureFixture) -> None:
    """A language espeak-ng cannot say (a voice it lacks) is not a failure of the kiosk: that
    screen is silent, logged once per voice, and the next screen in another language is said."""

    class NoDanish(SimulatedSynthesizer):
        async def say(self, text: str, voice: str) -> None:
            if voice == "da":
                raise UtteranceFailed("espeak-ng failed (1): no voice da")
            await super().say(text, voice)

    async def scenario() -> tuple[NoDanish, bool]:
        synthesizer = NoDanish(seconds_per_char=0.0)
        speech = Speech(synthesizer, private=False, settle_s=0.0)
        task = asyncio.create_task(speech.run())
        for view in (_view("idle", "da_DK"), _view("issuing", "da_DK"), _view("idle", "en_GB")):
            speech(view)
            await asyncio.sleep(0.05)
        running = await cancel_running(task)
        return synthesizer, running

    with caplog.at_level(logging.DEBUG, logger="kiosk.devices.audio.speech"):
        synthesizer, running = asyncio.run(scenario())
    assert running
    assert synthesizer.said == [(said("idle", "en_GB", private=False), "en-gb")]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and "voice da" in errors[0].getMessage()
