"""What the kiosk says aloud on each screen: the screen's essentials as one text, built from the same
view model as the page and the paper, so the words are the catalogs' and the amounts and dates
format.py's. Pure.

The voucher code is personal: it is spoken only when the listener is private (a headset, or a
kiosk configured as always private); through a speaker the kiosk says the discount and that the
voucher is printed. Shop texts (name, conditions, description) are of unknown language and are
not spoken: a voice for the customer's language would mangle them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kiosk.core.flow import State
from kiosk.presentation.view import ScreenView

__all__ = ["VOICES", "spoken_text", "spelled", "voices_with"]

#: espeak-ng's voice for each kiosk locale (every one ships with Debian's espeak-ng-data).
VOICES = {
    "da_DK": "da",
    "de_AT": "de",
    "de_DE": "de",
    "en_GB": "en-gb",
    "fr_BE": "fr-be",
    "fr_FR": "fr-fr",
    "hu_HU": "hu",
    "nl_BE": "nl",
    "nl_NL": "nl",
    "sq_AL": "sq",
}


def voices_with(overrides: Mapping[str, str] | None) -> dict[str, str]:
    """Each locale's voice: ``VOICES``, with the installation's ``[audio] voices`` in place."""
    return {**VOICES, **(overrides or {})}


def spelled(code: str) -> str:
    """A code as a voice reads it back one character at a time, with a pause at each separator
    ("GB15-07UX" → "G B 1 5, 0 7 U X"), so it can be typed in from hearing it."""
    groups = [group for group in re.split(r"[^0-9A-Za-z]+", code) if group]
    return ", ".join(" ".join(group) for group in groups)


def spoken_text(view: ScreenView, *, private: bool) -> str:
    """The screen's essentials in its language; the voucher code only when ``private``."""
    text = view.labels
    voucher = view.voucher
    if view.state is State.SHOWING_VOUCHER and voucher is not None:
        parts: list[str | None] = [view.title] if view.notice else []  # the printer's news first
        parts.append(text["speech.discount"].format(discount=voucher.discount))
        if private:
            parts.append(text["speech.code"].format(code=spelled(voucher.code)))
        if voucher.expires_line:
            parts.append(voucher.expires_line)
        parts.append(view.subtitle if view.notice else text["speech.printed"])
        if view.status:
            parts.append(view.status)
        return _sentences(parts)
    if view.state in (State.AWAITING_DEPOSIT, State.ISSUING):
        return _sentences([view.title])  # the subtitle is the packaging's code: nothing to hear
    return _sentences([view.title, view.subtitle])


def _sentences(parts: Sequence[str | None]) -> str:
    """The parts as sentences: a screen's title has no full stop, but a voice needs one to pause;
    an amount that ends in one ("50,00 kr.") keeps just the one."""
    said = [part.replace("..", ".") for part in parts if part]
    return " ".join(part if part[-1] in ".!?…" else part + "." for part in said)
