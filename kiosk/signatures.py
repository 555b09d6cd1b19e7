"""HTTP Message Signatures (RFC 9421) as RE-ZIP uses them: ``ecdsa-p384-sha384`` over
``@method @target-uri content-type``, public keys published as a JWKS and matched by ``keyid``.

Signing and verifying take the time as an argument (``created``/``now``), so callers decide the
clock and tests can set it. The two headers are RFC 8941 structured fields, parsed and serialised by
``http-sf`` (the structured-field library of RFC 8941's editor); what is built here is the signature
base for the three components RE-ZIP covers, and the checks, each with a typed fault a caller acts on
(``unknown_key`` refetches the JWKS). ``http-message-signatures`` is not used for this: it reads the
wall clock itself, reports every refusal as one exception type, and is the independent reference the
tests check this module against (tests/integration/test_shop_signatures.py).
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import http_sf
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from kiosk.secret_files import SecretFileError, write_secret_file

__all__ = [
    "ALGORITHM",
    "COVERED_COMPONENTS",
    "SignatureError",
    "sign_request",
    "verify_request",
    "verify_signature",
    "VerifiedSignature",
    "public_jwk",
    "public_key_from_jwk",
    "keys_from_jwks",
    "signature_base",
    "sign_detached",
    "verify_detached",
    "load_or_create_key",
    "key_fingerprint",
]

ALGORITHM = "ecdsa-p384-sha384"
COVERED_COMPONENTS = ("@method", "@target-uri", "content-type")
_COORD_BYTES = 48  # P-384
#: The order of P-384's group: (r, s) and (r, n - s) are both valid ECDSA signatures of one message.
_P384_ORDER = int(
    "ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16
)
#: A signature older (or further in the future) than this is refused: replay protection.
MAX_SKEW_S = 300


#: Why a signature was refused, for callers that act on it (refetch keys on ``unknown_key``).
SignatureFault = Literal["missing", "malformed", "not_covered", "algorithm", "stale", "unknown_key", "mismatch"]


class SignatureError(ValueError):
    """The request's signature is missing, malformed, from an unknown key, stale or wrong;
    ``fault`` says which, and ``keyid`` names the key an ``unknown_key`` refusal asked for."""

    def __init__(self, message: str, fault: SignatureFault = "malformed", *, keyid: str | None = None) -> None:
        super().__init__(message)
        self.fault: SignatureFault = fault
        self.keyid = keyid


@dataclass(frozen=True)
class _SignatureParams:
    components: tuple[str, ...]
    params: tuple[tuple[str, str | int], ...]

    def serialise(self) -> str:
        """The inner list as RFC 8941 serialises it (the ``@signature-params`` line's value)."""
        inner: Any = ([(component, {}) for component in self.components], dict(self.params))
        return str(http_sf.ser([inner]))

    def get(self, name: str) -> str | int | None:
        return next((v for n, v in self.params if n == name), None)


def signature_base(method: str, target_uri: str, headers: Mapping[str, str], params: _SignatureParams) -> bytes:
    """The exact bytes that are signed (RFC 9421 section 2.5)."""
    lower = {k.lower(): v for k, v in headers.items()}
    lines = []
    for component in params.components:
        if component == "@method":
            value = method.upper()
        elif component == "@target-uri":
            value = target_uri
        elif component.startswith("@"):
            raise SignatureError(f"unsupported derived component {component}", "not_covered")
        else:
            if component not in lower:
                raise SignatureError(f"covered header {component} is missing", "not_covered")
            value = " ".join(lower[component].split())
        lines.append(f'"{component}": {value}')
    lines.append(f'"@signature-params": {params.serialise()}')
    base = "\n".join(lines)
    if not base.isascii():  # e.g. a Host or Content-Type header in Latin-1: no sender signed that
        raise SignatureError("a covered component is not ASCII")
    return base.encode("ascii")


def sign_request(
    key: ec.EllipticCurvePrivateKey,
    keyid: str,
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    *,
    created: int,
    label: str = "sig1",
) -> dict[str, str]:
    """Return the ``Signature-Input`` and ``Signature`` headers for a request."""
    params = _SignatureParams(COVERED_COMPONENTS, (("keyid", keyid), ("alg", ALGORITHM), ("created", int(created))))
    base = signature_base(method, target_uri, headers, params)
    r, s = decode_dss_signature(key.sign(base, ec.ECDSA(hashes.SHA384())))
    raw = r.to_bytes(_COORD_BYTES, "big") + s.to_bytes(_COORD_BYTES, "big")
    return {
        "Signature-Input": f"{label}={params.serialise()}",
        "Signature": f"{label}=:{base64.b64encode(raw).decode('ascii')}:",
    }


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified: its key, its ``created`` time, and ``identity``, a name for this
    one signing act. ECDSA signatures are randomised, so two deliveries never share one, while a
    delivery sent again as it was (a retry) repeats it; the name is taken over ``(r, min(s, n - s))``,
    so the malleated twin ``(r, n - s)``, which verifies too, names the same delivery."""

    keyid: str
    created: int
    identity: str


def verify_request(
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    keys: Mapping[str, ec.EllipticCurvePublicKey],
    *,
    now: int,
    max_skew_s: int = MAX_SKEW_S,
) -> str:
    """``verify_signature``'s ``keyid``, for callers that need no more."""
    return verify_signature(method, target_uri, headers, keys, now=now, max_skew_s=max_skew_s).keyid


def verify_signature(
    method: str,
    target_uri: str,
    headers: Mapping[str, str],
    keys: Mapping[str, ec.EllipticCurvePublicKey],
    *,
    now: int,
    max_skew_s: int = MAX_SKEW_S,
) -> VerifiedSignature:
    """Check the first signature that covers our components. Everything that needs no key is
    checked first (shape, algorithm, ``created`` within ``max_skew_s`` of ``now``, the covered
    headers), so a stale or malformed request never makes a caller look a key up."""
    lower = {k.lower(): v for k, v in headers.items()}
    if "signature-input" not in lower or "signature" not in lower:
        raise SignatureError("Signature-Input or Signature header is missing", "missing")
    inputs = _dictionary(lower["signature-input"], "Signature-Input")
    signatures = _dictionary(lower["signature"], "Signature")
    for label, member in inputs.items():
        params = _signature_params(member)
        if not set(COVERED_COMPONENTS) <= set(params.components):
            continue
        if params.get("alg") not in (None, ALGORITHM):
            raise SignatureError(f"unsupported algorithm {params.get('alg')}", "algorithm")
        created = params.get("created")
        if not isinstance(created, int) or abs(now - created) > max_skew_s:
            raise SignatureError("signature is stale or has no created time", "stale")
        if label not in signatures:
            raise SignatureError(f"no Signature for label {label}")
        raw = _byte_sequence(signatures[label])
        if len(raw) != 2 * _COORD_BYTES:
            raise SignatureError("signature has the wrong length for P-384")
        r, s = int.from_bytes(raw[:_COORD_BYTES], "big"), int.from_bytes(raw[_COORD_BYTES:], "big")
        der = encode_dss_signature(r, s)
        base = signature_base(method, target_uri, headers, params)
        keyid = params.get("keyid")
        if not isinstance(keyid, str) or keyid not in keys:
            asked = keyid if isinstance(keyid, str) else None
            raise SignatureError(f"unknown keyid {keyid!r}", "unknown_key", keyid=asked)
        try:
            keys[keyid].verify(der, base, ec.ECDSA(hashes.SHA384()))
        except InvalidSignature:
            raise SignatureError("signature does not match", "mismatch") from None
        low_s = min(s, _P384_ORDER - s).to_bytes(_COORD_BYTES, "big")
        identity = hashlib.sha256(keyid.encode() + b"\n" + raw[:_COORD_BYTES] + low_s).hexdigest()
        return VerifiedSignature(keyid, created, identity)
    raise SignatureError("no signature covers @method @target-uri content-type", "not_covered")


def public_jwk(key: ec.EllipticCurvePublicKey, keyid: str) -> dict[str, str]:
    """The JWK (RFC 7517/7518) of a P-384 public key, as published in a JWKS."""
    numbers = key.public_numbers()
    return {
        "kty": "EC",
        "crv": "P-384",
        "x": _b64url(numbers.x.to_bytes(_COORD_BYTES, "big")),
        "y": _b64url(numbers.y.to_bytes(_COORD_BYTES, "big")),
        "kid": keyid,
        "alg": "ES384",
        "use": "sig",
    }


def public_key_from_jwk(jwk: Mapping[str, object]) -> ec.EllipticCurvePublicKey:
    if jwk.get("kty") != "EC" or jwk.get("crv") != "P-384":
        raise SignatureError("JWK is not an EC P-384 key")
    try:
        x = int.from_bytes(_unb64url(str(jwk["x"])), "big")
        y = int.from_bytes(_unb64url(str(jwk["y"])), "big")
        return ec.EllipticCurvePublicNumbers(x, y, ec.SECP384R1()).public_key()
    except (KeyError, ValueError) as exc:
        raise SignatureError(f"JWK is malformed: {exc}") from None


def keys_from_jwks(doc: object) -> dict[str, ec.EllipticCurvePublicKey]:
    """The P-384 keys of a JWKS document by ``kid``; a key of another kind, one not meant for
    signatures, or a broken one is skipped (the others still count)."""
    entries = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        raise SignatureError("the JWKS has no list of keys")
    keys = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("kid"), str) and entry.get("use", "sig") == "sig":
            try:
                keys[entry["kid"]] = public_key_from_jwk(entry)
            except SignatureError:
                continue
    return keys


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --- the slice of RFC 8941 these headers need -----------------------------------------------------


