"""The `vellum` command line: arguments only; what each command does is in service.commands.

vellum serve [--host H] [--port P] [--workers N] serve the HTTP API (see README.md)
vellum import FILE|s3://bucket/key [--shard i/N] [--url URL]
                                                bulk-import NDJSON, with a progress bar
vellum get ID [--original] [--version N]        print a record (or the original bytes)
vellum verify                                   re-hash everything, report problems
vellum reprocess (--all | ID...)                new record versions by this normalizer
vellum reindex                                  rebuild every index from the records
vellum find (--url U [--match M] | --external-id X) [--from T] [--to T]
                                                documents found, as NDJSON
vellum changes [--after CURSOR] [--follow]      the change feed, as NDJSON
vellum export --bagit DIR (--all | ID...)       write each document as a BagIt bag
vellum keys create --scope S [--scope S...] [--keys-file PATH]
                                                add an API key; print it (once)
vellum keys list [--keys-file PATH]             key ids, scopes and dates (never secrets)
vellum keys revoke ID [--keys-file PATH]        remove a key (servers notice within 1 s)

Options named as a Config field (`--host`, `--port`, `--workers`,
`--allow-public-without-keys`, `--keys-file`) override its environment variable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from service import __version__, commands
from service.config import Config
from service.errors import ConfigError, VellumError
from service.finding import params
from service.jobs.model import Shard
from service.keys import SCOPES
from service.logging import configure_logging
from service.malloc import limit_malloc_arenas

Command = Callable[[Config, argparse.Namespace], int]
_CONFIG_FIELDS = frozenset(Config.__struct_fields__)


def main(argv: Sequence[str] | None = None) -> int:
    limit_malloc_arenas()  # before any thread starts
    args = _parser().parse_args(argv)
    run: Command = args.run
    try:
        overrides = {
            name: value
            for name, value in vars(args).items()
            if name in _CONFIG_FIELDS and value is not None
        }
        config = msgspec.structs.replace(Config.from_env(), **overrides)
        config.check()
        # A server logs as configured; any other command's output is the point.
        configure_logging(config.log_format, config.log_level if args.serving else "warning")
        return run(config, args)
    except VellumError as exc:
        print(f"vellum: {exc.detail}", file=sys.stderr)
        return 2


def _serve(config: Config, args: argparse.Namespace) -> int:
    return commands.run_serve(config)


def _import(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_import(config, args.source, args.shard, args.url))


def _get(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_get(config, args.id, args.version, args.original))


def _verify(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_verify(config))


def _reprocess(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_reprocess(config, args.ids, args.all))


def _reindex(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_reindex(config))


def _find(config: Config, args: argparse.Namespace) -> int:
    if args.external_id is not None and args.match is not None:
        raise ConfigError("--match applies to --url only")
    asked_from, asked_to = getattr(args, "from"), args.to
    lookup = commands.Lookup(
        url=args.url,
        match=params.match(args.match),
        external_id=args.external_id,
        since=None if asked_from is None else params.moment(asked_from, "--from", end=False),
        until=None if asked_to is None else params.moment(asked_to, "--to", end=True),
    )
    return asyncio.run(commands.run_find(config, lookup))


def _changes(config: Config, args: argparse.Namespace) -> int:
    try:
        return asyncio.run(commands.run_changes(config, args.after, args.follow))
    except KeyboardInterrupt:
        return 0


def _export(config: Config, args: argparse.Namespace) -> int:
    return asyncio.run(commands.run_export(config, Path(args.bagit), args.ids, args.all))


def _keys_create(config: Config, args: argparse.Namespace) -> int:
    return commands.run_keys_create(config, args.scope)


def _keys_list(config: Config, args: argparse.Namespace) -> int:
    return commands.run_keys_list(config)


def _keys_revoke(config: Config, args: argparse.Namespace) -> int:
    return commands.run_keys_revoke(config, args.key_id)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vellum", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"vellum {__version__}")
    parser.set_defaults(serving=False)
    subcommands = parser.add_subparsers(dest="command", required=True)

    serve = subcommands.add_parser("serve", help="serve the HTTP API")
    serve.set_defaults(run=_serve, serving=True)
    serve.add_argument("--host", help="address to bind (VELLUM_HOST)")
    serve.add_argument("--port", type=int, help="port to bind (VELLUM_PORT)")
    serve.add_argument(
        "--workers", type=int, help="server processes sharing the port (VELLUM_WORKERS)"
    )
    serve.add_argument(
        "--allow-public-without-keys",
        action="store_true",
        default=None,
        help="bind a non-loopback address although no API keys are configured",
    )

    bulk = subcommands.add_parser(
        "import", help="bulk-import an NDJSON file (one JSON document per line)"
    )
    bulk.set_defaults(run=_import)
    bulk.add_argument("source", help="a local file, or s3://bucket/key in the archive")
    bulk.add_argument("--shard", type=_shard, help="take only shard i of N (lines i+1, i+1+N, ...)")
    bulk.add_argument(
        "--url", help="submit to a running server (e.g. http://127.0.0.1:8080) instead"
    )

    get = subcommands.add_parser("get", help="print a document's record")
    get.set_defaults(run=_get)
    get.add_argument("id")
    get.add_argument("--original", action="store_true", help="the original bytes")
    get.add_argument("--version", type=int, help="a record version (default: latest)")

    verify = subcommands.add_parser(
        "verify", help="re-hash every original and record, report problems"
    )
    verify.set_defaults(run=_verify)

    reprocess = subcommands.add_parser(
        "reprocess", help="write new record versions with the current normalizer"
    )
    reprocess.set_defaults(run=_reprocess)
    reprocess.add_argument("ids", nargs="*", help="document ids")
    reprocess.add_argument("--all", action="store_true", help="every document")

    reindex = subcommands.add_parser("reindex", help="rebuild every index from the records")
    reindex.set_defaults(run=_reindex)

    find = subcommands.add_parser("find", help="documents by source URL or external id")
    find.set_defaults(run=_find)
    asked = find.add_mutually_exclusive_group(required=True)
    asked.add_argument("--url", help="a source URL, matched on its canonical form")
    asked.add_argument("--external-id", help="an asserted external id, matched exactly")
    find.add_argument("--match", help="exact (default), prefix, host or domain")
    find.add_argument("--from", help="received at or after: RFC 3339 or yyyyMMddhhmmss")
    find.add_argument("--to", help="received at or before: RFC 3339 or yyyyMMddhhmmss")

    changes = subcommands.add_parser("changes", help="the change feed, as NDJSON")
    changes.set_defaults(run=_changes)
    changes.add_argument("--after", help="a cursor (an item's or a `next`): go on after it")
    changes.add_argument("--follow", action="store_true", help="poll for more until interrupted")

    export = subcommands.add_parser("export", help="write each document as a BagIt bag")
    export.set_defaults(run=_export)
    export.add_argument("--bagit", required=True, metavar="DIR", help="bags go here")
    export.add_argument("ids", nargs="*", help="document ids")
    export.add_argument("--all", action="store_true", help="every document")

    keys = subcommands.add_parser("keys", help="create and list API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="add a key; print it once")
    create.set_defaults(run=_keys_create)
    create.add_argument("--scope", action="append", choices=SCOPES, required=True)
    listing = keys_commands.add_parser("list", help="key ids, scopes, creation dates")
    listing.set_defaults(run=_keys_list)
    revoke = keys_commands.add_parser(
        "revoke", help="remove a key; running servers stop taking it within a second"
    )
    revoke.set_defaults(run=_keys_revoke)
    revoke.add_argument("key_id", metavar="ID", help="the key's id (`keys list`)")
    for command in (create, listing, revoke):
        command.add_argument("--keys-file", type=Path, help="(VELLUM_KEYS_FILE)")
    return parser


def _shard(text: str) -> Shard:
    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


if __name__ == "__main__":
    sys.exit(main())
