"""``kiosk shop webhook``: the service a shop runs so that every RE-ZIP return yields a Voucherify code.

Routes (``server.path`` is configurable, the rest are fixed):

- ``POST {server.path}``: RE-ZIP's on-demand call. Only a delivery RE-ZIP signed counts
  (``SignatureGate``; RE-ZIP's keys are fetched when the service starts), with ``Webhook-Version: 1``
  and the body ``{"voucher_pool_id": ...}`` as JSON. One code is published from the campaign and
  answered as the seed's voucher fields, its link from ``voucher.link_template``. All of it within
  ``server.deadline_s``: once they are spent, or when Voucherify cannot publish (slow, down, rate
  limited), the answer is a 503, so RE-ZIP falls back to the shop's static pool before its own
  timeout.
- ``GET /redeem?code=...``: the voucher's single-use link. Voucherify validates the code: valid and
  unused → ``303`` to ``voucher.landing_url`` with the code; used, withdrawn, expired or unknown →
  the customer's page in their language (``kiosk.shop.pages``), no redirect; Voucherify cannot be
  asked → the "try again later" page. Redemption stays the checkout's job.
- ``POST /redemptions``: for a checkout or till that wants the bridge to redeem, authenticated by a
  bearer token from a 0600 file (``server.redemptions_token_file``); a second redemption of a
  single-use code is a ``409`` ``{"error": "already_redeemed"}``.
- ``GET /healthz``: JSON, 200 while Voucherify answers and RE-ZIP's keys are loaded, else 503.

Where the brief left the choice to us:

- **The same delivery, the same code.** A publication's ``source_id`` is derived from the delivery's
  verified signature (``Accepted.delivery``: a hash of the key id and the ECDSA signature, taken
  over ``(r, min(s, n - s))``). ECDSA signatures are randomised, so two deliveries never share one;
  a delivery sent again as it was (RE-ZIP's retry, or a proxy's) repeats it, and Voucherify answers
  the same ``source_id`` with the same code. A header of its own (a delivery id) would not do: the
  signature does not cover it, so whoever replays a captured delivery within the window could vary
  it and mint a code each time; keyed on the signature, a replay only gets the code it already had,
  and outside the window the gate refuses it. Concurrent copies of one delivery share one call.
- **Link checks are rationed.** Anyone may open a link, and each check is a Voucherify request:
  at most ``server.link_checks_per_minute`` a minute are made (a token bucket); past that the
  customer gets "try again later" without a request, so a flood of link checks cannot use up the
  plan's per-minute limit that the webhook needs.
- **Which validation failures stop the redirect.** Only ``quantity_exceeded`` (used),
  ``voucher_disabled`` and ``voucher_not_active`` (withdrawn, not valid), ``voucher_expired`` and
  ``not_found``. A code that fails a rule about the order or the customer (a minimum amount, say)
  still goes to the checkout, which has the order and decides.
- Refusals are one line (JSON ``{"error", "message"}``, or text for a request HTTP cannot parse),
  counted by kind and logged once per kind and minute (``Complaints``); nothing a client sent is
  logged, and codes and links appear only as fingerprints.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
from aiohttp import hdrs, web

from kiosk.core.voucher import LOOPBACK_HTTP, Voucher
from kiosk.devices.screen.complaints import Complaints
from kiosk.devices.screen.connections import HEAD_TIMEOUT_S, GuardedSite, add_routes, read_json_body
from kiosk.devices.screen.page_requests import Refused as BadRequest
from kiosk.devices.screen.page_requests import check_body_size, check_json_type
from kiosk.logs import fingerprint, never_log
from kiosk.shop.config import HEALTH_PATH, REDEEM_PATH, REDEMPTIONS_PATH, VOUCHERIFY_IN_FLIGHT, ShopConfig, ShopSecrets
from kiosk.shop.mapping import MappingError, campaign_problem, rezip_voucher
from kiosk.shop.pages import PageOutcome, redeem_page
from kiosk.shop.signed_requests import Accepted, SignatureGate
from kiosk.shop.voucherify import (
    ApiError,
    Failure,
    Published,
    RateLimited,
    Redemption,
    Validation,
    VoucherifyClient,
)
from kiosk.shop.voucherify_model import Campaign, VoucherifyVoucher

__all__ = [
    "ShopService",
    "ShopError",
    "read_campaign",
    "voucher_for",
    "source_id_for",
    "settle_heap",
    "LINK_SCHEMES",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

#: The links the service answers may be https, or plain http to this machine (the demo, the tests:
#: the configuration allows nothing else for ``public_url`` and the templates).
LINK_SCHEMES = frozenset({"https", LOOPBACK_HTTP})
#: Codes are at most 64 printable ASCII characters (RE-ZIP's voucher model); a link holding anything
#: else names no code anyone was given, and Voucherify is not asked about it.
_MAX_CODE_CHARS = 64
#: What the last Voucherify call showed counts this long for ``/healthz``; only when there was no
#: call for that long does a health check ask Voucherify itself (at most two requests a minute).
_HEALTH_CACHE_S = 30.0
_JWKS_TIMEOUT_S = 2.0
#: New objects between two collections of the youngest generation, once a process serves (``settle_heap``).
_YOUNG_OBJECTS = 5000
_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}
#: What a link check's failure means for the customer's page.
_PAGE_FOR_KEY: dict[str, PageOutcome] = {
    "quantity_exceeded": "already_redeemed",
    "voucher_disabled": "disabled",
    "voucher_not_active": "disabled",
    "voucher_expired": "expired",
    "not_found": "unknown",
    "resource_not_found": "unknown",
}
#: What a refused redemption answers the till: status, error, message.
_REDEMPTION_REFUSALS: dict[str, tuple[int, str, str]] = {
    "quantity_exceeded": (409, "already_redeemed", "this voucher has already been used"),
    "voucher_disabled": (409, "disabled", "the shop has withdrawn this voucher"),
    "voucher_not_active": (409, "not_active", "this voucher is not valid yet"),
    "voucher_expired": (409, "expired", "this voucher has expired"),
    "not_found": (404, "unknown", "there is no voucher with this code"),
    "resource_not_found": (404, "unknown", "there is no voucher with this code"),
}


class ShopError(Exception):
    """A shop command cannot go on; the message is one line for the operator. ``exit_code`` 2 for
    what the operator must fix (configuration, credentials, the campaign), 1 for what may pass
    (Voucherify unreachable: systemd starts the service again, a retried export resumes)."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def read_campaign(voucherify: VoucherifyClient, config: ShopConfig) -> Campaign:
    """The configured campaign, checked: ``ShopError`` when it cannot be read or when RE-ZIP
    cannot express its codes (``campaign_problem``), so that is said when a command starts."""
    name = config.voucherify.campaign
    campaign = await voucherify.get_campaign(name)
    if isinstance(campaign, ApiError) and campaign.status in (401, 403):
        raise ShopError(
            f"voucherify: Voucherify refused the app id or token (HTTP {campaign.status}); "
            "check voucherify.app_id and voucherify.app_token_file"
        )
    if isinstance(campaign, ApiError) and campaign.status == 404:
        raise ShopError(f"voucherify.campaign: Voucherify has no campaign {name!r}")
    if isinstance(campaign, Failure):
        raise ShopError(
            f"cannot read the campaign: Voucherify at {config.voucherify.url} did not answer as it "
            f"should ({campaign.log_safe()})",
            exit_code=1,
        )
    problem = campaign_problem(campaign, config.voucher.currency)
    if problem is not None:
        raise ShopError(f"voucherify.campaign: {campaign.name!r} cannot become RE-ZIP vouchers: {problem}")
    return campaign


