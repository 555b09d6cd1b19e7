"""Hostile shop logos against the whole running kiosk: any bytes a logo URL could answer (noise,
truncated and bit-flipped images of every mode, animations, pictures far too large, text that is
not a picture) must leave the voucher on screen and on paper, with or without its logo, never a
printer failure, and nothing unexpected in the log."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kiosk.devices.printer.escpos_reader import parse_escpos
from kiosk.sim.backend_store import new_ulid
from tests.integration.hostile import Answer, KioskHarness, fresh_code

pytestmark = pytest.mark.integration

MODES = ["1", "L", "P", "RGB", "RGBA", "CMYK", "I;16", "LA", "PA"]
FORMATS = ["PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "ICO"]


def _picture(mode: str, kind: str, size: tuple[int, int], frames: int) -> bytes:
    out = io.BytesIO()
    image = Image.new(mode, size)
    try:
        if frames > 1 and kind in ("GIF", "PNG", "WEBP"):
            image.save(out, kind, save_all=True, append_images=[image.copy() for _ in range(frames - 1)])
        else:
            image.save(out, kind)
    except (OSError, ValueError, KeyError):  # a mode this format cannot hold: use its grey version
        out = io.BytesIO()
        image.convert("L").save(out, "PNG")
    return out.getvalue()


#: How a picture is made and then damaged: (mode, format, size, frames, damage, where, xor, noise).
RECIPES = st.tuples(
    st.sampled_from(MODES),
    st.sampled_from(FORMATS),
    st.sampled_from([(1, 1), (64, 48), (2048, 2048), (2049, 10), (9000, 1)]),
    st.sampled_from([1, 1, 50]),
    st.sampled_from(["none", "none", "truncate", "flip", "noise", "text"]),
    st.floats(0, 1),
    st.integers(1, 255),
    st.binary(max_size=2048),
)


def _logo_bytes(recipe: tuple) -> bytes:
    """Made outside the strategy: Pillow's encoders may use the random module, which hypothesis
    must not see while it draws."""
    mode, kind, size, frames, damage, where, xor, noise = recipe
    picture = _picture(mode, kind, size, frames)
    at = min(len(picture) - 1, int(where * len(picture)))
    if damage == "truncate":
        return picture[:at]
    if damage == "flip":
        return picture[:at] + bytes([picture[at] ^ xor]) + picture[at + 1 :]
    if damage == "noise":
        return noise
    if damage == "text":
        return [b"<svg xmlns='http://www.w3.org/2000/svg'/>", b"<html>", b"GIF89a", b"\x89PNG\r\n"][xor % 4]
    return picture


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory):
    with KioskHarness(Path(tmp_path_factory.mktemp("hostile-logos"))) as running:
        yield running


def _answer(harness: KioskHarness, logo: str) -> Answer:
    code = f"LG-{new_ulid()[-8:]}"
    doc = {
        "id": "x",
        "type": "Voucher",
        "data": {
            "code": code,
            "conditions": "Min. køb 100 DKK",
            "expires_at": "2027-06-01T00:00:00Z",
            "value_data": {"type": "amount", "value": 2500, "unit": "DKK"},
            "shop": {"name": "Logo Shop", "logo_url": f"{harness.proxy.url}/hostile-logo/{logo}"},
        },
    }
    return Answer(201, json.dumps(doc).encode())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(recipe=RECIPES)
def test_no_logo_keeps_a_voucher_off_the_screen_or_the_paper(harness: KioskHarness, recipe: tuple) -> None:
    name = new_ulid()
    harness.proxy.logos[name] = _logo_bytes(recipe)
    codes = []
    for _ in range(2):  # the first voucher may not wait for the logo; the second finds it cached or refused
        harness.proxy.answers.put(_answer(harness, name))
        report = harness.scan(fresh_code("gron"))
        assert report.status == "issued" and report.source == "online"
        assert report.print_error is None and report.print_bytes is not None
        job = parse_escpos(report.print_bytes)
        assert report.voucher.code in job.text and job.unknown == []
        frame = harness.frame()
        assert frame["voucher"]["code"] == report.voucher.code
        assert frame["voucher"]["logo"] is None or frame["voucher"]["logo"].startswith("/logo/")
        codes.append(report.voucher.code)
    assert harness.log_problems(codes) == []
