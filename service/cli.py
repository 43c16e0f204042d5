"""The `vellum` command line.

vellum serve [--host H] [--port P] [--workers N] serve the HTTP API (see README.md)
vellum import FILE|s3://bucket/key [--shard i/N] [--url URL]
                                                bulk-import NDJSON, with a progress bar
vellum get ID [--original] [--version N]        print a record (or the original bytes)
vellum export --bagit DIR (--all | ID...)       write each document as a BagIt bag
vellum keys create --scope S [--scope S...] [--keys-file PATH]
                                                add an API key; print it (once)
vellum keys list [--keys-file PATH]             key ids, scopes and dates (never secrets)
vellum keys revoke ID [--keys-file PATH]        remove a key (servers notice within 1 s)
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import socket
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
from service.keys import SCOPES, Scope, create_key, load_keys, revoke_key
from service.logging import configure_logging
from service.memory import limit_malloc_arenas
from service.web.auth import KEYS_FILE
from service.web.server import serve
from service.web.workers import run_workers

log = structlog.get_logger("vellum")


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread starts
    parser = argparse.ArgumentParser(prog="vellum", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vellum {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="serve the HTTP API")
    serve_parser.add_argument("--host", help="address to bind (VELLUM_HOST)")
    serve_parser.add_argument("--port", type=int, help="port to bind (VELLUM_PORT)")
    serve_parser.add_argument(
        "--workers", type=int, help="server processes sharing the port (VELLUM_WORKERS)"
    )
    # A worker of `serve --workers N`: the inherited listening socket and ready pipe.
    serve_parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve_parser.add_argument("--ready-fd", type=int, help=argparse.SUPPRESS)
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
    keys_parser = commands.add_parser("keys", help="create and list API keys")
    keys_commands = keys_parser.add_subparsers(dest="keys_command", required=True)
    create_parser = keys_commands.add_parser("create", help="add a key; print it once")
    create_parser.add_argument("--scope", action="append", choices=SCOPES, required=True)
    list_parser = keys_commands.add_parser("list", help="key ids, scopes, creation dates")
    revoke_parser = keys_commands.add_parser(
        "revoke", help="remove a key; running servers stop taking it within a second"
    )
    revoke_parser.add_argument("key_id", metavar="ID", help="the key's id (`keys list`)")
    for keys_command in (create_parser, list_parser, revoke_parser):
        keys_command.add_argument("--keys-file", type=Path, help="(VELLUM_KEYS_FILE)")
    args = parser.parse_args(argv)
    try:
        config = Config.from_env()
        overrides = {
            name: value
            for name in ("host", "port", "workers", "allow_public_without_keys", "keys_file")
            if (value := getattr(args, name, None)) is not None
        }
        config = msgspec.structs.replace(config, **overrides)
        config.check()
        if args.command == "serve":
            configure_logging(config.log_format, config.log_level)
            if args.listen_fd is not None:
                return _serve_worker(config, args.listen_fd, args.ready_fd)
            return _serve(config)
        configure_logging(config.log_format, "warning")  # the command's output is the point
        if args.command == "keys":
            return _keys(
                config,
                args.keys_command,
                args.scope if "scope" in args else [],
                args.key_id if "key_id" in args else None,
            )
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


def check_bind(config: Config) -> None:
    """Without API keys only loopback may be bound, unless explicitly allowed."""
    public = not _is_loopback(config.host)
    if public and config.keys_file is None and not config.allow_public_without_keys:
        raise ConfigError(
            f"refusing to bind {config.host}: no API keys are configured, so only a "
            "loopback address is allowed. Set VELLUM_KEYS_FILE (see `vellum keys "
            "create`), or pass --allow-public-without-keys (or set "
            "VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS=1) to serve it unauthenticated anyway."
        )


def _serve(config: Config) -> int:
    check_bind(config)
    if config.workers > 1:
        # Read here too, so a bad keys file stops start-up before any worker starts.
        keys = len(load_keys(config.keys_file)) if config.keys_file is not None else None

        def announce_workers(url: str, storage: str) -> None:
            _announce(config, url, storage, keys)

        return asyncio.run(run_workers(config, on_ready=announce_workers))
    app = create_app(config)
    keys = len(app[KEYS_FILE].keyring()) if KEYS_FILE in app else None

    def announce(url: str) -> None:
        _announce(config, url, app[STORAGE_DESCRIPTION], keys)

    asyncio.run(serve(app, config, on_ready=announce))
    return 0


def _serve_worker(config: Config, listen_fd: int, ready_fd: int) -> int:
    """One worker of `serve --workers N`: serve the inherited socket; say when ready."""
    app = create_app(config)

    def ready(url: str) -> None:
        log.info("listening", url=url, storage=app[STORAGE_DESCRIPTION], worker_pid=os.getpid())
        os.write(ready_fd, b"+")
        os.close(ready_fd)

    asyncio.run(serve(app, config, on_ready=ready, sock=socket.socket(fileno=listen_fd)))
    return 0


def _announce(config: Config, url: str, storage: str, keys: int | None) -> None:
    workers = f" with {config.workers} worker processes" if config.workers > 1 else ""
    print(f"Vellum {__version__} listening on {url}{workers}", flush=True)
    print(f"Storage: {storage}", flush=True)
    if keys is not None:
        print(f"Auth: on, {keys} API keys loaded from {config.keys_file}.", flush=True)
    elif _is_loopback(config.host):
        print("Auth: off. No API keys configured: serving on loopback only.", flush=True)
    else:
        print("Auth: off. No API keys configured: serving UNAUTHENTICATED.", flush=True)
    log.info("listening", url=url, storage=storage, api_keys=keys, workers=config.workers)


def _keys(config: Config, command: str, scopes: list[Scope], key_id: str | None) -> int:
    """`keys create`: the key alone on stdout (once; the file keeps a hash); `keys list`;
    `keys revoke`."""
    if config.keys_file is None:
        raise ConfigError("name the keys file: --keys-file PATH or VELLUM_KEYS_FILE")
    if command == "create":
        key, entry = create_key(config.keys_file, scopes)
        print(key, flush=True)
        print(
            f"API key {entry.id} ({', '.join(entry.scopes)}) added to {config.keys_file}; "
            "it is shown only this once.",
            file=sys.stderr,
        )
        return 0
    if command == "revoke":
        assert key_id is not None
        entry = revoke_key(config.keys_file, key_id)
        print(
            f"API key {entry.id} ({', '.join(entry.scopes)}) removed from {config.keys_file}; "
            "servers using that file refuse it within a second.",
            file=sys.stderr,
        )
        return 0
    for entry in load_keys(config.keys_file).entries.values():
        print(f"{entry.id}  {entry.created_at}  {','.join(entry.scopes)}")
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
