"""The issuance parts as a configuration describes them, for the running kiosk and the CLI alike
(kept apart from ``kiosk.runtime`` so a CLI command does not load the screen and devices)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from kiosk.config import Config
from kiosk.core.offline import OfflineLimits
from kiosk.issuance.offline import OfflineService
from kiosk.issuance.offline_pools_client import OfflinePoolsClient
from kiosk.issuance.offline_store import OfflineStore, utc_now
from kiosk.issuance.rezip_client import RezipClient
from kiosk.logos import LogoCache
from kiosk.logs import never_log
from kiosk.secret_files import read_secret_file

__all__ = ["make_client", "make_offline_service", "standalone_offline_service"]


def make_client(
    config: Config,
    *,
    read_timeout_s: float | None = None,
    on_descriptors_short: Callable[[], object] | None = None,
) -> RezipClient:
    """The RE-ZIP client as the configuration describes it (token file checked: ``SecretFileError``);
    ``read_timeout_s`` raises the read timeout for bulk calls outside the scan path."""
    backend = config.backend
    token = read_secret_file(backend.token_file)
    never_log(token)
    return RezipClient(
        backend.url,
        token,
        drop_point_location_id=backend.drop_point_location_id,
        hardware_id=config.kiosk.hardware_id,
        auth_scheme=backend.auth_scheme,
        connect_timeout_s=backend.connect_timeout_s,
        read_timeout_s=read_timeout_s or backend.read_timeout_s,
        ca_file=backend.ca_file,
        link_schemes=config.link_schemes,
        on_descriptors_short=on_descriptors_short,
    )


def make_offline_service(
    config: Config,
    store: OfflineStore,
    client: RezipClient,
    *,
    logos: LogoCache | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> OfflineService:
    """Offline issuance as the configuration describes it: limits, reservations, schedules; with
    ``logos``, the shops' logos are cached at each top-up for offline vouchers. ``clock``: the wall
    clock the offline limits are checked against."""
    offline = config.offline
    return OfflineService(
        store,
        OfflinePoolsClient(client.http, config.backend.drop_point_location_id, jwks_url=config.jwks_url),
        country=config.kiosk.country,
        limits=OfflineLimits(
            max_issuances=offline.max_issuances,
            max_value=offline.max_value,
            max_offline_age=timedelta(seconds=offline.max_offline_age_s),
            expiry_margin=timedelta(seconds=offline.expiry_margin_s),
        ),
        per_pool=offline.reserve_per_pool,
        watermark=offline.watermark,
        sync_interval_s=offline.sync_interval_s,
        forward_interval_s=offline.forward_interval_s,
        prefetch_logos=logos.prefetch if logos is not None else None,
        clock=clock,
    )


@contextlib.asynccontextmanager
async def standalone_offline_service(config: Config, store: OfflineStore) -> AsyncIterator[OfflineService]:
    """The offline service outside a running kiosk (the CLI, provisioning): a longer read timeout
    for bulk calls, the client closed on the way out; ``SecretFileError`` for the token file."""
    client = make_client(config, read_timeout_s=max(config.backend.read_timeout_s, 10.0))
    try:
        yield make_offline_service(config, store, client)
    finally:
        await client.aclose()
