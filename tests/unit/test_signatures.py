import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from kiosk.signatures import (
    SignatureError,
    keys_from_jwks,
    public_jwk,
    public_key_from_jwk,
    sign_request,
    verify_request,
)

URL = "https://your-server.example.com/rezip/voucher"
HEADERS = {"Content-Type": "application/json", "Webhook-Version": "1"}
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


def signed(key, **overrides) -> dict[str, str]:
    headers = dict(HEADERS)
    headers.update(sign_request(key, "key-a1b2c3d4", "POST", URL, headers, created=NOW))
    headers.update(overrides)
    return headers


def test_headers_have_rezip_shape(key) -> None:
    headers = signed(key)
    assert headers["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-type");keyid="key-a1b2c3d4";alg="ecdsa-p384-sha384";created=1700000000'
    )
    assert headers["Signature"].startswith("sig1=:") and headers["Signature"].endswith(":")
    raw = base64.b64decode(headers["Signature"][6:-1])
    assert len(raw) == 96  # r || s, 48 bytes each, as RFC 9421 specifies for P-384


def test_roundtrip(key) -> None:
    keys = {"key-a1b2c3d4": key.public_key()}
    assert verify_request("POST", URL, signed(key), keys, now=NOW + 10) == "key-a1b2c3d4"


def test_jwk_roundtrip(key) -> None:
    jwk = public_jwk(key.public_key(), "k1")
    assert (jwk["kty"], jwk["crv"], jwk["kid"]) == ("EC", "P-384", "k1")
    assert public_key_from_jwk(jwk).public_numbers() == key.public_key().public_numbers()
    with pytest.raises(SignatureError):
        public_key_from_jwk({**jwk, "crv": "P-256"})


@pytest.mark.parametrize(
    "method, url, change",
    [
        ("GET", URL, {}),
        ("POST", URL + "?x=1", {}),
        ("POST", "https://attacker.example/rezip/voucher", {}),
        ("POST", URL, {"Content-Type": "text/plain"}),
    ],
)
def test_any_covered_change_breaks_it(key, method: str, url: str, change: dict) -> None:
    with pytest.raises(SignatureError, match="does not match"):
        verify_request(method, url, signed(key, **change), {"key-a1b2c3d4": key.public_key()}, now=NOW)


def test_tampered_signature_bytes(key) -> None:
    headers = signed(key)
    raw = bytearray(base64.b64decode(headers["Signature"][6:-1]))
    raw[10] ^= 1
    headers["Signature"] = "sig1=:" + base64.b64encode(bytes(raw)).decode() + ":"
    with pytest.raises(SignatureError, match="does not match"):
        verify_request("POST", URL, headers, {"key-a1b2c3d4": key.public_key()}, now=NOW)


def test_other_key_same_kid(key) -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(SignatureError):
        verify_request("POST", URL, signed(other), {"key-a1b2c3d4": key.public_key()}, now=NOW)


@pytest.mark.parametrize(
    "headers_change, now, message",
    [
        ({}, NOW + 301, "stale"),
        ({}, NOW - 301, "stale"),
        ({"Signature-Input": 'sig1=("@method");keyid="key-a1b2c3d4";created=1700000000'}, NOW, "no signature covers"),
        (
            {"Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="nope";created=1700000000'},
            NOW,
            "unknown keyid",
        ),
        (
            {
                "Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="key-a1b2c3d4";alg="rsa-v1_5-sha256";created=1700000000'
            },
            NOW,
            "unsupported algorithm",
        ),
        ({"Signature": "sig1=:bm90IGEgc2lnbmF0dXJl:"}, NOW, "wrong length"),
        ({"Signature": "sig1=not-bytes"}, NOW, "byte sequence"),
        ({"Signature-Input": "garbage"}, NOW, "malformed"),
    ],
)
def test_refusals(key, headers_change: dict, now: int, message: str) -> None:
    with pytest.raises(SignatureError, match=message):
        verify_request("POST", URL, signed(key, **headers_change), {"key-a1b2c3d4": key.public_key()}, now=now)


def test_missing_headers(key) -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify_request("POST", URL, HEADERS, {"key-a1b2c3d4": key.public_key()}, now=NOW)


@pytest.mark.parametrize(
    "headers_change, fault",
    [
        ({"Signature-Input": 'sig1=("@method");keyid="key-a1b2c3d4";created=1700000000'}, "not_covered"),
        (
            {"Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="nope";created=1700000000'},
            "unknown_key",
        ),
        (
            {
                "Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="key-a1b2c3d4";alg="hmac-sha256";created=1700000000'
            },
            "algorithm",
        ),
        ({"Signature-Input": 'sig1=("@method" "@target-uri" "content-type");keyid="key-a1b2c3d4"'}, "stale"),
        ({"Signature": "sig1=:AAAA:"}, "malformed"),
        ({"Content-Type": "text/plain"}, "mismatch"),
    ],
)
def test_each_refusal_says_which_fault(key, headers_change: dict, fault: str) -> None:
    with pytest.raises(SignatureError) as refused:
        verify_request("POST", URL, signed(key, **headers_change), {"key-a1b2c3d4": key.public_key()}, now=NOW)
    assert refused.value.fault == fault
    assert refused.value.keyid == ("nope" if fault == "unknown_key" else None)


def test_what_needs_no_key_is_refused_before_the_key_is_looked_up(key) -> None:
    """A stale, uncovered or broken signature under an unknown keyid never asks for that key."""
    for change, fault in (({}, "stale"), ({"Signature": "sig1=:AAAA:"}, "malformed")):
        headers = {**signed(key), **change}
        with pytest.raises(SignatureError) as refused:
            verify_request("POST", URL, headers, {}, now=NOW + (1000 if fault == "stale" else 0))
        assert refused.value.fault == fault


def test_the_window_is_the_callers(key) -> None:
    keys = {"key-a1b2c3d4": key.public_key()}
    assert verify_request("POST", URL, signed(key), keys, now=NOW + 60, max_skew_s=60) == "key-a1b2c3d4"
    with pytest.raises(SignatureError, match="stale"):
        verify_request("POST", URL, signed(key), keys, now=NOW + 61, max_skew_s=60)


def test_keys_from_jwks_keeps_the_p384_signing_keys(key) -> None:
    jwk = public_jwk(key.public_key(), "k1")
    doc = {
        "keys": [
            jwk,
            {**jwk, "kid": "enc", "use": "enc"},
            {**jwk, "kid": "broken", "x": "!!"},
            {"kty": "EC", "crv": "P-256", "kid": "p256", "x": "AA", "y": "AA"},
            "not a key",
            {**jwk, "kid": 7},
        ]
    }
    assert list(keys_from_jwks(doc)) == ["k1"]
    assert keys_from_jwks(doc)["k1"].public_numbers() == key.public_key().public_numbers()
    for broken in ({"keys": "x"}, [], None, {}):
        with pytest.raises(SignatureError, match="no list of keys"):
            keys_from_jwks(broken)
