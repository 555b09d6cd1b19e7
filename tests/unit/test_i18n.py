"""The gettext catalogs: every fixed text translated in every kiosk language, placeholders intact."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from kiosk.config import LOCALES
from kiosk.core.flow import NoticeKind, Screen, State
from kiosk.core.voucher import parse_voucher
from kiosk.presentation.i18n import MESSAGES, labels, language_name
from kiosk.presentation.view import build_screen_view, build_voucher_view
from tests.conftest import REPO

CATALOGS = sorted((REPO / "kiosk" / "presentation" / "locales").glob("*.po"))


def test_there_is_a_catalog_for_every_non_english_language() -> None:
    languages = {locale.split("_")[0] for locale in LOCALES} - {"en"}
    assert {path.stem for path in CATALOGS} == languages


@pytest.mark.parametrize("path", CATALOGS, ids=lambda p: p.stem)
def test_catalog_translates_every_message_and_nothing_else(path: Path) -> None:
    with path.open("rb") as handle:
        catalog = read_po(handle)
    entries = {str(m.id): m for m in catalog if m.id}
    assert set(entries) == set(MESSAGES.values())
    for source, message in entries.items():
        assert message.string and not message.fuzzy, f"{path.stem}: {source!r} is not translated"
        assert message.string != source, f"{path.stem}: {source!r} is left in English"
        assert re.findall(r"{\w+}", message.string) == re.findall(r"{\w+}", source)


@pytest.mark.parametrize("locale", [loc for loc in LOCALES if loc != "en_GB"])
def test_every_label_is_translated_in_every_locale(locale: str) -> None:
    text = labels(locale)
    assert set(text) == set(MESSAGES)
    assert [key for key, source in MESSAGES.items() if text[key] == source] == []


def test_seed_labels() -> None:
    assert labels("da_DK")["use_code"] == "Brug koden"
    assert labels("da_DK")["expiration_date"] == "Udløbsdato"
    assert labels("en_GB")["use_code"] == "Use code"
    assert labels("en_GB")["expiration_date"] == "Expiration date"


def test_country_variants_use_their_language() -> None:
    assert labels("de_AT") == labels("de_DE")
    assert labels("nl_BE")["scan_prompt"] == labels("nl_NL")["scan_prompt"]


def test_language_names_are_in_their_own_language() -> None:
    assert language_name("da_DK").startswith("Dansk")
    assert language_name("hu_HU").startswith("Magyar")
    assert language_name("sq_AL").startswith("Shqip")
    assert language_name("de_AT", alone=True) == "Deutsch" and language_name("de_AT") == "Deutsch (Österreich)"


VOUCHER = parse_voucher(
    {
        "code": "SAVE50",
        "type": "amount",
        "value": 5000,
        "unit": "DKK",
        "conditions": "Min. køb 200 DKK",
        "expires_at": "2027-03-15T12:00:00Z",
        "shop": {"name": "Grøn Butik", "description": "Økologi"},
    }
)


def test_voucher_view_in_danish_matches_the_seed() -> None:
    view = build_voucher_view(VOUCHER, "da_DK", "Europe/Copenhagen")
    assert view.discount == "50,00\u00a0kr."
    assert view.expires == "15.3.2027" and view.expires_line == "Udløbsdato: 15.3.2027"
    assert view.conditions == "Min. køb 200 DKK" and view.shop_name == "Grøn Butik"  # never translated
    assert view.qr == "SAVE50"


def test_french_puts_a_space_before_the_colon() -> None:
    assert build_voucher_view(VOUCHER, "fr_FR", "Europe/Paris").expires_line == "Date d’expiration\u00a0: 15/03/2027"


def test_no_expiry_line_without_an_expiry() -> None:
    voucher = parse_voucher({"code": "T", "type": "gift", "value": 1, "unit": "Tote bag", "conditions": ""})
    view = build_voucher_view(voucher, "en_GB", "UTC")
    assert view.expires is None and view.expires_line is None and view.discount == "1 Tote bag"


@pytest.mark.parametrize("locale", LOCALES)
def test_every_screen_has_translated_texts(locale: str) -> None:
    text = labels(locale)
    screens = [
        (Screen(State.IDLE), text["scan_prompt"]),
        (Screen(State.ISSUING, code="10HS0042"), text["issuing"]),
        (Screen(State.SHOWING_VOUCHER, voucher=VOUCHER), text["thank_you"]),
        *[(Screen(State.NOTICE, notice=kind), text[f"notice.{kind.value}"]) for kind in NoticeKind],
    ]
    for screen, title in screens:
        view = build_screen_view(screen, locale, "Europe/Copenhagen")
        assert view.title == title and view.locale == locale


def test_rejection_reasons_get_their_own_advice() -> None:
    empty = build_screen_view(Screen(State.NOTICE, notice=NoticeKind.INVALID_CODE, reason="empty"), "de_DE", "UTC")
    foreign = build_screen_view(
        Screen(State.NOTICE, notice=NoticeKind.INVALID_CODE, reason="not_rezip"), "de_DE", "UTC"
    )
    assert empty.subtitle == labels("de_DE")["notice.invalid_code.empty"]
    assert foreign.subtitle == labels("de_DE")["notice.invalid_code.hint"]


def test_every_message_is_shown_somewhere() -> None:
    """A key no screen, paper or page asks for is dead text translators keep paying for. Keys are
    asked for by name in the source, or built from a family's members (notices, printer states,
    redeem outcomes), so each member of those families must have its text and hint."""
    from typing import get_args, get_type_hints

    from kiosk.shop.pages import PageOutcome

    printer_literal = next(arg for arg in get_args(get_type_hints(Screen)["printer"]) if arg is not type(None))
    printer_states = get_args(printer_literal)
    built = [f"notice.{kind.value}" for kind in NoticeKind] + [f"notice.printer_{state}" for state in printer_states]
    built += [f"redeem.{outcome}" for outcome in get_args(PageOutcome)]
    built += [f"{key}.hint" for key in built]
    assert set(built) <= set(MESSAGES), "a family member has no text"
    source = "\n".join(
        path.read_text()
        for path in (REPO / "kiosk").rglob("*")
        if path.suffix in (".py", ".js", ".html") and path.name != "i18n.py"
    )
    asked = re.compile(r"""["']([a-z_.]+)["']|labels\.([a-z_]+)""")
    named = {group for match in asked.finditer(source) for group in match.groups() if group}
    unused = [key for key in MESSAGES if key not in built and key not in named]
    assert unused == []
