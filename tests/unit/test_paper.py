"""The paper voucher: layout read back by the simulated printer, and hostile text kept inert."""

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kiosk.core.voucher import Shop, parse_voucher
from kiosk.presentation.paper import inert, paper_width_px, render_paper
from kiosk.presentation.view import build_voucher_view
from kiosk.sim.escpos_reader import parse_escpos, render_paper_png

VOUCHER = parse_voucher(
    {
        "code": "HS50-ABC",
        "link": "https://hyggelig-sko.example/redeem?code=HS50-ABC",
        "type": "amount",
        "value": 5000,
        "unit": "DKK",
        "conditions": "Min. køb 200 DKK / Min. purchase 200 DKK",
        "expires_at": "2027-03-15T12:00:00Z",
    },
    shop=Shop("Hyggelig Sko", "Handmade shoes from Aarhus."),
)


def view(voucher=VOUCHER):
    return build_voucher_view(voucher, "en_GB", "Europe/Copenhagen")


def test_tm_t20ii_job_has_text_native_qr_and_one_cut() -> None:
    job = parse_escpos(render_paper(view(), "TM-T20II"), "TM-T20II")
    assert job.unknown == []
    assert job.count("ESC @") == 1 and job.count("GS V") == 1
    assert job.qr_payloads == [VOUCHER.link]
    for text in (
        "Hyggelig Sko",
        "DKK\u00a050.00",
        "Use code",
        "HS50-ABC",
        "Expiration date: 15/03/2027",
        "Min. køb 200 DKK",
    ):
        assert text in job.text


def test_pos5890_job_draws_the_qr_as_a_raster_that_decodes_and_does_not_cut() -> None:
    job = parse_escpos(render_paper(view(), "POS-5890"), "POS-5890")
    assert job.unknown == [] and job.count("GS V") == 0 and job.count("GS v 0") == 1
    picture = render_paper_png(job, paper_width_px("POS-5890"))
    assert [r.text for r in zxingcpp.read_barcodes(picture)] == [VOUCHER.link]


def test_preview_of_native_qr_decodes() -> None:
    job = parse_escpos(render_paper(view(), "TM-T20II"))
    assert [r.text for r in zxingcpp.read_barcodes(render_paper_png(job))] == [VOUCHER.link]


def test_inert_removes_controls_and_keeps_letters() -> None:
    assert inert("A\x1b@B\x1dV\x00C\x7f\u200bD\u0085E\tF\nG") == "A@BVCDE F\nG"
    assert inert("Grøn Butik ő ű €") == "Grøn Butik ő ű €"


#: Every C0 control, DEL, C1 controls, bidi and zero-width marks, separators, a BOM, and letters
#: that need other code pages (or none: CJK is drawn as a raster line).
hostile = st.text(
    st.one_of(
        st.sampled_from([chr(c) for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)]]),
        st.sampled_from(["\u200b", "\u200e", "\u202e", "\u2028", "\u2029", "\ufeff", "\u00ad", "\U000e0001"]),
        st.sampled_from(["é", "ő", "ű", "€", "’", "œ", "漢", "@", "V", "p", "!", "(", "k", "t"]),
    ),
    max_size=60,
)
ALLOWED = {"ESC @", "ESC !", "ESC E", "ESC a", "ESC t", "GS ( k", "GS v 0", "ESC d", "GS V"}


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(conditions=hostile, name=hostile, description=hostile, profile=st.sampled_from(["TM-T20II", "POS-5890"]))
def test_no_outside_byte_becomes_a_command(conditions: str, name: str, description: str, profile: str) -> None:
    voucher = parse_voucher(
        {**VOUCHER.to_json(), "conditions": conditions, "shop": {"name": name, "description": description}}
    )
    job = parse_escpos(render_paper(view(voucher), profile), profile)
    assert job.unknown == []
    assert set(job.commands) <= ALLOWED  # no drawer kick, no NV memory, no status or other commands
    assert job.count("ESC @") == 1
    assert job.count("GS V") == (1 if profile == "TM-T20II" else 0)
    if profile == "TM-T20II":
        assert job.count("GS ( k") == 5 and job.qr_payloads == [VOUCHER.link]  # model, size, level, store, print
    assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 for ch in job.text.replace("\n", ""))


