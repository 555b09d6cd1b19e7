"""``kiosk say --locale L --screen S``: hear (or read, or save as WAV) what the kiosk says on a screen."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk.config import LOCALES
from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.core.voucher import Shop, parse_voucher
from kiosk.devices.audio.speech import EspeakSynthesizer, SpeechError
from kiosk.presentation.speech import VOICES, spoken_text
from kiosk.presentation.view import build_screen_view

if TYPE_CHECKING:
    from kiosk.cli.common import Commands

__all__ = ["SCREENS", "add_commands"]

#: A voucher like the demo's, for the voucher screens.
_SAMPLE = parse_voucher(
    {
        "code": "HS50-7QX2",
        "type": "amount",
        "value": 5000,
        "unit": "DKK",
        "conditions": "",
        "link": "https://hyggelig-sko.example/redeem?code=HS50-7QX2",
        "expires_at": "2027-03-15T12:00:00Z",
    },
    shop=Shop("Hyggelig Sko", None),
)

#: Every screen the kiosk can speak, by the name ``--screen`` takes.
SCREENS: dict[str, Screen] = {
    "idle": Screen(State.IDLE),
    "drop_prompt": Screen(State.AWAITING_DEPOSIT, code="RZ-1234"),
    "issuing": Screen(State.ISSUING, code="RZ-1234"),
    "voucher": Screen(State.SHOWING_VOUCHER, voucher=_SAMPLE),
    "voucher_kept": Screen(State.SHOWING_VOUCHER, voucher=_SAMPLE, kept=True),
    "printer_trouble": Screen(State.SHOWING_VOUCHER, voucher=_SAMPLE, printer="trouble"),
    "printer_back": Screen(State.SHOWING_VOUCHER, voucher=_SAMPLE, printer="back"),
    **{kind.value: Screen(State.NOTICE, notice=kind) for kind in NoticeKind},
}


def add_commands(commands: Commands) -> None:
    """Add ``kiosk say`` to the ``kiosk`` parser."""
    say = commands.add_parser(
        "say",
        help="speak a screen's text as the kiosk's speech output does ([audio])",
        description="Print what the kiosk says on one screen and speak it with espeak-ng (or save it as WAV). "
        "A sample voucher stands in on the voucher screens; its code is spoken only with --private.",
    )
    say.add_argument("--locale", required=True, choices=LOCALES, help="the customer's language")
    say.add_argument("--screen", required=True, choices=sorted(SCREENS), help="which screen")
    say.add_argument("--private", action="store_true", help="as to a headset: the voucher code is spoken too")
    say.add_argument("--voice", help="an espeak-ng voice instead of the locale's (e.g. da, fr-be)")
    say.add_argument("--rate", type=int, default=150, help="words per minute (default 150)")
    say.add_argument("--device", default="", help="the audio device to play on (espeak-ng's -d)")
    output = say.add_mutually_exclusive_group()
    output.add_argument("--wav", type=Path, help="write the speech to this WAV file instead of playing it")
    output.add_argument("--text-only", action="store_true", help="print the text, do not speak it")
    say.set_defaults(handler=_say)


def _say(args: argparse.Namespace) -> int:
    view = build_screen_view(SCREENS[args.screen], args.locale, "Europe/Copenhagen")
    text = spoken_text(view, private=args.private)
    print(text)
    if args.text_only:
        return 0
    synthesizer = EspeakSynthesizer(rate=args.rate, device=args.device)
    voice = args.voice or VOICES[args.locale]
    try:
        if args.wav is not None:
            audio = asyncio.run(synthesizer.wav(text, voice))
            descriptor = os.open(args.wav, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(audio)
        else:
            asyncio.run(_speak_once(synthesizer, text, voice))
    except SpeechError as exc:
        print(f"kiosk say: {exc}", file=sys.stderr)
        return 2
    return 0


async def _speak_once(synthesizer: EspeakSynthesizer, text: str, voice: str) -> None:
    await synthesizer.start()
    try:
        await synthesizer.say(text, voice)
    finally:
        await synthesizer.stop()
