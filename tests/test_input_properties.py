"""Property tests for what clients control: ids, versions, media types, charsets, digests.

Whatever the string, each parser either accepts it or raises its own problem, never
anything else (which would be a 500).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service import ids, media
from service.digests import parse_digest_field
from service.errors import MalformedDigest, MalformedId, UnknownCharset, UnsupportedMediaType

ID = re.compile(r"[a-z2-7]{32}")
anything = st.text(max_size=200) | st.sampled_from(
    ["../" * 11, "a" * 31 + "\u0430", "a" * 32 + "\n", "%2e%2e%2f" * 4, "\u202e" + "a" * 31, ""]
)


@settings(max_examples=300)
@given(anything | st.from_regex(ID, fullmatch=True))
def test_ids_are_exactly_32_base32_characters(value: str) -> None:
    if ID.fullmatch(value):
        assert ids.parse_id(value) == value
    else:
        with pytest.raises(MalformedId) as refused:
            ids.parse_id(value)
        assert len(refused.value.extensions["id"]) <= 64  # an echo, never the whole input


@settings(max_examples=300)
@given(anything | st.integers(min_value=-(10**12), max_value=10**12).map(str))
def test_versions_are_positive_integers_below_a_billion(value: str) -> None:
    try:
        version = ids.parse_version(value)
        assert 1 <= version < 10**9
        assert str(version) == value
    except MalformedId:
        assert not re.fullmatch(r"[1-9][0-9]{0,8}", value)


@settings(max_examples=300)
@given(anything)
def test_any_content_type_header_parses_or_is_415(header: str) -> None:
    try:
        parsed = media.parse_media_type(header)
    except UnsupportedMediaType:
        assert not header.strip()
        return
    assert parsed.essence == parsed.essence.lower()
    try:
        charset = media.resolve_charset(parsed.charset)
    except UnknownCharset:
        return
    assert "x".encode(charset.codec)  # a real text codec


@settings(max_examples=300)
@given(anything | st.sampled_from(["sha-256=:AAAA:", "sha-256=:!:", "sha-256", "a=:b:, c"]))
def test_any_content_digest_header_parses_or_is_malformed(header: str) -> None:
    try:
        digests = parse_digest_field(header)
    except MalformedDigest:
        return
    assert all(isinstance(value, bytes) for value in digests.values())


async def test_odd_ids_over_http_are_400_never_5xx(client) -> None:
    odd = [
        "..%2F..%2Fetc%2Fpasswd",
        "%00" * 8,
        "\u202e" * 32,
        "a" * 500,
        "%F0%9F%98%80" * 32,
        "A" * 32,
    ]
    for value in odd:
        for path in (f"/v1/documents/{value}", f"/v1/documents/{value}/original"):
            response = await client.get(path)
            assert response.status == 400, (path, response.status)
            assert (await response.json(content_type=None))["type"] == "/problems/malformed-id"
