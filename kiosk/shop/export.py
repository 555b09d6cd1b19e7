"""``kiosk shop export-batch``: Voucherify codes for the shop's static RE-ZIP pool, so that kiosks
that are offline hand out real Voucherify codes too.

A run publishes ``count`` codes from the campaign, maps each to a RE-ZIP voucher (its link from
``voucher.link_template``), and uploads them to ``[rezip] static_pool_id``: one batch per set of
shared fields (a campaign's codes share them, so normally one), the codes with their links.

A run is idempotent, so an export that failed half-way is simply run again:

- Each run has an id (``--run ID``, or made up: the time and a random part). Code ``i`` of run ``R``
  is published under ``source_id`` ``rezip-export-R-i``; Voucherify answers a repeated
  ``source_id`` with the code it published the first time, so a retried run publishes nothing twice.
- The state file (``[export] state_file``, 0600, replaced atomically) remembers each run: its
  count, its batches at RE-ZIP (written as soon as RE-ZIP made them, so a retry uploads into the
  same batch; RE-ZIP skips the codes a batch already holds) and when it finished. Without ``--run``,
  the newest unfinished run is resumed; once a run has finished, the next export starts a new one.

Voucherify's rate limit is honoured (the export waits out each ``Retry-After``, saying so); a
request that fails otherwise is asked again a few times with a growing pause before the export
gives up, naming the run to resume.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import secrets as random_tokens
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from kiosk.core.voucher import Voucher
from kiosk.secret_files import write_secret_file
from kiosk.shop.config import ShopConfig, ShopSecrets
from kiosk.shop.mapping import MappingError
from kiosk.shop.rezip_api import RezipApiError, RezipShopApi
from kiosk.shop.service import ShopError, read_campaign, voucher_for
from kiosk.shop.voucherify import (
    ApiError,
    NetworkError,
    Published,
    RateLimited,
    ServerError,
    TimedOut,
    VoucherifyClient,
)

__all__ = ["export_batch", "ExportResult", "ExportError", "export_source_id", "MAX_COUNT"]

MAX_COUNT = 100_000
#: The customer exported codes are published to (the webhook's go to ``DEFAULT_CUSTOMER``).
EXPORT_CUSTOMER = "rezip-static-pool"
#: Codes per upload request.
_UPLOAD_CHUNK = 500
_ATTEMPTS = 5
_FIRST_PAUSE_S = 0.5
_VOUCHERIFY_DEADLINE_S = 15.0
_RUN_ID_CHARS = 64


class ExportError(ShopError):
    """The export stopped; the message says why and how to go on. ``exit_code`` 2 for what the
    operator must fix, 1 for what a later retry of the same run may get past."""

    def __init__(self, message: str, *, exit_code: int = 1) -> None:
        super().__init__(message, exit_code=exit_code)


@dataclass
class ExportResult:
    run_id: str
    count: int
    campaign: str
    pool_id: str
    #: RE-ZIP's batches the codes went into.
    batches: list[str] = field(default_factory=list)
    #: Codes RE-ZIP did not hold yet (0 when a finished run is run again).
    added: int = 0
    #: Published codes that cannot be RE-ZIP vouchers (disabled or expired since), not uploaded.
    skipped: int = 0
    #: Whether this run had been started before (and was resumed).
    resumed: bool = False


def export_source_id(run_id: str, index: int) -> str:
    """The ``source_id`` code ``index`` of run ``run_id`` is published under."""
    return f"rezip-export-{run_id}-{index:06d}"


async def export_batch(
    config: ShopConfig,
    secrets: ShopSecrets,
    count: int,
    *,
    run_id: str | None = None,
    progress: Callable[[str], None] = lambda line: None,
    voucherify_transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    clock: Callable[[], float] = time.time,
) -> ExportResult:
    """Publish ``count`` codes and upload them to the static pool (see the module's docstring)."""
    pool_id = config.rezip.static_pool_id
    if not pool_id:
        raise ExportError(
            "rezip.static_pool_id: the shop's static pool is not set, so there is nowhere to export to", exit_code=2
        )
    if not 1 <= count <= MAX_COUNT:
        raise ExportError(f"--count: must be from 1 to {MAX_COUNT}", exit_code=2)
    state = _State(config.export.state_file)
    run_id, resumed = state.begin(run_id, count, clock())
    progress(f"{'resuming' if resumed else 'starting'} export run {run_id}: {count} codes for pool {pool_id}")
    settings = config.voucherify
    try:
        voucherify = VoucherifyClient(
            settings.url,
            settings.app_id,
            secrets.voucherify_app_token,
            connect_timeout_s=5.0,
            read_timeout_s=10.0,
            deadline_s=_VOUCHERIFY_DEADLINE_S,
            transport_factory=voucherify_transport,
        )
    except ValueError as exc:
        raise ExportError(f"voucherify.{exc}", exit_code=2) from None
    rezip = RezipShopApi(
        config.rezip.api_url, config.rezip.shop_id, secrets.rezip_token, auth_scheme=config.rezip.auth_scheme
    )
    try:
        campaign_name = (await read_campaign(voucherify, config)).name
        await _checked_pool(rezip, pool_id)
        published = await _publish_all(voucherify, campaign_name, run_id, count, config.export.concurrency, progress)
        vouchers, skipped = _mapped(published, config, datetime.fromtimestamp(clock(), UTC))
        if skipped:
            progress(f"{skipped} published codes cannot be RE-ZIP vouchers (disabled or expired since): left out")
        result = ExportResult(run_id, count, campaign_name, pool_id, skipped=skipped, resumed=resumed)
        for fields, group in _grouped(vouchers).items():
            batch_id = state.batch(run_id, fields)
            if batch_id is None:
                batch_id = await _retried(functools.partial(rezip.create_batch, pool_id, json.loads(fields)), progress)
                state.record_batch(run_id, fields, batch_id)
            result.batches.append(batch_id)
            result.added += await _upload(rezip, batch_id, group, progress)
        state.finish(run_id, clock())
        return result
    except RezipApiError as exc:
        raise ExportError(
            f"{exc} (run {run_id}; run the export again to resume it)", exit_code=2 if exc.status in (401, 403) else 1
        ) from None
    except ExportError as exc:
        if exc.exit_code != 1:
            raise
        raise ExportError(f"{exc} (run {run_id}; run the export again to resume it)") from None
    finally:
        await voucherify.aclose()
        await rezip.aclose()


async def _checked_pool(rezip: RezipShopApi, pool_id: str) -> None:
    try:
        pool = await rezip.pool(pool_id)
    except RezipApiError as exc:
        if exc.status == 404:
            raise ExportError(
                f"rezip.static_pool_id: RE-ZIP has no pool {pool_id} for this shop", exit_code=2
            ) from None
        raise
    if pool.get("pool_type", "static") != "static":
        raise ExportError(
            f"rezip.static_pool_id: pool {pool_id} is {pool.get('pool_type')}, not static: it takes no codes",
            exit_code=2,
        )


async def _publish_all(
    voucherify: VoucherifyClient,
    campaign: str,
    run_id: str,
    count: int,
    concurrency: int,
    progress: Callable[[str], None],
) -> list[Published]:
    """Every code of the run, in order, with ``concurrency`` publications in flight."""
    results: list[Published | None] = [None] * count
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(count):
        queue.put_nowait(index)
    step = max(1, min(1000, count // 10))
    done = 0

    async def worker() -> None:
        nonlocal done
        while not queue.empty():
            index = queue.get_nowait()
            results[index] = await _publish_one(voucherify, campaign, export_source_id(run_id, index), progress)
            done += 1
            if done % step == 0 or done == count:
                progress(f"published {done} of {count} codes")

    workers = [asyncio.ensure_future(worker()) for _ in range(min(concurrency, count))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return [item for item in results if item is not None]


async def _publish_one(
    voucherify: VoucherifyClient, campaign: str, source_id: str, progress: Callable[[str], None]
) -> Published:
    """One code; a rate limit is waited out however often it comes (it is the plan's pace, not a
    failure), other trouble is asked again ``_ATTEMPTS`` times in all."""
    pause, failures = _FIRST_PAUSE_S, 0
    while True:
        result = await voucherify.publish(campaign, source_id, customer_source_id=EXPORT_CUSTOMER)
        if isinstance(result, Published):
            return result
        if isinstance(result, RateLimited):
            if not result.local:
                progress(f"Voucherify's rate limit: waiting {result.retry_after_s:.0f} s")
            await asyncio.sleep(result.retry_after_s)
            continue
        failures += 1
        if not isinstance(result, (ServerError, NetworkError, TimedOut)) or failures == _ATTEMPTS:
            code = 2 if isinstance(result, ApiError) and result.status in (401, 403) else 1
            raise ExportError(f"Voucherify did not publish a code ({result.log_safe()})", exit_code=code)
        await asyncio.sleep(pause)
        pause *= 2


def _mapped(published: list[Published], config: ShopConfig, now: datetime) -> tuple[list[Voucher], int]:
    vouchers, skipped = [], 0
    for item in published:
        try:
            vouchers.append(voucher_for(config, item.voucher, now))
        except MappingError:
            skipped += 1
    return vouchers, skipped


def _grouped(vouchers: list[Voucher]) -> dict[str, list[Voucher]]:
    """Vouchers by the fields a batch holds (as canonical JSON, the state file's key)."""
    groups: dict[str, list[Voucher]] = {}
    for voucher in vouchers:
        doc = voucher.to_json()
        fields = {name: doc[name] for name in ("type", "value", "unit", "conditions", "expires_at")}
        groups.setdefault(json.dumps(fields, sort_keys=True, ensure_ascii=False), []).append(voucher)
    return groups


async def _upload(rezip: RezipShopApi, batch_id: str, vouchers: list[Voucher], progress: Callable[[str], None]) -> int:
    added = 0
    for start in range(0, len(vouchers), _UPLOAD_CHUNK):
        chunk = [(v.code, v.link) for v in vouchers[start : start + _UPLOAD_CHUNK]]
        added += await _retried(functools.partial(rezip.add_codes, batch_id, chunk), progress)
        progress(f"uploaded {min(start + _UPLOAD_CHUNK, len(vouchers))} of {len(vouchers)} codes to batch {batch_id}")
    return added


async def _retried(call: Callable[[], Any], progress: Callable[[str], None]) -> Any:
    """A RE-ZIP call, asked again after a pause when RE-ZIP could not answer."""
    pause = _FIRST_PAUSE_S
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return await call()
        except RezipApiError as exc:
            if not exc.retry or attempt == _ATTEMPTS:
                raise
            progress(f"{exc}; asking again in {pause:g} s")
            await asyncio.sleep(pause)
            pause *= 2


class _State:
    """The state file: ``{"runs": {id: {count, started_at, batches: {fields: batch_id}, finished_at}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raw = b'{"runs": {}}'
        except OSError as exc:
            raise ExportError(
                f"export.state_file: {path}: cannot read it ({exc.strerror or exc})", exit_code=2
            ) from None
        try:
            doc = json.loads(raw)
            runs = doc["runs"]
            if not isinstance(runs, dict) or not all(isinstance(run, dict) for run in runs.values()):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ExportError(
                f"export.state_file: {path} is not an export state file; move it away to start afresh", exit_code=2
            ) from None
        self.runs: dict[str, dict[str, Any]] = runs

    def begin(self, run_id: str | None, count: int, now: float) -> tuple[str, bool]:
        """The run to do (the one named, else the newest unfinished one, else a new one), and
        whether it had been started before."""
        if run_id is None:
            open_runs = [rid for rid, run in self.runs.items() if not run.get("finished_at")]
            run_id = max(open_runs, key=lambda rid: self.runs[rid].get("started_at", 0), default=None)
            if run_id is not None and self.runs[run_id].get("count") != count:
                raise ExportError(
                    f"run {run_id} of {self.runs[run_id].get('count')} codes is unfinished: resume it with "
                    f"--count {self.runs[run_id].get('count')}, or name a new run with --run",
                    exit_code=2,
                )
        if run_id is None:
            stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S")
            run_id = f"{stamp}-{random_tokens.token_hex(3)}"
        if not (
            0 < len(run_id) <= _RUN_ID_CHARS and all(ch.isascii() and (ch.isalnum() or ch in "._-") for ch in run_id)
        ):
            raise ExportError(f"--run: at most {_RUN_ID_CHARS} letters, digits, . _ or -", exit_code=2)
        run = self.runs.get(run_id)
        if run is not None and run.get("count") != count:
            raise ExportError(
                f"run {run_id} was started with --count {run.get('count')}; give that count to resume it", exit_code=2
            )
        if run is None:
            self.runs[run_id] = {"count": count, "started_at": now, "batches": {}, "finished_at": None}
            self._save()
        return run_id, run is not None

    def batch(self, run_id: str, fields: str) -> str | None:
        batch_id = self.runs[run_id].get("batches", {}).get(fields)
        return batch_id if isinstance(batch_id, str) else None

    def record_batch(self, run_id: str, fields: str, batch_id: str) -> None:
        self.runs[run_id].setdefault("batches", {})[fields] = batch_id
        self._save()

    def finish(self, run_id: str, now: float) -> None:
        self.runs[run_id]["finished_at"] = now
        self._save()

    def _save(self) -> None:
        """Replace the file atomically, 0600 from the first byte."""
        partial = self.path.with_name(self.path.name + ".partial")
        try:
            write_secret_file(partial, json.dumps({"runs": self.runs}, indent=1, ensure_ascii=False).encode("utf-8"))
            os.replace(partial, self.path)
        except OSError as exc:
            raise ExportError(
                f"export.state_file: {self.path}: cannot write it ({exc.strerror or exc})", exit_code=2
            ) from None
