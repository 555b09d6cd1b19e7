"""An async Voucherify client for the shop side: publish, read, validate, redeem, roll back, disable.

Every call ends in a typed result, never an exception: the endpoint's own result on success, else
one of the ``Failure`` kinds (``ApiError`` for Voucherify's ``{code, key, message, details,
request_id}`` answers, ``RateLimited``, ``ServerError``, ``NetworkError``, ``TimedOut``,
``InvalidAnswer``). What it keeps to:

- Auth by ``X-App-Id`` and ``X-App-Token``; the token is registered with ``kiosk.logs.never_log``
  and nothing here logs a request, a code or an answer.
- The base URL names the cluster (``https://api.voucherify.io``, ``https://us1.api.voucherify.io``,
  ...): https only, plain http only to this machine (``kiosk.core.urls.url_problem``). TLS 1.2 or
  newer, verified; redirects are not followed.
- Connect and read timeouts per request and an overall deadline per call (a publication that has
  to recover its code takes three requests, all within one deadline); answers over
  ``MAX_BODY_BYTES`` are refused (``kiosk.http_answers.read_limited``).
- A ``429`` is honoured: until its ``Retry-After`` has passed, every call answers ``RateLimited``
  without asking, so a burst cannot deepen the lockout.
- ``publish`` sends ``campaign: {name, count: 1}`` with a ``source_id``: Voucherify answers a repeat
  with the same code, or with ``duplicate_source_id``, after which the code is found again by
  listing the publications with that ``source_id`` (``GET /v1/publications?source_id=``).

We do not use the official SDK (``voucherify`` on PyPI): it is generated code on synchronous
urllib3 (a thread per call in an asyncio service), raises exceptions for every error answer, has no
overall deadline, no answer-size limit and no ``Retry-After`` handling, and its pydantic models
enforce the spec's defects (its publication model refuses the ``channel`` values Voucherify's own
examples answer).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

import httpx

from kiosk import __version__
from kiosk.core.text import clean_text
from kiosk.core.urls import url_problem
from kiosk.http_answers import MAX_BODY_BYTES, BodyTooLarge, json_or_none, read_limited, retry_after_s, tls_context
from kiosk.logs import never_log
from kiosk.shop.aiohttp_transport import AiohttpTransport
from kiosk.shop.voucherify_model import (
    AnswerError,
    Campaign,
    ErrorDetail,
    VoucherifyVoucher,
    parse_campaign_doc,
    parse_error,
    parse_voucher_doc,
)

__all__ = [
    "VoucherifyClient",
    "DEFAULT_CUSTOMER",
    "Published",
    "Validation",
    "Redemption",
    "Rollback",
    "Failure",
    "ApiError",
    "RateLimited",
    "ServerError",
    "NetworkError",
    "TimedOut",
    "InvalidAnswer",
    "MAX_BODY_BYTES",
]

#: The customer a publication is made out to when the caller names none: RE-ZIP tells the shop
#: nothing about the person who returned the packaging.
DEFAULT_CUSTOMER = "rezip-drop-point"
_HEADER_VALUE = re.compile(r"[!-~]{1,4096}")
_T = TypeVar("_T")
_PUBLICATIONS, _VALIDATIONS, _REDEMPTIONS = "/v1/publications", "/v1/validations", "/v1/redemptions"
#: The endpoints' paths that name no voucher or redemption (the same URL for every call).
_FIXED_PATHS = (_PUBLICATIONS, _VALIDATIONS, _REDEMPTIONS)


# --- results ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Published:
    """A code handed out by a publication; ``recovered`` when it was found again after
    ``duplicate_source_id`` (a retried delivery)."""

    voucher: VoucherifyVoucher
    publication_id: str
    source_id: str
    recovered: bool = False


@dataclass(frozen=True)
class Validation:
    """Whether a code would redeem now; ``error`` says why not (``voucher_expired``, ...)."""

    valid: bool
    validation_id: str | None
    error: ErrorDetail | None = None


@dataclass(frozen=True)
class Redemption:
    """One redemption of one code; ``parent_id`` is set when Voucherify made it a stacked one."""

    id: str
    code: str
    result: str
    parent_id: str | None = None
    voucher: VoucherifyVoucher | None = None


@dataclass(frozen=True)
class Rollback:
    id: str
    redemption_id: str | None
    result: str


@dataclass(frozen=True)
class Failure:
    """Any call that did not succeed. ``log_safe`` names it without quoting anything that may
    hold a code."""

    def log_safe(self) -> str:
        return type(self).__name__


@dataclass(frozen=True)
class ApiError(Failure):
    """A 4xx answer other than 429: Voucherify refused (``error.key`` says why: ``not_found``,
    ``quantity_exceeded``, ``duplicate_source_id``; 401 is a wrong app id or token)."""

    status: int
    error: ErrorDetail

    @property
    def key(self) -> str | None:
        return self.error.key

    def log_safe(self) -> str:
        return f"ApiError {self.status} ({self.error.log_safe()})"


@dataclass(frozen=True)
class RateLimited(Failure):
    """Voucherify's per-minute limit: no call is made for ``retry_after_s`` (``local`` when this
    client refused without asking, because an earlier 429 still holds)."""

    retry_after_s: float
    error: ErrorDetail | None = None
    local: bool = False

    def log_safe(self) -> str:
        return f"RateLimited for {self.retry_after_s:.0f} s"


@dataclass(frozen=True)
class ServerError(Failure):
    status: int
    error: ErrorDetail | None = None

    def log_safe(self) -> str:
        return f"ServerError {self.status}"


@dataclass(frozen=True)
class NetworkError(Failure):
    """No answer: refused, reset, DNS or TLS failure (``reason`` names the kind)."""

    reason: str

    def log_safe(self) -> str:
        return f"NetworkError ({self.reason})"


@dataclass(frozen=True)
class TimedOut(Failure):
    """A connect or read timeout, or the call's overall deadline."""

    reason: str

    def log_safe(self) -> str:
        return f"TimedOut ({self.reason})"


