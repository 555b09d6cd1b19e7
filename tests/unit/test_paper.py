"""The paper voucher: layout read back by the simulated printer, and hostile text kept inert."""

import zxingcpp
from hypothesis import HealthCheck, given, settings, strategies as st

from kiosk.core.voucher import Shop, parse_voucher
from kiosk.devices.printer.escpos_reader import parse_escpos, render_paper_png
from kiosk.presentation.paper import inert, paper_width_px, render_paper
from kiosk.presentation.view import build_voucher_view

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
    for text in ("Hyggelig Sko", "DKK\u00a050.00", "Use code", "HS50-ABC", "Expiration date: 15/03/2027", "Min. køb 200 DKK"):
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


hostile = st.text(
    st.one_of(
        st.characters(max_codepoint=0x20),
        st.sampled_from(["\x7f", "\x85", "\u200e", "\u2028", "\ufeff", "é", "ő", "€", "@", "V", "p", "!"]),
    ),
    max_size=60,
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(conditions=hostile, name=hostile, description=hostile)
def test_no_outside_byte_becomes_a_command(conditions: str, name: str, description: str) -> None:
    voucher = parse_voucher({**VOUCHER.to_json(), "conditions": conditions, "shop": {"name": name, "description": description}})
    job = parse_escpos(render_paper(view(voucher), "TM-T20II"))
    assert job.unknown == []
    assert job.count("ESC @") == 1 and job.count("GS V") == 1
    assert job.count("ESC p") == 0  # no drawer kick
    assert job.count("GS ( k") == 5  # model, size, error correction, store, print
    assert job.qr_payloads == [VOUCHER.link]