def _dictionary(text: str, name: str) -> dict[str, Any]:
    """A structured-field dictionary header (RFC 8941 section 3.2); malformed: ``SignatureError``."""
    try:
        members = http_sf.parse(text.encode("latin-1"), tltype="dictionary")
    except (http_sf.StructuredFieldError, UnicodeEncodeError, ValueError) as exc:
        raise SignatureError(f"{name} is not a structured-field dictionary: {str(exc)[:80]}") from None
    if not isinstance(members, dict):
        raise SignatureError(f"{name} is not a structured-field dictionary")
    return members


def _signature_params(member: Any) -> _SignatureParams:
    """A Signature-Input member: an inner list of component names (plain strings, no parameters of
    their own) with the signature's parameters (strings, integers or tokens)."""
    value, params = member
    if not isinstance(value, list):
        raise SignatureError("malformed Signature-Input member: not an inner list")
    components = []
    for item, item_params in value:
        if type(item) is not str or item_params:
            raise SignatureError("a covered component is not a plain string", "not_covered")
        components.append(item)
    kept: list[tuple[str, str | int]] = []
    for name, param in params.items():
        if type(param) is str or type(param) is int:  # a boolean is not a time, a token not a key id
            kept.append((name, param))
        elif isinstance(param, http_sf.Token):
            kept.append((name, str(param)))
        else:
            raise SignatureError(f"signature parameter {name} has an unexpected type")
    return _SignatureParams(tuple(components), tuple(kept))


