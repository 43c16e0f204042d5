"""The `vellum` command line.

vellum serve [--host H] [--port P]              serve the HTTP API (see README.md)
vellum import FILE|s3://bucket/key [--shard i/N] [--url URL]
                                                bulk-import NDJSON, with a progress bar
vellum get ID [--original] [--version N]        print a record (or the original bytes)
vellum export --bagit DIR (--all | ID...)       write each document as a BagIt bag
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import sys
from collections.abc import Sequence
from pathlib import Path

import msgspec
import structlog

from service import __version__
from service import commands as commands_local
from service.app import STORAGE_DESCRIPTION, create_app
from service.config import Config
from service.errors import ConfigError, VellumError
from service.jobs.model import Shard
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
    import_parser = commands.add_parser(
        "import", help="bulk-import an NDJSON file (one JSON document per line)"
    )
    import_parser.add_argument("source", help="a local file, or s3://bucket/key in the archive")
    import_parser.add_argument(
        "--shard", type=_shard, help="take only shard i of N (lines i+1, i+1+N, ...)"
    )
    import_parser.add_argument(
        "--url", help="submit to a running server (e.g. http://127.0.0.1:8080) instead"
    )
    get_parser = commands.add_parser("get", help="print a document's record")
    get_parser.add_argument("id")
    get_parser.add_argument("--original", action="store_true", help="the original bytes")
    get_parser.add_argument("--version", type=int, help="a record version (default: latest)")
    commands.add_parser("verify", help="re-hash every original and record, report problems")
    reprocess_parser = commands.add_parser(
        "reprocess", help="write new record versions with the current normalizer"
    )
    reprocess_parser.add_argument("ids", nargs="*", help="document ids")
    reprocess_parser.add_argument("--all", action="store_true", help="every document")
    export_parser = commands.add_parser("export", help="write each document as a BagIt bag")
    export_parser.add_argument("--bagit", required=True, metavar="DIR", help="bags go here")
    export_parser.add_argument("ids", nargs="*", help="document ids")
    export_parser.add_argument("--all", action="store_true", help="every document")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
        overrides = {
            name: value
            for name in ("host", "port", "allow_public_without_keys")
            if (value := getattr(args, name, None)) is not None
        }
        config = msgspec.structs.replace(config, **overrides)
        config.check()
        if args.command == "serve":
            configure_logging(config.log_format, config.log_level)
            return _serve(config)
        configure_logging(config.log_format, "warning")  # the command's output is the point
        if args.command == "import":
            return asyncio.run(commands_local.run_import(config, args.source, args.shard, args.url))
        if args.command == "verify":
            return asyncio.run(commands_local.run_verify(config))
        if args.command == "reprocess":
            return asyncio.run(commands_local.run_reprocess(config, args.ids, args.all))
        if args.command == "export":
            return asyncio.run(
                commands_local.run_export(config, Path(args.bagit), args.ids, args.all)
            )
        return asyncio.run(commands_local.run_get(config, args.id, args.version, args.original))
    except VellumError as exc:
        print(f"vellum: {exc.detail}", file=sys.stderr)
        return 2


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


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
