"""The shop's service: ``shop check``, ``shop webhook`` and ``shop export-batch``."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kiosk.cli.common import Failure, aligned, load_shop, shop_config_arg
from kiosk.secret_files import SecretFileError

if TYPE_CHECKING:
    from kiosk.cli.common import Commands
    from kiosk.shop.config import ShopConfig


__all__ = ["add_commands"]


def add_commands(commands: Commands) -> None:
    """Add this group's commands to the ``kiosk`` parser."""
    shop = commands.add_parser(
        "shop",
        help="the shop's service: RE-ZIP's on-demand webhook, single-use voucher links, Voucherify",
        description="Tools for the service a shop runs on its own server (never on a kiosk): it answers "
        "RE-ZIP's signed on-demand webhook with codes published from a Voucherify campaign. Its "
        "configuration is shop.toml (hardware/shop.example.toml is the annotated reference).",
    )
    shop_actions = shop.add_subparsers(dest="shop_command", required=True, metavar="ACTION")
    shop_check = shop_actions.add_parser(
        "check",
        help="check shop.toml and read its token files",
        description="Load and check the shop's configuration, read its token files (mode 0600), and print "
        "what was found: the webhook URL to give RE-ZIP, a sample voucher link and landing URL, RE-ZIP's and "
        "Voucherify's addresses, the campaign and the voucher settings. Nothing is sent anywhere. Exit 2 "
        "naming the key (or the token file) when something is wrong.",
    )
    shop_config_arg(shop_check)
    shop_check.set_defaults(handler=_shop_check)
    shop_webhook = shop_actions.add_parser(
        "webhook",
        help="serve RE-ZIP's on-demand webhook, the single-use voucher links and the till's redemptions",
        description="Read and check the Voucherify campaign (exit 2 when RE-ZIP cannot show its codes), fetch "
        "RE-ZIP's signing keys, then serve until SIGTERM: POST server.path (RE-ZIP's signed call: one code "
        "published and answered within server.deadline_s, else 503 so RE-ZIP uses the static pool), GET "
        "/redeem?code= (303 to the landing page for a code that validates, else a page in the customer's "
        "language), POST /redemptions (a till's bearer token from server.redemptions_token_file) and GET "
        "/healthz. With server.workers above 1 that many processes serve on the one port under a parent that "
        "restarts one that dies. Prints a ready line on stderr; exits 1 when Voucherify cannot be reached at "
        "start or when the service keeps failing, 2 for a configuration, token or campaign problem.",
    )
    shop_config_arg(shop_webhook)
    shop_webhook.add_argument("--worker-port", type=int, help=argparse.SUPPRESS)  # one of server.workers
    shop_webhook.set_defaults(handler=_shop_webhook)
    shop_export = shop_actions.add_parser(
        "export-batch",
        help="publish codes from the campaign and upload them to the shop's static RE-ZIP pool",
        description="Publish COUNT codes from the Voucherify campaign and upload them, with their single-use "
        "links, as a batch of the static pool rezip.static_pool_id, so that offline kiosks hand out Voucherify "
        "codes too. A run is idempotent: run it again after a failure and it resumes (the same codes, the same "
        "batch). Without --run the unfinished run in export.state_file is resumed, else a new one begins. "
        "Progress goes to stderr, one result line to stdout. Exit 1 when Voucherify or RE-ZIP failed (run it "
        "again), 2 for a configuration, token, campaign or pool problem.",
    )
    shop_config_arg(shop_export)
    shop_export.add_argument("--count", type=int, required=True, metavar="N", help="how many codes (1 to 100000)")
    shop_export.add_argument(
        "--run",
        metavar="ID",
        help="the run to start or resume (letters, digits, . _ -; default: the unfinished run, else a new one)",
    )
    shop_export.set_defaults(handler=_shop_export)