@dataclass(frozen=True)
class InvalidAnswer(Failure):
    """An answer that is not what the endpoint answers: not JSON, too large, a missing field, an
    unexpected status."""

    reason: str

    def log_safe(self) -> str:
        return "InvalidAnswer"


PublishResult = Published | Failure
VoucherResult = VoucherifyVoucher | Failure


# --- the client --------------------------------------------------------------------------------------


class VoucherifyClient:
    """One per service, shared by its concurrent calls; ``aclose`` when done."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        app_token: str,
        *,
        connect_timeout_s: float = 1.0,
        read_timeout_s: float = 2.0,
        deadline_s: float = 3.0,
        ca_file: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        transport_factory: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        """``ValueError`` for a base URL or credentials that cannot work (never quoting the token).
        ``transport_factory`` replaces the network (tests check every request against the spec)."""
        problem = url_problem(base_url)
        parts = urlsplit(base_url) if problem is None else None
        if problem is None and parts is not None and (parts.path.strip("/") or parts.query or parts.fragment):
            problem = "must be the cluster's base URL alone, such as https://api.voucherify.io"
        if problem:
            raise ValueError(f"url: {problem}")
        if not _HEADER_VALUE.fullmatch(app_id):
            raise ValueError("app_id: must be printable ASCII without spaces")
        if not _HEADER_VALUE.fullmatch(app_token):
            raise ValueError("app_token: must be printable ASCII without spaces")
        never_log(app_token)
        for name, seconds in (
            ("connect_timeout_s", connect_timeout_s),
            ("read_timeout_s", read_timeout_s),
            ("deadline_s", deadline_s),
        ):
            if not 0 < seconds < 3600:
                raise ValueError(f"{name}: must be a positive number of seconds")
        self._deadline_s = deadline_s
        self._clock = clock
        self._blocked_until = float("-inf")
        self._base_url = base_url.rstrip("/")
        # Parsed and checked once, not per request (about 20 us each on the service's event loop):
        # the headers, and the URLs of the paths that name no code.
        headers = {
            "Accept": "application/json",
            "X-App-Id": app_id,
            "X-App-Token": app_token,
            "User-Agent": f"rezip-shop/{__version__}",
        }
        self._headers = httpx.Headers(headers)
        self._json_headers = httpx.Headers({**headers, "Content-Type": "application/json"})
        self._fixed_urls = {path: httpx.URL(self._base_url + path) for path in _FIXED_PATHS}
        self._timeouts = {
            "connect": connect_timeout_s,
            "read": read_timeout_s,
            "write": read_timeout_s,
            "pool": read_timeout_s,
        }
        # httpx's transport interface without its client: the client's layer (redirects, which are
        # never followed here, cookies, which the API does not take, auth, URL merging) cost more CPU
        # per request than the wire under it, and a 3xx or a Set-Cookie simply has no effect.
        self._transport = (
            transport_factory()
            if transport_factory is not None
            else AiohttpTransport(ssl_context=tls_context(ca_file), max_connections=64, keepalive_expiry_s=60.0)
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    # --- endpoints ------------------------------------------------------------------------------

    async def publish(
        self,
        campaign: str,
        source_id: str,
        *,
        customer_source_id: str = DEFAULT_CUSTOMER,
        metadata: Mapping[str, Any] | None = None,
    ) -> PublishResult:
        """One code of the campaign named ``campaign``, published under ``source_id``: asking again
        with the same ``source_id`` (a retried delivery) gives the same code."""
        return await self._bounded(self._publish(campaign, source_id, customer_source_id, metadata))

    async def find_publication(self, source_id: str, *, campaign: str | None = None) -> PublishResult:
        """The code published under ``source_id`` (in ``campaign``, when given); ``ApiError`` 404
        ``not_found`` when there is none."""
        return await self._bounded(self._find_publication(source_id, campaign))

    async def get_voucher(self, code: str) -> VoucherResult:
        return await self._bounded(self._get_voucher(code))

    async def validate(
        self, code: str, *, customer_source_id: str | None = None, order_amount: int | None = None
    ) -> Validation | Failure:
        """Would ``code`` redeem now (``POST /v1/validations``)? ``order_amount`` in hundredths."""
        return await self._bounded(self._validate(code, customer_source_id, order_amount))

    async def redeem(
        self,
        code: str,
        *,
        customer_source_id: str | None = None,
        order_amount: int | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Redemption | Failure:
        """Redeem ``code`` once (``POST /v1/redemptions`` with ``redeemables``); a code used up
        answers ``ApiError`` with key ``quantity_exceeded``."""
        return await self._bounded(self._redeem(code, customer_source_id, order_amount, metadata))

    async def rollback(self, redemption: Redemption | str, *, reason: str | None = None) -> Rollback | Failure:
        """Undo a redemption (by its result, or its id); a stacked one through its parent."""
        return await self._bounded(self._rollback(redemption, reason))

    async def disable(self, code: str) -> VoucherResult:
        """Switch a code off (``active: false``): it no longer validates or redeems."""
        return await self._bounded(self._voucher_call("POST", f"/v1/vouchers/{_segment(code)}/disable"))

    async def get_campaign(self, id_or_name: str) -> Campaign | Failure:
        """A campaign by its Voucherify id or its name (the path takes either)."""
        return await self._bounded(self._get_campaign(id_or_name))

    # --- the calls behind them ------------------------------------------------------------------

    async def _publish(
        self, campaign: str, source_id: str, customer: str, metadata: Mapping[str, Any] | None
    ) -> PublishResult:
        body: dict[str, Any] = {
            "campaign": {"name": campaign, "count": 1},
            "source_id": source_id,
            "customer": {"source_id": customer},
        }
        if metadata:
            body["metadata"] = dict(metadata)
        answer = await self._request("POST", _PUBLICATIONS, body=body)
        if isinstance(answer, ApiError) and answer.key == "duplicate_source_id":
            found = await self._find_publication(source_id, campaign)
            return answer if isinstance(found, ApiError) and found.status == 404 else found
        if isinstance(answer, Failure):
            return answer
        publication_id = answer.get("id")
        if not isinstance(publication_id, str):
            return InvalidAnswer("publication.id: is required and must be text")
        if answer.get("voucher") is not None:
            voucher = _parsed(parse_voucher_doc, answer["voucher"])
        else:
            codes = answer.get("vouchers")
            if not (isinstance(codes, list) and len(codes) == 1 and isinstance(codes[0], str) and codes[0]):
                return InvalidAnswer("publication: holds neither a voucher nor one voucher code")
            voucher = await self._get_voucher(codes[0])
        if isinstance(voucher, Failure):
            return voucher
        return Published(voucher, publication_id, source_id)

    async def _find_publication(self, source_id: str, campaign: str | None) -> PublishResult:
        answer = await self._request("GET", _PUBLICATIONS, params={"source_id": source_id})
        if isinstance(answer, Failure):
            return answer
        items = answer.get("publications")
        if not isinstance(items, list):
            return InvalidAnswer("publications: must be a list")
        for item in items:
            if not isinstance(item, Mapping) or item.get("result", "SUCCESS") != "SUCCESS":
                continue
            if item.get("source_id") != source_id or not isinstance(item.get("id"), str):
                continue
            voucher = item.get("voucher")
            code = voucher.get("code") if isinstance(voucher, Mapping) else None
            if not isinstance(code, str) or not code:
                continue
            if campaign is not None and voucher.get("campaign") not in (None, campaign):  # type: ignore[union-attr]
                continue
            full = await self._get_voucher(code)
            if isinstance(full, Failure):
                return full
            return Published(full, item["id"], source_id, recovered=True)
        return ApiError(404, ErrorDetail(code=404, key="not_found", message="no publication with this source_id"))

    async def _get_voucher(self, code: str) -> VoucherResult:
        return await self._voucher_call("GET", f"/v1/vouchers/{_segment(code)}")

    async def _voucher_call(self, method: str, path: str) -> VoucherResult:
        answer = await self._request(method, path)
        return answer if isinstance(answer, Failure) else _parsed(parse_voucher_doc, answer)

    async def _get_campaign(self, id_or_name: str) -> Campaign | Failure:
        answer = await self._request("GET", f"/v1/campaigns/{_segment(id_or_name)}")
        return answer if isinstance(answer, Failure) else _parsed(parse_campaign_doc, answer)

    async def _validate(self, code: str, customer: str | None, amount: int | None) -> Validation | Failure:
        answer = await self._request("POST", _VALIDATIONS, body=_redeem_body(code, customer, amount, None))
        if isinstance(answer, Failure):
            return answer
        valid = answer.get("valid")
        if not isinstance(valid, bool):
            return InvalidAnswer("validation.valid: must be true or false")
        validation_id = answer.get("id") if isinstance(answer.get("id"), str) else None
        return Validation(valid, validation_id, None if valid else _inapplicable_reason(answer))

    async def _redeem(
        self, code: str, customer: str | None, amount: int | None, metadata: Mapping[str, Any] | None
    ) -> Redemption | Failure:
        answer = await self._request("POST", _REDEMPTIONS, body=_redeem_body(code, customer, amount, metadata))
        if isinstance(answer, Failure):
            return answer
        redemptions = answer.get("redemptions")
        if not (isinstance(redemptions, list) and redemptions and isinstance(redemptions[0], Mapping)):
            return InvalidAnswer("redemptions: must list the redemption")
        first = redemptions[0]
        redemption_id, result = first.get("id"), first.get("result")
        if not isinstance(redemption_id, str) or not isinstance(result, str):
            return InvalidAnswer("redemptions[0]: id and result are required")
        parent = answer.get("parent_redemption")
        parent_id = parent.get("id") if isinstance(parent, Mapping) and isinstance(parent.get("id"), str) else None
        voucher = None
        if first.get("voucher") is not None:
            parsed = _parsed(parse_voucher_doc, first["voucher"])
            if isinstance(parsed, Failure):
                return parsed
            voucher = parsed
        return Redemption(redemption_id, code, result, parent_id, voucher)

    async def _rollback(self, redemption: Redemption | str, reason: str | None) -> Rollback | Failure:
        params = {"reason": reason} if reason else None
        if isinstance(redemption, Redemption) and redemption.parent_id is not None:
            path = f"/v1/redemptions/{_segment(redemption.parent_id)}/rollbacks"
        else:
            redemption_id = redemption.id if isinstance(redemption, Redemption) else redemption
            path = f"/v1/redemptions/{_segment(redemption_id)}/rollback"
        answer = await self._request("POST", path, params=params, body={})
        if isinstance(answer, Failure):
            return answer
        parent_rollback = answer.get("parent_rollback")
        doc = parent_rollback if isinstance(parent_rollback, Mapping) else answer
        rollback_id, result = doc.get("id"), doc.get("result")
        if not isinstance(rollback_id, str) or not isinstance(result, str):
            return InvalidAnswer("rollback: id and result are required")
        redeemed = doc.get("redemption")
        return Rollback(rollback_id, redeemed if isinstance(redeemed, str) else None, result)

    # --- transport ------------------------------------------------------------------------------

    async def _bounded(self, work: Awaitable[_T]) -> _T | Failure:
        """``work`` within the call's overall deadline."""
        try:
            async with asyncio.timeout(self._deadline_s):
                return await work
        except TimeoutError:
            return TimedOut(f"no answer within the deadline of {self._deadline_s:g} s")

    async def _request(
        self, method: str, path: str, *, body: Any = None, params: Mapping[str, str] | None = None
    ) -> Mapping[str, Any] | Failure:
        """One request; its JSON object on a 2xx answer, else the failure."""
        wait = self._blocked_until - self._clock()
        if wait > 0:
            return RateLimited(wait, local=True)
        url = self._fixed_urls.get(path) if not params else None
        request = httpx.Request(
            method,
            url or self._base_url + path + (f"?{urlencode(params, quote_via=quote, safe='')}" if params else ""),
            headers=self._headers if body is None else self._json_headers,
            content=None
            if body is None
            else json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(),
            extensions={"timeout": self._timeouts},
        )
        try:
            response = await self._transport.handle_async_request(request)
            try:
                raw = await read_limited(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            return TimedOut(type(exc).__name__)
        except httpx.TransportError as exc:
            return NetworkError(type(exc).__name__)
        except httpx.HTTPError as exc:  # a body whose content encoding does not decode, a bad header
            return InvalidAnswer(f"{type(exc).__name__}")
        except BodyTooLarge:
            return InvalidAnswer(f"answer larger than {MAX_BODY_BYTES} bytes")
        return self._interpret(response, raw)

    def _interpret(self, response: httpx.Response, raw: bytes) -> Mapping[str, Any] | Failure:
        status = response.status_code
        doc = json_or_none(raw)
        if status >= 400:
            reason = clean_text(response.reason_phrase[:100], multiline=False) or f"HTTP {status}"
            error = parse_error(doc, status, reason)
            if status == 429:
                retry_s = retry_after_s(response.headers.get("Retry-After"))
                self._blocked_until = max(self._blocked_until, self._clock() + retry_s)
                return RateLimited(retry_s, error)
            return ServerError(status, error) if status >= 500 else ApiError(status, error)
        if not 200 <= status < 300:
            return InvalidAnswer(f"unexpected HTTP {status}")
        if not isinstance(doc, dict):
            return InvalidAnswer("answer is not a JSON object")
        return doc


def _parsed(parse: Callable[[Any], _T], doc: Any) -> _T | Failure:
    try:
        return parse(doc)
    except AnswerError as exc:
        return InvalidAnswer(str(exc))


def _segment(text: str) -> str:
    """``text`` as one path segment: a code such as ``A/B`` or ``..`` cannot change the path."""
    return quote(text, safe="") if text not in (".", "..") else quote(text, safe="").replace(".", "%2E")


def _redeem_body(
    code: str, customer: str | None, amount: int | None, metadata: Mapping[str, Any] | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"redeemables": [{"object": "voucher", "id": code}]}
    if customer is not None:
        body["customer"] = {"source_id": customer}
    if amount is not None:
        body["order"] = {"amount": amount}
    if metadata:
        body["metadata"] = dict(metadata)
    return body


def _inapplicable_reason(answer: Mapping[str, Any]) -> ErrorDetail | None:
    """Why a validation failed: the first inapplicable redeemable's error (newer answers list them
    in ``inapplicable_redeemables``, older ones among ``redeemables``)."""
    for name in ("inapplicable_redeemables", "redeemables"):
        items = answer.get(name)
        for item in items if isinstance(items, list) else ():
            if isinstance(item, Mapping) and item.get("status", "INAPPLICABLE") == "INAPPLICABLE":
                result = item.get("result")
                error = result.get("error") if isinstance(result, Mapping) else None
                if isinstance(error, Mapping):
                    return parse_error(error, 400, "inapplicable")
    return None
