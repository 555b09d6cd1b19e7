#!/usr/bin/env python3
"""Verifying one RE-ZIP webhook signature (RFC 9421, ecdsa-p384-sha384): kiosk/signatures.py against
http-message-signatures, the reference the tests check it with, on the same signed request. The
figure behind keeping our own verifier (issue 13, part 6): both spend most of it in the ECDSA check.

Run: .venv/bin/python scripts/bench/signatures.py
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms

from kiosk.signatures import COVERED_COMPONENTS, sign_request, verify_signature


def median_us(check: Callable[[], object], count: int = 400) -> float:
    """The median time of ``count`` calls, in microseconds."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        check()
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    url = "https://shop.example/rezip/voucher"
    headers = {"Content-Type": "application/json", "Webhook-Version": "1"}
    now = int(time.time())
    signed = headers | sign_request(key, "k1", "POST", url, headers, created=now)
    keys = {"k1": key.public_key()}
    req = httpx.Request("POST", url, headers=signed, content=b"{}")
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.ECDSA_P384_SHA384,
        key_resolver=MappingKeyResolver(public_keys=keys, private_keys={}),
    )
    for _ in range(3):
        ours = median_us(lambda: verify_signature("POST", url, signed, keys, now=now))
        lib = median_us(lambda: verifier.verify(req, require_components=COVERED_COMPONENTS))
        print(f"median per verification: ours {ours:.0f} us, http-message-signatures {lib:.0f} us")


if __name__ == "__main__":
    main()
