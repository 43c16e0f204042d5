"""OpenAPI 3.1 of the HTTP API (served at GET /openapi.json), generated from the msgspec types
the handlers use (`msgspec.json.schema_components`), never written by hand.

The routes come from the declarative table in service.web.endpoints. Each operation gets
`X-Request-ID` (parameter and response header), its answers, and one problem+json
answer per status listing the problem types it can return, with an example of each.
Operations with a scope get `security` (the `apiKey` bearer scheme, naming the scope) and
their 401 and 403 problems; the open ones get `security: []`.
"""

from __future__ import annotations

from typing import Any

import msgspec

from service import __version__
from service.errors import (
    Forbidden,
    MethodNotAllowed,
    TooManyAttempts,
    Unauthorized,
    VellumError,
)
from service.media import PROBLEM_JSON
from service.schemas import schema_components
from service.types import Problem
from service.web.endpoints import ANY_PATH, HEADERS, PARAMETERS, ROUTES, Content, Route

REF = "#/components/schemas/{name}"
SECURITY_SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": (
        "An API key, `vk_<key id>_<secret>` (made by `vellum keys create`). Needed only when"
        " the server has keys configured (VELLUM_KEYS_FILE); each operation names the scope"
        " it needs, and `admin` implies `ingest` and `read`."
    ),
}


def _problem_answer(
    problems: list[type[VellumError]], problem_ref: Any, instance: str
) -> dict[str, Any]:
    lines = [f"- `/problems/{p.slug}`: {p.title}" for p in problems]
    headers = {"X-Request-ID": {"$ref": "#/components/headers/X-Request-ID"}}
    if problems[0].status in (TooManyAttempts.status, 503):
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    if problems[0].status in (Unauthorized.status, Forbidden.status):
        headers["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    if problems[0] is MethodNotAllowed:
        headers["Allow"] = {"$ref": "#/components/headers/Allow"}
    examples = {
        p.slug: {
            "summary": p.title,
            "value": {
                "type": f"/problems/{p.slug}",
                "title": p.title,
                "status": p.status,
                "detail": p.title,
                "instance": instance,
                "request_id": "5787c08f3e224a0fb362b02c048d841c",
            },
        }
        for p in problems
    }
    return {
        "description": "Problem (RFC 9457) of type:\n" + "\n".join(lines),
        "headers": headers,
        "content": {PROBLEM_JSON: {"schema": problem_ref, "examples": examples}},
    }


def build(routes: tuple[Route, ...] = ROUTES) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`."""
    shapes: list[Any] = [Problem]
    shapes += [p.shape for p in PARAMETERS.values()] + [h.shape for h in HEADERS.values()]
    for route in routes:
        shapes += [c.shape for c in route.body]
        shapes += [c.shape for a in route.answers for c in a.content]
    refs, schemas = schema_components(shapes, ref_template=REF)

    def schema(shape: Any) -> Any:
        return refs[shapes.index(shape)]

    def content(contents: tuple[Content, ...]) -> dict[str, Any]:
        return {c.media_type: {"schema": schema(c.shape)} for c in contents}

    def operation(route: Route) -> dict[str, Any]:
        names = ("X-Request-ID", *route.parameters)
        responses: dict[str, Any] = {}
        for answer in route.answers:
            headers = ("X-Request-ID", *answer.headers)
            responses[str(answer.status)] = {
                "description": answer.description,
                "headers": {h: {"$ref": f"#/components/headers/{h}"} for h in headers},
            } | ({"content": content(answer.content)} if answer.content else {})
        by_status: dict[int, list[type[VellumError]]] = {}
        auth = (Unauthorized, Forbidden, TooManyAttempts) if route.scope else ()
        raised: tuple[type[VellumError], ...] = (*route.problems, *auth, VellumError)
        for problem in raised:
            by_status.setdefault(problem.status, []).append(problem)
        for status, problems in sorted(by_status.items()):
            responses[str(status)] = _problem_answer(problems, schema(Problem), route.path)
        result: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "parameters": [{"$ref": f"#/components/parameters/{name}"} for name in names],
            "security": [{"apiKey": [route.scope]}] if route.scope else [],
        }
        if route.body:
            result["requestBody"] = {
                "required": True,
                "description": route.body_description,
                "content": content(route.body),
            }
        return result | {"responses": responses}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Vellum",
            "version": __version__,
            "summary": "Article ingestion and archival: raw text in, archival records out.",
            "description": (
                "Every response carries `X-Request-ID`. Every error is"
                " `application/problem+json` (RFC 9457): see `components/responses` for"
                " the answers any path can give (404 `not-found`, 405 with `Allow`)."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "parameters": {
                name: {"name": name, "in": p.where, "description": p.description}
                | ({"required": True} if p.required else {})
                | {"schema": schema(p.shape)}
                for name, p in PARAMETERS.items()
            },
            "headers": {
                name: {"description": h.description, "schema": schema(h.shape)}
                for name, h in HEADERS.items()
            },
            "securitySchemes": {"apiKey": SECURITY_SCHEME},
            "responses": {
                name: _problem_answer(list(problems), schema(Problem), "/v1/nowhere")
                for name, problems in ANY_PATH.items()
            },
        },
    }


def encoded(routes: tuple[Route, ...] = ROUTES) -> bytes:
    """The document of `routes` as served (service.web.contract)."""
    return msgspec.json.encode(build(routes))
