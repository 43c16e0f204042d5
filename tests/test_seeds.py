"""Every seed article, ingested over HTTP, gives the record its hand-written expectation says.

seeds/NN-name.txt is posted as text/plain (bytes exactly as in the file) and
seeds/NN-name.json as application/json; seeds/NN-name.expected.json was written by hand
from reading the article, never from the normalizer's output. Quotes, insertions and
ellipses are compared as the text their spans cover, so the expectations stay readable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

SEEDS = Path(__file__).resolve().parents[1] / "seeds"
CASES = sorted(path.name.removesuffix(".expected.json") for path in SEEDS.glob("*.expected.json"))


def test_there_are_enough_seeds() -> None:
    assert len(CASES) >= 10


async def ingest_seed(client, name: str, expected: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    plain = SEEDS / f"{name}.txt"
    if plain.exists():
        body, content_type = plain.read_bytes(), expected["media_type"]
    else:
        body, content_type = (SEEDS / f"{name}.json").read_bytes(), "application/json"
    response = await client.post("/v1/documents", data=body, headers={"Content-Type": content_type})
    assert response.status == 201, await response.text()
    record_response = await client.get(f"/v1/documents/{(await response.json())['id']}")
    record: dict[str, Any] = await record_response.json()
    return record


def covered(text: str, span: list[int]) -> str:
    return text[span[0] : span[1]]


@pytest.mark.parametrize("name", CASES)
async def test_seed_gives_its_reviewed_record(client, name: str) -> None:
    expected = json.loads((SEEDS / f"{name}.expected.json").read_text("utf-8"))
    record = await ingest_seed(client, name, expected)
    text = record["text"]

    assert record["original"]["media_type"] == expected["media_type"]
    if "text" in expected:
        assert text == expected["text"]
    assert record["headline"] == expected["headline"]
    blocks = [
        {"kind": block["kind"], "label": block["label"], "starts": covered(text, block["span"])}
        for block in record["blocks"]
    ]
    assert len(blocks) == len(expected["blocks"])
    for block, want in zip(blocks, expected["blocks"], strict=True):
        assert (block["kind"], block["label"]) == (want["kind"], want["label"])
        assert block["starts"].startswith(want["starts"]), (block["starts"], want["starts"])
    quotes = [
        {
            "text": covered(text, quote["span"]),
            "depth": quote["depth"],
            "open": quote["open"],
            "close": quote["close"],
            "blocks": quote["blocks"],
        }
        for quote in record["quotes"]
    ]
    assert quotes == expected["quotes"]
    assert [covered(text, item["span"]) for item in record["insertions"]] == expected["insertions"]
    assert [covered(text, item["span"]) for item in record["ellipses"]] == expected["ellipses"]
    language = record["language"]["code"] if record["language"] else None
    assert language == expected["language"]
    assert record["stats"]["paragraphs"] == len(expected["blocks"])
    assert record["stats"]["quotes"] == len(expected["quotes"])
