"""schemas/ is generated from the msgspec types, and describes what is really stored."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import msgspec

from service.schemas import generate

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def test_schema_files_match_the_types() -> None:
    generated = generate()
    on_disk = {path.name: path.read_bytes() for path in SCHEMAS.glob("*.json")}
    assert set(on_disk) == set(generated), "run `make schemas`"
    for name, content in generated.items():
        assert on_disk[name] == content, f"schemas/{name} is stale: run `make schemas`"


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