def voucher_for(config: ShopConfig, voucher: VoucherifyVoucher, now: datetime) -> Voucher:
    """The RE-ZIP voucher for a published code: the configured currency and conditions, the link
    from ``voucher.link_template``; ``MappingError`` when it has none (disabled, expired, ...)."""
    return rezip_voucher(
        voucher,
        currency=config.voucher.currency,
        link=config.link_for(voucher.code),
        conditions=config.voucher.conditions or None,
        now=now,
        link_schemes=LINK_SCHEMES,
    )


def source_id_for(accepted: Accepted) -> str:
    """The publication's ``source_id`` for a delivery (see the module's docstring)."""
    if len(accepted.delivery) < 40:  # every delivery would share one source_id, and so one code
        raise ValueError("an accepted delivery without its identity")
    return "rezip-delivery-" + accepted.delivery[:40]


class _Ration:
    """A token bucket: ``per_minute`` at most, refilled evenly."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = float(per_minute)
        self.rate_s = per_minute / 60.0
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate_s)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@dataclass
class _Health:
    at: float
    reachable: bool
    detail: str

    @classmethod
    def of(cls, answer: object) -> _Health:
        """What a Voucherify call's result says about Voucherify: an answer, even a refusal, means
        it is there; no answer, a 5xx, a 429 or our credentials refused mean it is not usable."""
        if not isinstance(answer, Failure):
            return cls(time.monotonic(), True, "answering")
        usable = isinstance(answer, ApiError) and answer.status not in (401, 403)
        return cls(time.monotonic(), usable, "answering" if usable else answer.log_safe())


class ShopService:
    """The running service; ``start``, then ``serve`` under a supervisor, then ``stop``."""

    def __init__(
        self,
        config: ShopConfig,
        secrets: ShopSecrets,
        *,
        clock: Callable[[], float] = time.time,
        voucherify_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
        max_connections: int | None = None,
        client_timeout_s: float = HEAD_TIMEOUT_S,
    ) -> None:
        """``clock`` is the wall clock for signatures and expiries (tests set it);
        ``voucherify_transport`` replaces the network under the Voucherify client (the tests
        validate every request against the spec)."""
        self.config = config
        self.secrets = secrets
        self._clock = clock
        self._voucherify_transport = voucherify_transport
        self._max_connections = max_connections
        self._client_timeout_s = client_timeout_s
        self.campaign: Campaign | None = None
        self.port = config.address[1]
        self.voucherify: VoucherifyClient | None = None
        self.gate: SignatureGate | None = None
        self._http: httpx.AsyncClient | None = None
        self._site: GuardedSite | None = None
        self._complaints: Complaints | None = None
        self._inflight: dict[str, asyncio.Future[Published | Failure]] = {}
        workers = config.server.workers  # each worker takes its part, at least one (the configuration's rule)
        self._link_checks = _Ration(max(1, config.server.link_checks_per_minute // workers))
        self._health: _Health | None = None
        self._voucherify_slots = asyncio.Semaphore(max(1, VOUCHERIFY_IN_FLIGHT // workers))
        for token in (secrets.rezip_token, secrets.voucherify_app_token, secrets.redemptions_token):
            if token:
                never_log(token)

    @property
    def url(self) -> str:
        """Where this service listens (not its public URL)."""
        host = self.config.address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    @property
    def refused(self) -> dict[str, int]:
        """What the service refused since it started, by kind."""
        return dict(self._complaints.counts) if self._complaints else {}

    # --- life -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read and check the campaign, fetch RE-ZIP's keys, then listen. ``ShopError`` when the
        campaign cannot be read or cannot become RE-ZIP vouchers."""
        settings = self.config.voucherify
        try:
            self.voucherify = VoucherifyClient(
                settings.url,
                settings.app_id,
                self.secrets.voucherify_app_token,
                transport_factory=self._voucherify_transport,
            )
        except ValueError as exc:
            raise ShopError(f"voucherify.{exc}") from None
        self._http = httpx.AsyncClient(timeout=_JWKS_TIMEOUT_S, follow_redirects=False, trust_env=False)
        self.gate = SignatureGate.for_config(self.config, self._http, clock=self._clock)
        try:
            self.campaign = await read_campaign(self.voucherify, self.config)
            await self.gate.keys.current()  # a failure is logged; deliveries get 503 until the keys come
            await self._listen()
        except BaseException:
            await self.stop()
            raise

    async def serve(self) -> None:
        """Keep the accept loops running, under a supervisor (``ConnectionGuard.keep_accepting``):
        a listener that keeps failing makes the process give up."""
        assert self._site is not None
        await self._site.serve()

    async def stop(self) -> None:
        if self._site is not None:
            await self._site.close()
        if self._complaints is not None:
            self._complaints.flush()
        for task in list(self._inflight.values()):
            task.cancel()
        if self.voucherify is not None:
            await self.voucherify.aclose()
        if self._http is not None:
            await self._http.aclose()

    async def _listen(self) -> None:
        self._complaints = complaints = Complaints(log)
        app = web.Application(middlewares=[self._refusals], client_max_size=1024)
        add_routes(
            app,
            [
                ("POST", self.config.server.path, self._webhook),
                ("GET", REDEEM_PATH, self._redeem),
                ("POST", REDEMPTIONS_PATH, self._redemptions),
                ("GET", HEALTH_PATH, self._healthz),
            ],
        )

        def malformed(status: int) -> web.StreamResponse:
            return self._refusal(status, "http", "not a well-formed HTTP request")

        host, port = self.config.address
        self._site = await GuardedSite.listen(
            app,
            malformed,
            complaints,
            host,
            port,
            shared=self.config.server.workers > 1,
            cap=self._max_connections,
            head_timeout_s=self._client_timeout_s,
            who="shop service",
            access_log=None,
        )
        self.port = self._site.port

    # --- every request ----------------------------------------------------------------------------

    @web.middleware
    async def _refusals(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        assert self._site is not None
        with self._site.guard.serving(request.transport):
            try:
                return await handler(request)
            except BadRequest as refused:
                return self._refusal(refused.status, "request", refused.reason)
            except web.HTTPException as http:  # aiohttp's own 404 and 405: one line too
                if http.status >= 400:
                    return self._refusal(http.status, "route", http.reason.lower())
                raise

    def _refusal(
        self, status: int, kind: str, message: str, *, headers: dict[str, str] | None = None, error: str | None = None
    ) -> web.Response:
        """A one-line JSON refusal, counted (and logged once a minute) by its kind; ``message`` is
        fixed text, never the client's."""
        assert self._complaints is not None
        self._complaints.note(f"shop service refused ({status}, {kind}): {message}")
        response = web.json_response(
            {"error": error or kind, "message": message}, status=status, headers={**_HEADERS, **(headers or {})}
        )
        if status < 500:
            response.force_close()  # nothing more from a client that was refused
        return response

    async def _json_object(self, request: web.Request) -> dict[str, Any]:
        check_json_type(request.headers.getall(hdrs.CONTENT_TYPE, []))
        check_body_size(request.content_length)
        return await read_json_body(request, timeout_s=self._client_timeout_s)

    # --- the webhook ------------------------------------------------------------------------------

    async def _webhook(self, request: web.Request) -> web.StreamResponse:
        try:
            async with asyncio.timeout(self.config.server.deadline_s):
                return await self._deliver(request)
        except TimeoutError:
            return self._refusal(
                503, "webhook", "no voucher within the deadline: the shop's static pool answers", error="unavailable"
            )

    async def _deliver(self, request: web.Request) -> web.StreamResponse:
        assert self.gate is not None and self.voucherify is not None and self.campaign is not None
        accepted = await self.gate.check(request.method, request.raw_path, request.headers.items())
        if not isinstance(accepted, Accepted):
            return self._refusal(
                accepted.status, "signature", f"the delivery was refused ({accepted.reason})", error=accepted.reason
            )
        pool_id = (await self._json_object(request)).get("voucher_pool_id")
        if not (isinstance(pool_id, str) and 0 < len(pool_id) <= 128 and pool_id.isascii() and pool_id.isprintable()):
            return self._refusal(400, "body", 'must be {"voucher_pool_id": "<the pool\'s id>"}', error="body")
        published = await self._publish_once(source_id_for(accepted), pool_id)
        if isinstance(published, Failure):
            return self._voucherify_failed(published)
        code = published.voucher.code
        try:
            voucher = voucher_for(self.config, published.voucher, self._now())
        except MappingError as exc:
            log.warning(
                "webhook: code %s cannot be a RE-ZIP voucher (%s)",
                fingerprint(code),
                str(exc).replace(code, fingerprint(code)),
            )
            return self._refusal(503, "webhook", "the published code cannot be a RE-ZIP voucher", error="unavailable")
        if log.isEnabledFor(logging.INFO):  # not a fingerprint for every delivery when nobody reads it
            log.info(
                "webhook: voucher %s for pool %s%s",
                fingerprint(code),
                pool_id,
                " (a delivery sent again: the same code)" if published.recovered else "",
            )
        return web.json_response(voucher.to_json(), headers=_HEADERS)

    async def _publish_once(self, source_id: str, pool_id: str) -> Published | Failure:
        """One publication per delivery: a copy that arrives while the first is still being
        published waits for the same answer (and the call goes on if the deadline cuts a waiter)."""
        assert self.voucherify is not None and self.campaign is not None
        task = self._inflight.get(source_id)
        if task is None:
            task = asyncio.ensure_future(
                self._noted(
                    self.voucherify.publish(self.campaign.name, source_id, metadata={"rezip_voucher_pool_id": pool_id})
                )
            )
            self._inflight[source_id] = task
            task.add_done_callback(lambda _: self._inflight.pop(source_id, None))
        return await asyncio.shield(task)

    def _voucherify_failed(self, failure: Failure) -> web.Response:
        """A 503 (RE-ZIP then uses the shop's static pool); credentials Voucherify refuses are an
        error for the operator, the rest a warning."""
        kind = type(failure).__name__ + (f" {failure.key}" if isinstance(failure, ApiError) and failure.key else "")
        if isinstance(failure, ApiError) and failure.status in (401, 403):
            log.error("webhook: Voucherify refused the app id or token (HTTP %d)", failure.status)
        headers = (
            {"Retry-After": str(max(1, round(failure.retry_after_s)))} if isinstance(failure, RateLimited) else None
        )
        return self._refusal(
            503,
            "voucherify",
            f"Voucherify could not publish a code ({kind}): the shop's static pool answers",
            headers=headers,
            error="unavailable",
        )

    # --- the single-use link ------------------------------------------------------------------------

    async def _redeem(self, request: web.Request) -> web.StreamResponse:
        assert self.voucherify is not None
        codes = request.query.getall("code", [])
        language = request.headers.get(hdrs.ACCEPT_LANGUAGE)
        code = codes[0] if len(codes) == 1 else ""
        if not (0 < len(code) <= _MAX_CODE_CHARS and code.isascii() and code.isprintable() and " " not in code):
            return _page("unknown", code, language)
        if not self._link_checks.take():
            assert self._complaints is not None
            self._complaints.note("shop service: link checks rationed (Voucherify was not asked)")
            return _page("unavailable", code, language)
        checked = await self._noted(self.voucherify.validate(code))
        if isinstance(checked, ApiError) and checked.status == 404:
            return _page("unknown", code, language)
        if isinstance(checked, Failure):
            log.warning("redeem: Voucherify could not check a code (%s)", type(checked).__name__)
            return _page("unavailable", code, language)
        outcome = _link_outcome(checked)
        if outcome is not None:
            return _page(outcome, code, language)
        raise web.HTTPSeeOther(self.config.landing_for(code), headers=_HEADERS)

    # --- redemptions for a till ---------------------------------------------------------------------

    async def _redemptions(self, request: web.Request) -> web.StreamResponse:
        assert self.voucherify is not None
        expected = self.secrets.redemptions_token
        if expected is None:
            return self._refusal(
                404,
                "redemptions",
                "this service does not redeem (no server.redemptions_token_file)",
                error="not_enabled",
            )
        given = request.headers.getall(hdrs.AUTHORIZATION, [])
        scheme, _, token = (given[0] if len(given) == 1 else "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode("utf-8", "surrogateescape"), expected.encode("ascii")
        ):
            return self._refusal(
                401,
                "redemptions",
                "a till's bearer token is required",
                error="unauthorized",
                headers={"WWW-Authenticate": 'Bearer realm="redemptions"'},
            )
        body = await self._json_object(request)
        code, amount, customer = body.get("code"), body.get("order_amount"), body.get("customer_source_id")
        if not (isinstance(code, str) and 0 < len(code) <= _MAX_CODE_CHARS and code.isascii() and code.isprintable()):
            return self._refusal(400, "body", "code: the voucher code is required", error="body")
        if amount is not None and (type(amount) is not int or not 0 <= amount <= 10**12):
            return self._refusal(400, "body", "order_amount: a whole number of hundredths", error="body")
        if customer is not None and not (
            isinstance(customer, str) and 0 < len(customer) <= 200 and customer.isprintable()
        ):
            return self._refusal(400, "body", "customer_source_id: text of at most 200 characters", error="body")
        result = await self._noted(
            self.voucherify.redeem(
                code, order_amount=amount, customer_source_id=customer, metadata={"channel": "rezip-shop-service"}
            )
        )
        if isinstance(result, Redemption):
            log.info("redemptions: voucher %s redeemed", fingerprint(code))
            return web.json_response(
                {"redeemed": True, "code": code, "redemption_id": result.id, "result": result.result}, headers=_HEADERS
            )
        if isinstance(result, ApiError) and result.key in _REDEMPTION_REFUSALS:
            status, error, message = _REDEMPTION_REFUSALS[result.key]
            return self._refusal(status, "redemption", message, error=error)
        if isinstance(result, ApiError) and result.status not in (401, 403):
            return self._refusal(422, "redemption", "Voucherify refused the redemption", error=result.key or "refused")
        return self._voucherify_failed(result)

    # --- health ---------------------------------------------------------------------------------------

    async def _healthz(self, request: web.Request) -> web.StreamResponse:
        assert self.gate is not None and self.campaign is not None
        health = await self._voucherify_health()
        if not self.gate.keys.loaded:
            await self.gate.keys.current()  # rate limited by the keys' own refetch interval
        keys = self.gate.keys.loaded
        doc = {
            "status": "ok" if health.reachable and keys else "degraded",
            "voucherify": {"reachable": health.reachable, "detail": health.detail, "url": self.config.voucherify.url},
            "rezip_keys": {"loaded": keys, "jwks_url": self.config.rezip.jwks_url},
            "campaign": {"id": self.campaign.id, "name": self.campaign.name},
            "webhook_url": self.config.webhook_url,
            "refused": self.refused,
        }
        return web.json_response(doc, status=200 if doc["status"] == "ok" else 503, headers=_HEADERS)

    async def _voucherify_health(self) -> _Health:
        assert self.voucherify is not None and self.campaign is not None
        if self._health is None or time.monotonic() - self._health.at >= _HEALTH_CACHE_S:
            await self._noted(self.voucherify.get_campaign(self.campaign.id))
        assert self._health is not None
        return self._health

    async def _noted(self, call: Awaitable[_T]) -> _T:
        """A Voucherify call (in its turn: ``VOUCHERIFY_IN_FLIGHT``) whose result is also what
        ``/healthz`` says about Voucherify."""
        async with self._voucherify_slots:
            result = await call
        self._health = _Health.of(result)
        return result

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def settle_heap() -> None:
    """Once a service process is up. What it made while starting (modules, configuration, the
    campaign, RE-ZIP's keys) lives as long as the process, so it leaves the cyclic collector's
    generations (``gc.freeze``); and the youngest generation is collected after 5,000 new objects
    rather than 700. A delivery's objects are freed by reference counting as its answer goes, so
    the collector finds next to nothing either way; before, it walked the start-up objects in
    every full collection and the in-flight deliveries' objects about once every 7 deliveries. In
    scripts/bench/shop.py (one worker, 1,000 deliveries in bursts of 200) its time on the event
    loop every delivery waits for went from 78 ms (one full collection of 38 ms) to 21 ms, each
    pause at most about 4 ms. What is made later is collected as before."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(_YOUNG_OBJECTS, *gc.get_threshold()[1:])


def _link_outcome(checked: Validation) -> PageOutcome | None:
    """The page for a link whose code does not validate, or None to send the customer on."""
    if checked.valid or checked.error is None:
        return None
    return _PAGE_FOR_KEY.get(checked.error.key or "")


def _page(outcome: PageOutcome, code: str, accept_language: str | None) -> web.Response:
    page = redeem_page(outcome, code, accept_language)
    return web.Response(status=page.status, body=page.body, headers=page.headers)
