"""The shop service's configuration, ``shop.toml``, checked key by key as the kiosk's own is.

A shop's technician writes this file once, on the shop's server: where the service listens and how
the world reaches it, which RE-ZIP shop and keys it answers for, which Voucherify campaign it
publishes from, and how the voucher's link and the shop's landing page are built. Every mistake is
one line that names the key (``voucher.currency: ...``); ``kiosk shop check`` shows what was read.
The two secrets (RE-ZIP's API token and Voucherify's app token) live in files of their own, mode
0600, and are read only when asked for (``read_secrets``). ``hardware/shop.example.toml`` is the
annotated reference.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from kiosk.core.currencies import ACTIVE
from kiosk.core.urls import url_problem
from kiosk.core.voucher import MAX_LINK_BYTES
from kiosk.secret_files import read_secret_file
from kiosk.toml_schema import (
    DAY,
    ConfigError,
    build_document,
    check_identifier,
    check_listen,
    check_url,
    path_field,
    read_toml,
    shown,
    split_listen,
    within,
)

__all__ = [
    "ShopConfig",
    "ShopSecrets",
    "ConfigError",
    "load_shop_config",
    "parse_shop_config",
    "fill_template",
    "DEFAULT_SHOP_CONFIG_PATH",
    "REDEEM_PATH",
    "HEALTH_PATH",
    "REDEMPTIONS_PATH",
]

DEFAULT_SHOP_CONFIG_PATH = Path("/etc/kiosk/shop.toml")
#: The service's own routes besides the webhook; ``server.path`` may be none of them.
REDEEM_PATH = "/redeem"
HEALTH_PATH = "/healthz"
REDEMPTIONS_PATH = "/redemptions"
#: The placeholders a link or landing template may hold; ``{code}`` is required in both.
_PLACEHOLDERS = ("public_url", "code")
#: The longest voucher code the kiosk shows (kiosk/core/voucher.py); links are checked with it.
_LONGEST_CODE = "C" * 64
#: Voucherify calls in flight at once, all workers together; more wait their turn. Voucherify
#: answers a burst no faster over more connections, and each one more is a connection kept open.
VOUCHERIFY_IN_FLIGHT = 16
_PATH = re.compile(r"(/[A-Za-z0-9._~\-]+)+")


@dataclass(frozen=True)
class ServerSection:
    #: How RE-ZIP and customers reach this service (the shop's TLS proxy in front of it): https,
    #: plain http only on a loopback host. A path here is the proxy's prefix.
    public_url: str
    #: Where the service binds: an IP literal (or localhost) and a port.
    listen: str = "127.0.0.1:8090"
    #: The webhook's path; RE-ZIP is given ``public_url + path`` as the pool's webhook_url.
    path: str = "/rezip/voucher"
    #: The webhook answers within this many seconds (a 503 once they are spent), so RE-ZIP still
    #: has time to fall back to the shop's static pool before its own timeout.
    deadline_s: float = field(default=1.2, metadata=within(0.1, 30))
    #: The token a checkout or till sends (``Authorization: Bearer``) to ``POST /redemptions``, alone
    #: in a 0600 file; none: that endpoint is off.
    redemptions_token_file: Path | None = field(default=None, metadata=path_field())
    #: ``GET /redeem`` asks Voucherify at most this often a minute (anyone may open a link), so a
    #: flood of link checks cannot use up the plan's request limit that the webhook needs.
    link_checks_per_minute: int = field(default=50, metadata=within(1, 100_000))
    #: Processes that serve, sharing the port (``SO_REUSEPORT``; ``kiosk.shop.workers``): one per
    #: core the shop's server can give. The link checks' ration and the Voucherify calls in flight
    #: are shared out among them, so there are at most as many workers as either.
    workers: int = field(default=1, metadata=within(1, VOUCHERIFY_IN_FLIGHT))


@dataclass(frozen=True)
class RezipSection:
    #: The shop's id at RE-ZIP.
    shop_id: str
    #: RE-ZIP's API token for this shop (for uploading static batches), alone in a 0600 file.
    token_file: Path = field(metadata=path_field())
    #: Where RE-ZIP publishes the keys its webhook calls are signed with.
    jwks_url: str = "https://webhook.re-zip.com/.well-known/jwks.json"
    api_url: str = "https://api.re-zip.com"
    auth_scheme: Literal["Bearer", "Pat"] = "Bearer"
    #: The shop's static pool that ``kiosk shop export-batch`` fills; empty: no exports.
    static_pool_id: str = ""
    #: A signed call whose ``created`` is further than this from now is refused (replays).
    signature_window_s: float = field(default=300.0, metadata=within(10, 3600))
    #: RE-ZIP's keys are fetched again at most this often, however many unknown keyids arrive.
    jwks_refetch_interval_s: float = field(default=30.0, metadata=within(1, DAY))
    #: Keys older than this are fetched again before use, so a withdrawn key stops counting.
    jwks_cache_s: float = field(default=3600.0, metadata=within(60, 7 * DAY))


@dataclass(frozen=True)
class VoucherifySection:
    app_id: str
    #: Voucherify's application token, alone in a 0600 file.
    app_token_file: Path = field(metadata=path_field())
    #: The campaign codes are published from: its id (camp_...) or its name.
    campaign: str
    #: The account's cluster: https://api.voucherify.io, https://us1.api.voucherify.io, ...
    url: str = "https://api.voucherify.io"


@dataclass(frozen=True)
class VoucherSection:
    #: The currency of the campaign's amounts (Voucherify's amount_off has none of its own).
    currency: str
    #: Where the customer lands with the code applied: an https URL holding {code}.
    landing_url: str
    #: Shown on the voucher as they are; empty: each voucher's additional_info.
    conditions: str = ""
    #: The voucher's single-use link (its QR code): {public_url} and {code}.
    link_template: str = "{public_url}/redeem?code={code}"


@dataclass(frozen=True)
class ExportSection:
    """``kiosk shop export-batch``: where its runs are remembered, and how many codes it publishes
    at once."""

    #: The unfinished run (its id, count and batches), so a retried export resumes it; 0600.
    state_file: Path = field(default=Path("/var/lib/kiosk-shop/export-batch.json"), metadata=path_field())
    #: Publications in flight at once (each still one request; Voucherify's rate limit is honoured).
    concurrency: int = field(default=8, metadata=within(1, 64))


@dataclass(frozen=True)
class ShopConfig:
    server: ServerSection
    rezip: RezipSection
    voucherify: VoucherifySection
    voucher: VoucherSection
    export: ExportSection = field(default_factory=ExportSection)
    #: Where the file was read from; relative paths in it are resolved against its folder.
    source: Path | None = None

    @property
    def address(self) -> tuple[str, int]:
        return split_listen(self.server.listen)

    @property
    def public_base(self) -> str:
        """``server.public_url`` without a trailing slash: what every public URL starts with."""
        return self.server.public_url.rstrip("/")

    @property
    def webhook_url(self) -> str:
        """The URL RE-ZIP calls, and so the ``@target-uri`` its signature covers."""
        return self.public_base + self.server.path

    def link_for(self, code: str) -> str:
        """The voucher's link for ``code``, as the webhook answers it."""
        return fill_template(self.voucher.link_template, public_url=self.public_base, code=code)

    def landing_for(self, code: str) -> str:
        """Where a good link redirects the customer."""
        return fill_template(self.voucher.landing_url, public_url=self.public_base, code=code)

    def read_secrets(self) -> ShopSecrets:
        """The tokens, each from its 0600 file; ``SecretFileError`` names the file, never the content."""
        till = self.server.redemptions_token_file
        return ShopSecrets(
            read_secret_file(self.rezip.token_file),
            read_secret_file(self.voucherify.app_token_file),
            read_secret_file(till) if till is not None else None,
        )


