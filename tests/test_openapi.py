"""GET /openapi.json: a valid OpenAPI 3.1 document, generated from the msgspec types, that
documents every route the application has and no route it lacks."""

from __future__ import annotations

import copy
from typing import Any

import msgspec
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from service.app import create_app
from service.config import Config
from service.errors import DocumentNotFound, MalformedId, StorageUnavailable
from service.types import DocumentIn, DocumentReceipt, Health, Problem, Record, VersionList
from service.web.endpoints import ROUTES
from service.web.openapi import build

REF = "#/components/schemas/{name}"


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return build()


def registered_routes() -> set[tuple[str, str]]:
    app = create_app(Config())
    return {
        (route.method, route.resource.canonical)
        for route in app.router.routes()
        if route.method != "HEAD" and route.resource is not None
    }


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


def test_every_route_of_the_app_is_documented(document) -> None:
    missing = registered_routes() - documented_routes(document)
    assert missing == set(), f"add an entry to ROUTES in service/web/endpoints.py for {missing}"


def test_every_documented_route_exists_in_the_app(document) -> None:
    assert documented_routes(document) - registered_routes() == set()


def test_the_document_is_valid_openapi_3_1(document) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_validator_rejects_a_broken_document(document) -> None:
    broken = copy.deepcopy(document)
    get = broken["paths"]["/v1/documents/{id}"]["get"]
    get["parameters"] = [p for p in get["parameters"] if not p["$ref"].endswith("/id")]
    with pytest.raises(OpenAPIValidationError, match="Path parameter 'id'"):
        validate(broken)


@pytest.mark.parametrize(
    "struct", [DocumentIn, DocumentReceipt, VersionList, Problem, Health, Record]
)
def test_schemas_are_msgspecs_own(document, struct) -> None:
    _, expected = msgspec.json.schema_components([struct], ref_template=REF)
    for name, schema in expected.items():
        assert document["components"]["schemas"][name] == schema


def test_bodies_refer_to_the_handlers_types(document) -> None:
    post = document["paths"]["/v1/documents"]["post"]
    assert set(post["requestBody"]["content"]) == {"text/plain", "application/json"}
    assert post["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DocumentIn"
    }
    for status in ("200", "201"):
        answer = post["responses"][status]
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/DocumentReceipt")
        assert {"Location", "X-Request-ID"} <= set(answer["headers"])
    assert document["paths"]["/v1/documents/{id}/provenance"]["get"]["responses"]["200"][
        "content"
    ].keys() == {"application/ld+json"}


def test_problems_are_listed_by_type_with_their_headers(document) -> None:
    get = document["paths"]["/v1/documents/{id}/original"]["get"]
    for error in (MalformedId, DocumentNotFound, StorageUnavailable):
        answer = get["responses"][str(error.status)]
        problem = answer["content"]["application/problem+json"]
        assert problem["schema"] == {"$ref": "#/components/schemas/Problem"}
        assert f"/problems/{error.slug}" in answer["description"]
        assert problem["examples"][error.slug]["value"]["type"] == f"/problems/{error.slug}"
    assert "Retry-After" in get["responses"]["503"]["headers"]
    assert "Allow" in document["components"]["responses"]["MethodNotAllowed"]["headers"]
    assert {"id", "If-None-Match", "X-Request-ID"} <= {
        parameter["$ref"].rsplit("/", 1)[1] for parameter in get["parameters"]
    }


def test_operation_ids_are_unique() -> None:
    ids = [route.operation_id for route in ROUTES]
    assert len(ids) == len(set(ids))


async def test_the_app_serves_the_document(client, document) -> None:
    response = await client.get("/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == msgspec.json.decode(msgspec.json.encode(document))