def _byte_sequence(member: Any) -> bytes:
    value, _params = member
    if not isinstance(value, bytes):
        raise SignatureError("malformed Signature member: not a byte sequence")
    return value


def sign_detached(key: ec.EllipticCurvePrivateKey, keyid: str, body: bytes) -> str:
    """A ``Bundle-Signature`` header value: ECDSA P-384/SHA-384 over the exact body bytes."""
    r, s = decode_dss_signature(key.sign(body, ec.ECDSA(hashes.SHA384())))
    raw = r.to_bytes(_COORD_BYTES, "big") + s.to_bytes(_COORD_BYTES, "big")
    return f'keyid="{keyid}";alg="{ALGORITHM}";sig=:{base64.b64encode(raw).decode("ascii")}:'


def verify_detached(header: str, body: bytes, keys: Mapping[str, ec.EllipticCurvePublicKey]) -> str:
    """Check a ``Bundle-Signature`` over ``body``; return the keyid."""
    match = re.fullmatch(r'keyid="([^"]+)";alg="([^"]+)";sig=:([A-Za-z0-9+/=]+):', header.strip())
    if not match:
        raise SignatureError("Bundle-Signature is malformed")
    keyid, algorithm, encoded = match.groups()
    if algorithm != ALGORITHM:
        raise SignatureError(f"unsupported algorithm {algorithm}")
    if keyid not in keys:
        raise SignatureError(f"unknown keyid {keyid!r}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError:
        raise SignatureError("Bundle-Signature is not valid base64") from None
    if len(raw) != 2 * _COORD_BYTES:
        raise SignatureError("signature has the wrong length for P-384")
    der = encode_dss_signature(int.from_bytes(raw[:_COORD_BYTES], "big"), int.from_bytes(raw[_COORD_BYTES:], "big"))
    try:
        keys[keyid].verify(der, body, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature:
        raise SignatureError("bundle signature does not match") from None
    return keyid


def load_or_create_key(path: Path) -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """The ECDSA P-384 key kept in ``path`` (PEM, mode 0600), made and written when there is none;
    True when it was made now. A key file others can read is refused, as ssh refuses one."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP384R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_secret_file(path, pem, replace=False)
        return key, True
    if path.stat().st_mode & 0o077:
        raise SecretFileError(f"{path}: key file must have mode 0600 (run: chmod 600 {path})")
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey) or not isinstance(loaded.curve, ec.SECP384R1):
        raise SecretFileError(f"{path}: not an ECDSA P-384 private key")
    return loaded, False


def key_fingerprint(key: ec.EllipticCurvePrivateKey) -> str:
    """SHA-256 (hex) of the public key's DER SubjectPublicKeyInfo: what a registration shows."""
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()
