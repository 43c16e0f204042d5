"""The `vellum` command line.

vellum serve [--host H] [--port P]   serve the HTTP API (see README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Sequence

import msgspec
import structlog

from service import __version__
from service.app import STORAGE_DESCRIPTION, create_app
from service.config import Config
from service.errors import ConfigError, VellumError
from service.logging import configure_logging
from service.web.server import serve

log = structlog.get_logger("vellum")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vellum", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vellum {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the HTTP API")
    serve_parser.add_argument("--host", help="address to bind (VELLUM_HOST)")
    serve_parser.add_argument("--port", type=int, help="port to bind (VELLUM_PORT)")
    serve_parser.add_argument(
        "--allow-public-without-keys",
        action="store_true",
        default=None,
        help="bind a non-loopback address although no API keys are configured",
    )
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
        overrides = {
            name: value
            for name in ("host", "port", "allow_public_without_keys")
            if (value := getattr(args, name)) is not None
        }
        config = msgspec.structs.replace(config, **overrides)
        config.check()
        configure_logging(config.log_format, config.log_level)
        return _serve(config)
    except VellumError as exc:
        print(f"vellum: {exc.detail}", file=sys.stderr)
        return 2


def _serve(config: Config) -> int:
    if not _is_loopback(config.host) and not config.allow_public_without_keys:
        raise ConfigError(
            f"refusing to bind {config.host}: no API keys are configured, so only a "
            "loopback address is allowed. Pass --allow-public-without-keys (or set "
            "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS=1) to serve it unauthenticated anyway."
        )
    app = create_app(config)

    def announce(url: str) -> None:
        print(f"Vellum {__version__} listening on {url}", flush=True)
        print(f"Storage: {app[STORAGE_DESCRIPTION]}", flush=True)
        if _is_loopback(config.host):
            print("No API keys configured: serving on loopback only.", flush=True)
        log.info("listening", url=url, storage=app[STORAGE_DESCRIPTION])

    asyncio.run(serve(app, config, on_ready=announce))
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
