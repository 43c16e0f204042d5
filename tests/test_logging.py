"""One JSON log line per request, with its context, and never the article text."""

from __future__ import annotations

import json


async def test_one_json_line_per_request_without_the_text(client, log_stream) -> None:
    secret_text = "Confidential scoop: the minister “resigned” at dawn."
    posted = await client.post(
        "/v1/documents",
        json={"text": secret_text, "metadata": {"note": "private note"}},
        headers={"X-Request-ID": "log-test-1"},
    )
    document_id = (await posted.json())["id"]
    await client.get(f"/v1/documents/{document_id}", headers={"X-Request-ID": "log-test-2"})
    await client.get("/v1/documents/not-an-id", headers={"X-Request-ID": "log-test-3"})

    output = log_stream.getvalue()
    events = [json.loads(line) for line in output.splitlines()]
    requests = {event["request_id"]: event for event in events if event["event"] == "request"}
    assert requests["log-test-1"]["status"] == 201
    assert requests["log-test-1"]["route"] == "/v1/documents"
    assert requests["log-test-1"]["document_id"] == document_id
    assert requests["log-test-2"]["route"] == "/v1/documents/{id}"
    assert requests["log-test-2"]["document_id"] == document_id
    assert requests["log-test-3"]["status"] == 400
    assert all(isinstance(event["duration_ms"], float) for event in requests.values())
    for fragment in ("Confidential", "minister", "resigned", "private note"):
        assert fragment not in output
