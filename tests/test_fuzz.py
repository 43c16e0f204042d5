"""Schemathesis against the OpenAPI document: generated requests, a real server, real S3.

Every operation gets a bounded number of generated requests (valid and invalid); none may
get a 5xx, and every response must conform to the documented status codes, content types,
headers and schemas. (Schemathesis's API-design checks, such as "an invalid X-Request-ID
must be rejected", are left out on purpose: Vellum replaces such an id, as SPEC §4 says.)
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.storage.s3 import S3Settings
from service.web.openapi import build
from tests.servers import ServerProcess, running_server, s3_environment


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: object, value: object) -> bytes:
    """Generated import bodies: text as it is; a list, one JSON document per line."""
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    values = value if isinstance(value, list) else [value]
    if all(isinstance(item, bytes) for item in values):
        return b"\n".join(values)  # type: ignore[arg-type]
    return b"".join(msgspec.json.encode(item) + b"\n" for item in values)


schema = schemathesis.openapi.from_dict(build())
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def fuzz_server(
    s3_server: S3Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    settings_ = msgspec.structs.replace(s3_server, prefix="fuzz")
    with running_server(tmp_path_factory.mktemp("fuzz"), s3_environment(settings_)) as server:
        yield server


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_never_fail_the_server(case, fuzz_server: ServerProcess) -> None:  # type: ignore[no-untyped-def]
    response = case.call(base_url=fuzz_server.url, timeout=30)
    case.validate_response(response, checks=CHECKS)
