"""GET /openapi.json: a valid OpenAPI 3.1 document, generated from the msgspec types, of
the one route table the application registers, whose schemas describe what the handlers
really send."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from service.app import create_app
from service.config import Config
from service.errors import DocumentNotFound, MalformedId, StorageUnavailable
from service.web.endpoints import ROUTES
from service.web.openapi import build
from service.web.ui.routes import PAGES

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


def test_the_app_registers_the_route_table_and_the_pages_and_nothing_else() -> None:
    api = {(route.method, route.path) for route in ROUTES}
    pages = {(method, path) for method, path, _ in PAGES}
    assert registered_routes() == api | pages
    assert not any(path.startswith("/ui") for _, path in api)


def test_the_document_has_an_operation_per_route(document) -> None:
    operations = {
        (method.upper(), path, operation["operationId"])
        for path, by_method in document["paths"].items()
        for method, operation in by_method.items()
    }
    assert operations == {(r.method, r.path, r.operation_id) for r in ROUTES}


def test_the_document_is_valid_openapi_3_1(document) -> None:
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_the_validator_rejects_a_broken_document(document) -> None:
    broken = copy.deepcopy(document)
    get = broken["paths"]["/v1/documents/{id}"]["get"]
    get["parameters"] = [p for p in get["parameters"] if not p["$ref"].endswith("/id")]
    with pytest.raises(OpenAPIValidationError, match="Path parameter 'id'"):
        validate(broken)


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


def conforms(document: dict[str, Any], schema_name: str, body: Any) -> None:
    """Raise unless `body` is valid for the document's component schema `schema_name`."""
    schema = {"$ref": REF.format(name=schema_name), "components": document["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


async def test_the_served_schemas_describe_what_the_handlers_send(client) -> None:
    """Real answers of the app, checked against the schemas of the document it serves."""
    served = await (await client.get("/openapi.json")).json()
    validate(served)
    created = await client.post("/v1/documents", json={"text": "A short article."})
    receipt = await created.json()
    conforms(served, "DocumentReceipt", receipt)
    record = await (await client.get(receipt["links"]["self"])).json()
    conforms(served, "Record", record)
    conforms(served, "VersionList", await (await client.get(receipt["links"]["versions"])).json())
    conforms(served, "Health", await (await client.get("/healthz")).json())
    conforms(served, "Problem", await (await client.get("/v1/documents/nope")).json())
    with pytest.raises(jsonschema.ValidationError):  # the check can fail
        conforms(served, "Record", {**record, "version": 0})
