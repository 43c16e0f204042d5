"""schemas/ is generated from the msgspec types, and describes what is really stored."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import msgspec

from service.schemas import generate, schema_components

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_schema_files_match_the_types() -> None:
    generated = generate()
    on_disk = {path.name: path.read_bytes() for path in SCHEMAS.glob("*.json")}
    assert set(on_disk) == set(generated), "run `make schemas`"
    for name, content in generated.items():
        assert on_disk[name] == content, f"schemas/{name} is stale: run `make schemas`"


class _Indented(msgspec.Struct):
    """A first line,
    and an indented second line
        with a deeper third."""


def test_descriptions_lose_docstring_indentation_whatever_msgspec_does() -> None:
    """msgspec 0.22 kept a docstring's continuation indent, 0.23 drops it: the schemas
    clean descriptions themselves, so they are the same under either."""
    (_, components) = schema_components([_Indented], ref_template="#/$defs/{name}")
    assert components["_Indented"]["description"] == (
        "A first line,\nand an indented second line\n    with a deeper third."
    )


async def test_a_stored_record_validates_against_its_schema(client) -> None:
    posted = await client.post(
        "/v1/documents",
        json={
            "text": "A Title Line Here\n\n“Quoted [sic] words…” she said.\n\nEDITOR’S NOTE: Fixed.",
            "source": {"authors": ["A"], "url": "https://e.org"},
            "metadata": {"k": [1, 2]},
        },
    )
    record = await (await client.get(f"/v1/documents/{(await posted.json())['id']}")).json()
    schema = msgspec.json.decode(generate()["vellum.article-1.schema.json"])
    jsonschema.Draft202012Validator(schema).validate(record)
    broken = record | {"version": 0}
    assert not jsonschema.Draft202012Validator(schema).is_valid(broken)
