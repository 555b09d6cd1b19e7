"""Validating Voucherify traffic against the official OpenAPI description (patched copy in
tests/data/voucherify-openapi/, see its PATCHES.md) with openapi-core.

``SpecCheckingTransport`` sits under our client's httpx interface, on the client's own wire: every request it sends is
validated before it goes out, every answer the stand-in gives before the client sees it. A mismatch
is recorded in ``problems`` (and the test that made the call asserts there are none)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from kiosk.http_answers import tls_context
from kiosk.shop.aiohttp_transport import AiohttpTransport

SPEC_FOLDER = Path(__file__).resolve().parent / "data" / "voucherify-openapi"
#: What the spec's server is; our stand-in listens on loopback instead.
SPEC_HOST = "https://api.voucherify.io"
#: The wire the Voucherify client uses when no transport is given, so the checked traffic is the real one.
WIRE = {"ssl_context": tls_context(None), "max_connections": 64, "keepalive_expiry_s": 60.0}
_FILES = ("publications", "vouchers", "validations", "redemptions", "campaigns")


@cache
def specs() -> dict[str, OpenAPI]:
    return {name: OpenAPI.from_dict(json.loads((SPEC_FOLDER / f"{name}.json").read_text("utf-8"))) for name in _FILES}


def spec_for(path: str) -> OpenAPI:
    """The file that describes ``path`` (by its first segments, as the files split the API)."""
    if path.startswith("/v1/publications"):
        return specs()["publications"]
    if path.startswith("/v1/validations"):
        return specs()["validations"]
    if path.startswith("/v1/redemptions"):
        return specs()["redemptions"]
    if path.startswith("/v1/campaigns"):
        return specs()["campaigns"]
    return specs()["vouchers"]


@dataclass
class SpecRequest:
    """An httpx request as openapi-core reads one."""

    method: str
    path: str
    body: bytes | None
    content_type: str
    parameters: RequestParameters
    host_url: str = SPEC_HOST

    @classmethod
    def of(cls, request: httpx.Request) -> SpecRequest:
        query = ImmutableMultiDict(parse_qsl(request.url.query.decode("ascii"), keep_blank_values=True))
        return cls(
            method=request.method.lower(),
            path=request.url.raw_path.decode("ascii").split("?", 1)[0],
            body=request.content or None,
            content_type=request.headers.get("content-type", "application/json"),
            parameters=RequestParameters(query=query, header=Headers(list(request.headers.items())), cookie={}),
        )


@dataclass
class SpecResponse:
    status_code: int
    data: bytes
    content_type: str
    headers: Headers


@dataclass
class SpecCheckingTransport(httpx.AsyncBaseTransport):
    """A real transport whose traffic is validated; see the module's docstring."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    _inner: httpx.AsyncBaseTransport = field(default_factory=lambda: AiohttpTransport(**WIRE))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        spec_request = SpecRequest.of(request)
        spec = spec_for(spec_request.path)
        label = f"{request.method} {spec_request.path}"
        try:
            spec.validate_request(spec_request)
        except Exception as exc:  # openapi-core reports a mismatch as one of several exception kinds
            self.problems.append(f"request {label}: {_explain(exc)}")
        response = await self._inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        answer = SpecResponse(
            response.status_code,
            body,
            response.headers.get("content-type", ""),
            Headers(list(response.headers.items())),
        )
        try:
            spec.validate_response(spec_request, answer)
        except Exception as exc:
            self.problems.append(f"answer {response.status_code} to {label}: {_explain(exc)}")
        self.checked.append(f"{label} -> {response.status_code}")
        return httpx.Response(response.status_code, headers=response.headers, content=body)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _explain(exc: BaseException) -> str:
    """The innermost reasons openapi-core gives (its schema errors nest)."""
    reasons: list[str] = []
    seen: Any = exc
    while seen is not None:
        for error in getattr(seen, "schema_errors", ()) or ():
            reasons.append(_schema_error(error))
        seen = seen.__cause__ or seen.__context__
    return " | ".join(reasons or [f"{type(exc).__name__}: {exc}"])[:4000]


def _schema_error(error: Any) -> str:
    path = "/".join(str(part) for part in getattr(error, "absolute_path", ()))
    message = str(getattr(error, "message", error))
    text = f"{path}: {message if len(message) < 200 else message[:80] + ' ... ' + message[-100:]}"
    context = getattr(error, "context", None) or []
    if context:
        text += " [" + "; ".join(_schema_error(inner) for inner in context[:6]) + "]"
    return text
