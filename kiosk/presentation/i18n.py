"""The kiosk's fixed texts and their translations (gettext PO catalogs, read with Babel).

``MESSAGES`` names every fixed text a screen, the paper or the shop service's pages show, by key,
with its English source text, which is also its msgid in the catalogs under ``locales/``:
``da.po``, ``de.po``, ``fr.po``, ``hu.po``, ``nl.po``, ``sq.po`` (one per language; a country
variant such as de_AT uses its language's catalog unless ``de_AT.po`` exists). English is the
source language and needs none.
A test checks that every catalog translates every message.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from babel import Locale
from babel.messages.pofile import read_po

__all__ = ["MESSAGES", "labels", "language_name"]

MESSAGES: dict[str, str] = {
    "use_code": "Use code",
    "use_code_line": "Use code {code}",
    "expiration_date": "Expiration date",
    "expires_line": "Expiration date: {date}",
    "conditions": "Conditions",
    "about": "About",
    "scan_prompt": "Scan the code on your RE-ZIP packaging",
    "scan_hint": "Hold the code in front of the scanner",
    "drop_prompt": "Drop the packaging in the slot",
    "issuing": "Finding your voucher…",
    "thank_you": "Thank you for returning your packaging!",
    "scan_qr": "Scan the QR code with your phone",
    "language": "Language",
    "offline": "Offline: vouchers come from this kiosk's reserve",
    "notice.invalid_code": "That is not a RE-ZIP code",
    "notice.invalid_code.hint": "Please scan the code printed on the RE-ZIP packaging.",
    "notice.invalid_code.empty": "Nothing was read. Please scan the code again.",
    "notice.invalid_code.unreadable": "The code could not be read cleanly. Please scan it again.",
    "notice.already_returned": "This packaging has already been returned",
    "notice.already_returned.hint": "Each packaging earns one voucher.",
    "notice.none_available": "Thank you! No voucher is available right now",
    "notice.none_available.hint": "Your return has been counted.",
    "notice.backend_trouble": "We cannot issue a voucher right now",
    "notice.backend_trouble.hint": "Please try again in a moment.",
    "notice.offline_limit": "No voucher can be issued while this kiosk is offline",
    "notice.offline_limit.hint": "Please keep your packaging and return it again later.",
    "notice.printer_trouble": "The printer is not working",
    "notice.printer_trouble.hint": "Scan the QR code with your phone to keep your voucher.",
    "notice.printer_back": "The printer is working again",
    "notice.printer_back.hint": "Scan your packaging again to print your voucher.",
    "notice.deposit_timeout": "No packaging was dropped in time",
    "notice.deposit_timeout.hint": "Please scan the code again and drop the packaging in the slot.",
    # Said when a touch keeps the voucher on screen (time to read).
    "voucher.kept": "The voucher stays on the screen a little longer.",
    # Spoken only (kiosk/devices/audio/speech.py): the voucher in words; the code only to a headset.
    "speech.discount": "Your voucher: {discount}.",
    "speech.code": "Your code: {code}.",
    "speech.printed": "Your voucher is being printed.",
    # The shop service's pages for a voucher link that cannot be redeemed (kiosk/shop/pages.py).
    "redeem.already_redeemed": "This voucher has already been used",
    "redeem.already_redeemed.hint": "Each voucher can be used once.",
    "redeem.disabled": "This voucher is no longer valid",
    "redeem.disabled.hint": "The shop has withdrawn it. Please ask the shop if you think this is a mistake.",
    "redeem.expired": "This voucher has expired",
    "redeem.expired.hint": "It can no longer be used.",
    "redeem.unknown": "We cannot find this voucher",
    "redeem.unknown.hint": "Please check the link, or enter the code at the shop's checkout.",
    "redeem.unavailable": "We cannot check your voucher right now",
    "redeem.unavailable.hint": "Please try again in a few minutes. Your voucher has not been used.",
    "redeem.code": "Voucher code",
}


@lru_cache(maxsize=16)
def _catalog(name: str) -> dict[str, str] | None:
    """msgid → msgstr of one PO file, fuzzy and empty entries left out; None if there is none."""
    resource = resources.files("kiosk.presentation") / "locales" / f"{name}.po"
    if not resource.is_file():
        return None
    with resource.open("rb") as handle:
        catalog = read_po(handle)
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and message.string and not message.fuzzy
    }


@lru_cache(maxsize=16)
def labels(locale: str) -> dict[str, str]:
    """Every fixed text, by key, in ``locale`` (English where a catalog lacks a message)."""
    parsed = Locale.parse(locale)
    translated = _catalog(str(parsed)) or _catalog(parsed.language) or {}
    return {key: translated.get(source, source) for key, source in MESSAGES.items()}


def language_name(locale: str, *, alone: bool = False) -> str:
    """The locale's name in its own language, for the language switch ("Dansk (Danmark)"); with
    ``alone`` (no other locale of that language on the switch) the language only ("Dansk"), so the
    switch's buttons stay short enough for one row."""
    parsed = Locale.parse(locale)
    name = (parsed.get_language_name(parsed) if alone else parsed.get_display_name(parsed)) or locale
    return name[:1].upper() + name[1:]
