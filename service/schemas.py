"""JSON Schemas of every public type, generated from the msgspec types (never by hand).

`python -m service.schemas` (or `make schemas`) writes them into schemas/; a test fails
when the files and the types drift apart.

    schemas/vellum.article-1.schema.json   the archival record, major version 1
    schemas/api.schema.json                request and response bodies of the HTTP API
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import msgspec

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

API_TYPES: tuple[Any, ...] = (DocumentIn, DocumentReceipt, VersionList, Problem, Health)
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _document(schema: dict[str, Any], schema_id: str, title: str) -> bytes:
    ordered = {"$schema": _DIALECT, "$id": schema_id, "title": title, **schema}
    return msgspec.json.format(msgspec.json.encode(ordered), indent=2) + b"\n"


def generate() -> dict[str, bytes]:
    """File name -> contents, for every schema file."""
    record_name = f"{SCHEMA_NAME}-{SCHEMA_MAJOR}.schema.json"
    api_refs, api_components = msgspec.json.schema_components(
        API_TYPES, ref_template="#/$defs/{name}"
    )
    api = {"anyOf": list(api_refs), "$defs": api_components}
    return {
        record_name: _document(
            msgspec.json.schema(Record),
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
