"""Local and browser exposure (issue #13, item 12): cross-site writes, sniffing, terminals."""

from __future__ import annotations

import io

import pytest
import structlog

from service.logging import configure_logging
from tests.conftest import all_keys

TEXT = {"Content-Type": "text/plain; charset=utf-8"}


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "https://evil.example"},
        {"Origin": "null"},
    ],
)
async def test_a_cross_site_browser_post_is_refused_and_stores_nothing(
    client, store, headers: dict[str, str]
) -> None:  # type: ignore[no-untyped-def]
    """Without keys on loopback any web page could otherwise POST documents."""
    response = await client.post("/v1/documents", data=b"Planted.", headers={**TEXT, **headers})
    assert response.status == 403
    assert (await response.json())["type"] == "/problems/cross-site-request"
    imports = await client.post(
        "/v1/imports",
        data=b'{"text": "Planted."}\n',
        headers={"Content-Type": "application/x-ndjson", **headers},
    )
    assert imports.status == 403
    assert await all_keys(store) == []


async def test_same_origin_and_non_browser_posts_pass(client) -> None:  # type: ignore[no-untyped-def]
    origin = f"http://{client.server.host}:{client.server.port}"
    for headers in (
        {},
        {"Sec-Fetch-Site": "same-origin", "Origin": origin},
        {"Sec-Fetch-Site": "none"},
    ):
        response = await client.post(
            "/v1/documents",
            data=f"Posted with {sorted(headers)}.".encode(),
            headers={**TEXT, **headers},
        )
        assert response.status == 201
    # Reads stay open to any page (they change nothing).
    read = await client.get("/healthz", headers={"Sec-Fetch-Site": "cross-site"})
    assert read.status == 200


async def test_an_original_is_served_with_nosniff(client) -> None:  # type: ignore[no-untyped-def]
    created = await client.post("/v1/documents", data=b"<script>alert(1)</script>", headers=TEXT)
    body = await created.json()
    original = await client.get(f"/v1/documents/{body['id']}/original")
    assert original.status == 200
    assert original.headers["X-Content-Type-Options"] == "nosniff"


def test_the_console_log_shows_no_frame_locals_and_escapes_control_characters() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream)
    try:
        log = structlog.get_logger("vellum")

        def failing(article_text: str) -> None:
            raise ValueError("the analyser broke")

        try:
            failing("".join(["WORDS OF", " THE ARTICLE"]))  # as a local, not in the source
        except ValueError:
            log.exception("unhandled_error", path="/v1/\x1b[2J\x1b[31mfake\n2026 [info] forged")
    finally:
        structlog.reset_defaults()
    out = stream.getvalue()
    assert "ValueError: the analyser broke" in out
    assert "WORDS OF THE ARTICLE" not in out  # a frame local
    path_part = out.split("path", 1)[1]
    assert "\x1b[2J" not in path_part
    assert "\\x1b[2J" in path_part
    assert "\\n2026 [info] forged" in path_part