def _shop_check(args: argparse.Namespace) -> int:
    from kiosk.shop.config import REDEEM_PATH, REDEMPTIONS_PATH

    config = load_shop(args.config)
    _shop_secrets(config)
    server, rezip, voucherify, voucher = config.server, config.rezip, config.voucherify, config.voucher
    link = config.link_for("EXAMPLE")
    checked = (
        " (this service's redeem page: each link works once)"
        if link.startswith(config.public_base + REDEEM_PATH + "?")
        else " (not this service's redeem page: nothing here stops a second use)"
    )
    rows = [
        ("webhook", f"{config.webhook_url} (the on-demand pool's webhook_url at RE-ZIP)"),
        (
            "listening",
            f"{server.listen}, answering within {server.deadline_s:g} s"
            + (f", {server.workers} worker processes" if server.workers > 1 else ""),
        ),
        (
            "redemptions",
            f"POST {REDEMPTIONS_PATH} with the token in {server.redemptions_token_file}"
            if server.redemptions_token_file
            else f"POST {REDEMPTIONS_PATH} is off (no redemptions_token_file)",
        ),
        ("link checks", f"at most {server.link_checks_per_minute} a minute"),
        ("voucher link", link + checked),
        ("landing page", config.landing_for("EXAMPLE")),
        ("RE-ZIP", f"shop {rezip.shop_id}, API {rezip.api_url} ({rezip.auth_scheme}), keys {rezip.jwks_url}"),
        ("static pool", rezip.static_pool_id or "none (export-batch is off)"),
        ("export", f"runs remembered in {config.export.state_file}, {config.export.concurrency} publications at once"),
        (
            "signatures",
            f"created within {rezip.signature_window_s:g} s of now; keys fetched again when "
            f"{rezip.jwks_cache_s:g} s old, for a new keyid at most every {rezip.jwks_refetch_interval_s:g} s",
        ),
        ("Voucherify", f"{voucherify.url}, app {voucherify.app_id}, campaign {voucherify.campaign!r}"),
        (
            "voucher",
            f"amounts in {voucher.currency}; conditions: " + (voucher.conditions or "each voucher's additional_info"),
        ),
        (
            "tokens",
            ", ".join(
                str(path)
                for path in (rezip.token_file, voucherify.app_token_file, server.redemptions_token_file)
                if path
            )
            + " read (mode 0600)",
        ),
    ]
    print(f"{args.config}: the configuration is good")
    print("\n".join(aligned(rows, indent="  ")))
    return 0


def _shop_secrets(config: ShopConfig) -> Any:
    try:
        return config.read_secrets()
    except SecretFileError as exc:
        raise Failure(str(exc)) from None


def _shop_webhook(args: argparse.Namespace) -> int:
    from kiosk.shop.service import ShopError, ShopService, settle_heap
    from kiosk.supervisor import Supervisor

    config = load_shop(args.config)
    secrets = _shop_secrets(config)
    host = config.address[0]
    if args.worker_port is not None:  # a worker of kiosk.shop.workers: the parent reads the ready line
        listen = f"[{host}]:{args.worker_port}" if ":" in host else f"{host}:{args.worker_port}"
        config = dataclasses.replace(config, server=dataclasses.replace(config.server, listen=listen))
    elif config.server.workers > 1:
        return _shop_workers(args.config, config)
    ready_stream = sys.stdout if args.worker_port is not None else sys.stderr

    async def serve() -> int:
        service = ShopService(config, secrets)
        try:
            await service.start()
        except ShopError as exc:
            print(f"kiosk: {exc}", file=sys.stderr, flush=True)
            return exc.exit_code
        except OSError as exc:  # the port taken, an address this machine does not have
            raise Failure(f"cannot listen on {config.server.listen}: {exc.strerror or exc}") from None
        settle_heap()
        supervisor = Supervisor()
        try:
            supervisor.start("shop-service-accept", service.serve)
            if args.worker_port is not None:
                supervisor.start("parent watch", _stop_with_the_parent)
            campaign = service.campaign
            assert campaign is not None and service.gate is not None
            keys = (
                "RE-ZIP's keys loaded" if service.gate.keys.loaded else "RE-ZIP's keys not fetched yet (503 until then)"
            )
            line = (
                f"kiosk shop webhook ready: listening on {service.url}, webhook {config.webhook_url}, campaign "
                f"{campaign.name!r} ({campaign.id}), {keys}"
            )
            return await supervisor.serve_until_signalled(line, ready_stream)
        finally:
            await supervisor.stop()
            await service.stop()

    return asyncio.run(serve())


async def _stop_with_the_parent() -> None:
    """A worker's stdin is a pipe its parent (``kiosk.shop.workers``) holds and never writes to: at
    its end the parent is gone, however it went, and the worker stops as on SIGTERM."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    await reader.read()
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.Event().wait()  # stopped with the rest, as the signal stops the worker


def _shop_workers(path: Path, config: ShopConfig) -> int:
    from kiosk.shop.workers import WorkerPool, reserved_port

    host, port = config.address
    try:
        with reserved_port(host, port) as shared:
            command = [sys.executable, "-m", "kiosk.cli", "shop", "webhook", "--config", str(path)]
            pool = WorkerPool([*command, "--worker-port", str(shared)], config.server.workers)
            return asyncio.run(pool.serve())
    except OSError as exc:
        raise Failure(f"cannot listen on {config.server.listen}: {exc.strerror or exc}") from None


def _shop_export(args: argparse.Namespace) -> int:
    from kiosk.shop.export import export_batch
    from kiosk.shop.service import ShopError

    config = load_shop(args.config)
    secrets = _shop_secrets(config)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = asyncio.run(export_batch(config, secrets, args.count, run_id=args.run, progress=progress))
    except ShopError as exc:
        print(f"kiosk: export-batch: {exc}", file=sys.stderr)
        return exc.exit_code
    skipped = f", {result.skipped} left out" if result.skipped else ""
    print(
        f"exported {result.count} codes of campaign {result.campaign!r} to pool {result.pool_id}: "
        f"batch {', '.join(result.batches) or '(none)'}, {result.added} new at RE-ZIP{skipped} "
        f"(run {result.run_id}{', resumed' if result.resumed else ''})"
    )
    return 0
