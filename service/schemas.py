"""JSON Schemas of every public type, generated from the msgspec types (never by hand).

`python -m service.schemas` (or `make schemas`) writes them into schemas/; a test fails
when the files and the types drift apart.

    schemas/vellum.article-1.schema.json   the archival record, major version 1
    schemas/api.schema.json                request and response bodies of the HTTP API

Descriptions come from docstrings, whose indentation msgspec releases clean differently
(0.22 kept a continuation line's indent, 0.23 removes it): `schema_components` cleans
them itself (`inspect.cleandoc`), so the files do not change with the library's version.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from service.finding.model import Captures, Changes, Similar
from service.types import (
    SCHEMA_MAJOR,
    SCHEMA_NAME,
    DocumentIn,
    DocumentReceipt,
    Health,
    Problem,
    Record,
    VersionList,
)

API_TYPES: tuple[Any, ...] = (
    DocumentIn,
    DocumentReceipt,
    VersionList,
    Captures,
    Similar,
    Changes,
    Problem,
    Health,
)
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def schema_components(
    types: Iterable[Any], ref_template: str
) -> tuple[tuple[dict[str, Any], ...], dict[str, Any]]:
    """`msgspec.json.schema_components`, with every description cleaned of indentation."""
    refs, components = msgspec.json.schema_components(types, ref_template=ref_template)
    return refs, _clean_descriptions(components)


def _clean_descriptions(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: inspect.cleandoc(value)
            if key == "description" and isinstance(value, str)
            else _clean_descriptions(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_clean_descriptions(item) for item in node]
    return node


def _document(schema: dict[str, Any], schema_id: str, title: str) -> bytes:
    ordered = {"$schema": _DIALECT, "$id": schema_id, "title": title, **schema}
    return msgspec.json.format(msgspec.json.encode(ordered), indent=2) + b"\n"


def generate() -> dict[str, bytes]:
    """File name -> contents, for every schema file."""
    record_name = f"{SCHEMA_NAME}-{SCHEMA_MAJOR}.schema.json"
    api_refs, api_components = schema_components(API_TYPES, ref_template="#/$defs/{name}")
    api = {"anyOf": list(api_refs), "$defs": api_components}
    (record_ref,), record_components = schema_components([Record], ref_template="#/$defs/{name}")
    return {
        record_name: _document(
            {**record_ref, "$defs": record_components},
            record_name,
            f"{SCHEMA_NAME}/{SCHEMA_MAJOR}: a Vellum archival record",
        ),
        "api.schema.json": _document(api, "api.schema.json", "Vellum HTTP API v1 bodies"),
    }


def write(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in generate().items():
        path = directory / name
        path.write_bytes(content)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("schemas")
    for path in write(target):
        print(path)