@pytest.mark.parametrize("locale", ["da_DK", "de_AT", "fr_BE", "hu_HU", "nl_NL", "sq_AL"])
def test_every_language_prints_as_text_in_a_code_page(locale: str) -> None:
    """Danish, German, French, Dutch and Albanian fit CP858/CP1252; Hungarian's ő and ű go to CP852."""
    voucher_view = build_voucher_view(VOUCHER, locale, "Europe/Copenhagen")
    for profile in ("TM-T20II", "POS-5890"):
        job = parse_escpos(render_paper(voucher_view, profile), profile)
        assert voucher_view.expires_line.replace("\u202f", "\u00a0") in job.text
        assert voucher_view.labels["use_code"] in job.text
        assert job.count("GS v 0") == (0 if profile == "TM-T20II" else 1)  # only the raster QR


def test_a_line_no_code_page_holds_is_drawn_not_garbled() -> None:
    voucher = parse_voucher({**VOUCHER.to_json(), "conditions": "漢字 coupon"})
    job = parse_escpos(render_paper(view(voucher), "TM-T20II"))
    assert job.count("GS v 0") == 1 and "漢" not in job.text and "?" not in job.text


def test_the_shop_logo_is_a_small_dithered_raster_above_the_name() -> None:
    from PIL import Image

    gradient = Image.linear_gradient("L").resize((300, 120)).convert("RGB")
    plain = parse_escpos(render_paper(view(), "TM-T20II"))
    with_logo = parse_escpos(render_paper(view(), "TM-T20II", gradient))
    assert with_logo.count("GS v 0") == plain.count("GS v 0") + 1
    raster = next(block for block in with_logo.blocks if block[0] == "raster")[2]
    assert raster.height <= 96 and raster.width <= 576
    assert set(raster.convert("L").tobytes()) <= {0, 255}  # dots only: dithered, not grey
    assert with_logo.blocks.index(next(b for b in with_logo.blocks if b[0] == "raster")) == 0


_KINDS = {
    "amount": VOUCHER,
    "percentage, no link, no expiry": parse_voucher(
        {**VOUCHER.to_json(), "type": "percentage", "value": 15, "unit": "%", "link": None, "expires_at": None},
        shop=Shop("Grøn Butik – Győr", None),
    ),
    "gift, no shop": parse_voucher({**VOUCHER.to_json(), "type": "gift", "value": 1, "unit": "Tote bag"}),
}


@pytest.mark.parametrize("plain", [False, True])
@pytest.mark.parametrize("kind", list(_KINDS))
@pytest.mark.parametrize("locale", ["fr_BE", "hu_HU"])
def test_the_paper_carries_everything_the_voucher_screen_shows(kind: str, locale: str, plain: bool) -> None:
    """Time to read: a customer who could not read the screen in time has it all on paper; the code
    as text as well as in the QR, and the QR the same as the screen's."""
    from kiosk.core.flow import Screen, State
    from kiosk.presentation.page import build_frame
    from kiosk.presentation.view import build_screen_view

    screen = build_frame(
        build_screen_view(Screen(State.SHOWING_VOUCHER, voucher=_KINDS[kind], plain=plain), locale, "UTC"), seq=1
    )["voucher"]
    shown = [screen["discount"], screen["labels"]["use_code"], screen["code"], screen["expires_line"]]
    shown += [screen["conditions"], screen["shop_name"], screen["shop_description"]]
    shown += [screen["labels"]["about"]] if screen["shop_description"] else []
    voucher_view = build_voucher_view(_KINDS[kind], locale, "UTC", plain=plain)
    for profile in ("TM-T20II", "POS-5890"):
        job = parse_escpos(render_paper(voucher_view, profile), profile)
        on_paper = " ".join(job.text.split())
        for text in filter(None, shown):
            assert " ".join(text.replace("\u202f", "\u00a0").split()) in on_paper, (profile, text)
        if not plain:
            qr = job.qr_payloads or [
                r.text for r in zxingcpp.read_barcodes(render_paper_png(job, paper_width_px(profile)))
            ]
            assert qr == [screen["qr"]]