@dataclass(frozen=True)
class ShopSecrets:
    """The tokens, kept out of every ``repr`` (and so out of tracebacks and logs)."""

    rezip_token: str = field(repr=False)
    voucherify_app_token: str = field(repr=False)
    #: None when ``server.redemptions_token_file`` is not set (``POST /redemptions`` is off).
    redemptions_token: str | None = field(default=None, repr=False)


def fill_template(template: str, *, public_url: str, code: str) -> str:
    """``template`` with ``{public_url}`` put in as it is and ``{code}`` percent-encoded."""
    return template.format(public_url=public_url, code=quote(code, safe=""))


def load_shop_config(path: Path) -> ShopConfig:
    """Read and check the file; every failure is a ``ConfigError`` naming the key."""
    return parse_shop_config(read_toml(path), base=path.parent, source=path)


def parse_shop_config(doc: dict[str, Any], *, base: Path, source: Path | None = None) -> ShopConfig:
    """Build a ``ShopConfig`` from a parsed TOML document."""
    return build_document(ShopConfig, doc, base=base, check=_check_meaning, source=source)


def _check_meaning(config: ShopConfig) -> None:
    """Checks that span more than a type: addresses, URLs, identifiers, templates."""
    server, rezip, voucherify, voucher = config.server, config.rezip, config.voucherify, config.voucher
    check_url("server.public_url", server.public_url)
    if _has_query_or_fragment(server.public_url):
        raise ConfigError("server.public_url: must not hold a query or a fragment (the service's paths follow it)")
    check_listen("server.listen", server.listen, example="127.0.0.1:8090")
    if len(server.path) > 200 or not _PATH.fullmatch(server.path):
        raise ConfigError(
            f"server.path: must be a path such as /rezip/voucher (letters, digits, . _ ~ -), not {shown(server.path)}"
        )
    if server.path in (REDEEM_PATH, HEALTH_PATH, REDEMPTIONS_PATH):
        raise ConfigError(f"server.path: {server.path} is one of the service's own paths; choose another")
    if server.workers > server.link_checks_per_minute:
        raise ConfigError(
            f"server.workers: {server.workers} workers cannot share out {server.link_checks_per_minute} link checks "
            "a minute (server.link_checks_per_minute; one each at least)"
        )
    check_identifier("rezip.shop_id", rezip.shop_id)
    if rezip.static_pool_id:
        check_identifier("rezip.static_pool_id", rezip.static_pool_id)
    check_url("rezip.jwks_url", rezip.jwks_url)
    check_url("rezip.api_url", rezip.api_url)
    check_identifier("voucherify.app_id", voucherify.app_id)
    if not voucherify.campaign.strip():
        raise ConfigError("voucherify.campaign: required (the campaign's id, camp_..., or its name)")
    check_url("voucherify.url", voucherify.url)
    if urlsplit(voucherify.url).path not in ("", "/") or _has_query_or_fragment(voucherify.url):
        raise ConfigError("voucherify.url: must be the cluster's address alone, such as https://api.voucherify.io")
    if voucher.currency not in ACTIVE:
        raise ConfigError(
            f"voucher.currency: must be an ISO 4217 code in use, such as DKK or EUR, not {shown(voucher.currency)}"
        )
    _check_template("voucher.link_template", voucher.link_template, config)
    if len(config.link_for(_LONGEST_CODE).encode("utf-8")) > MAX_LINK_BYTES:
        raise ConfigError(
            f"voucher.link_template: a link with a 64-character code must fit the {MAX_LINK_BYTES} "
            "bytes a voucher's QR code holds; shorten it"
        )
    _check_template("voucher.landing_url", voucher.landing_url, config)


def _check_template(key: str, template: str, config: ShopConfig) -> None:
    """A URL template with only the allowed placeholders, ``{code}`` among them, that fills to an
    https URL whose host does not depend on the code."""
    try:
        fields = [
            (name, spec, conversion)
            for _, name, spec, conversion in string.Formatter().parse(template)
            if name is not None
        ]
    except ValueError:
        raise ConfigError(f"{key}: has a {{ or }} that opens or closes no placeholder (write {{{{ or }}}})") from None
    for name, spec, conversion in fields:
        if name not in _PLACEHOLDERS or spec or conversion:
            raise ConfigError(f"{key}: may hold only the placeholders {{public_url}} and {{code}}, not {{{name}}}")
    if "code" not in {name for name, _, _ in fields}:
        raise ConfigError(f"{key}: must hold {{code}}, where the voucher's code goes")
    filled = [fill_template(template, public_url=config.public_base, code=code) for code in ("A", _LONGEST_CODE)]
    problem = url_problem(filled[0])
    if problem is not None:
        raise ConfigError(f"{key}: filled in, {problem}")
    if len({urlsplit(url)[:2] for url in filled}) != 1:
        raise ConfigError(f"{key}: {{code}} must come after the host, not in it")


def _has_query_or_fragment(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.query or parts.fragment or url.endswith(("?", "#")))
