"""Pure parts: ids, charsets, digests, text normalization, configuration."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest

from service import ids, media
from service.config import Config
from service.digests import parse_digest_field, verify_content_digest
from service.errors import (
    ConfigError,
    DigestMismatch,
    InvalidEncoding,
    MalformedDigest,
    MalformedId,
    UnknownCharset,
)
from service.normalize import normalize_text
from service.types import Source

SHA = hashlib.sha256(b"article").hexdigest()


def test_document_id_is_fixed_length_url_safe_and_deterministic() -> None:
    first = ids.document_id(SHA, "utf-8", Source(url="https://e.org/a"))
    assert re.fullmatch(r"[a-z2-7]{32}", first)
    assert ids.document_id(SHA, "utf-8", Source(url="https://e.org/a")) == first
    assert ids.parse_id(first) == first


def documented_id(original: bytes, codec: str, source: dict[str, object]) -> str:
    """The derivation exactly as docs/format.md gives it, with the standard library."""
    asserted = {k: v for k, v in source.items() if v is not None}
    canonical = json.dumps(asserted, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    material = b"\n".join(
        [
            b"vellum.id/1",
            hashlib.sha256(original).hexdigest().encode(),
            codec.encode(),
            canonical.encode(),
        ]
    )
    return base64.b32encode(hashlib.sha256(material).digest()[:20]).decode().lower()


@pytest.mark.parametrize(
    "source",
    [
        {},
        {"url": "u", "title": "T"},
        {
            "url": "https://e.org/ä?x=1&y=</script>",
            "title": 'Tab\there "q" \\ \u2028 \x01 ✓ 🙂',
            "authors": ["Zoë", "Al"],
            "language": None,
        },
    ],
)
def test_document_id_matches_its_documented_derivation(source: dict[str, object]) -> None:
    expected = documented_id(b"article", "utf-8", source)
    assert ids.document_id(SHA, "utf-8", Source(**source)) == expected  # type: ignore[arg-type]


def test_unasserted_source_fields_do_not_change_the_id() -> None:
    bare = ids.document_id(SHA, "utf-8", None)
    assert ids.document_id(SHA, "utf-8", Source()) == bare
    assert ids.document_id(SHA, "utf-8", Source(url="u")) != bare
    assert ids.document_id(SHA, "cp1252", None) != bare
    assert ids.document_id(hashlib.sha256(b"other").hexdigest(), "utf-8", None) != bare


def test_author_order_is_part_of_identity() -> None:
    ab = ids.document_id(SHA, "utf-8", Source(authors=["A", "B"]))
    assert ids.document_id(SHA, "utf-8", Source(authors=["B", "A"])) != ab


@pytest.mark.parametrize(
    "bad", ["", "a" * 31, "a" * 33, "A" * 32, "a" * 31 + "0", "../" + "a" * 29]
)
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(MalformedId):
        ids.parse_id(bad)


@pytest.mark.parametrize(("text", "expected"), [("1", 1), ("42", 42), ("999999999", 999999999)])
def test_versions_parse(text: str, expected: int) -> None:
    assert ids.parse_version(text) == expected


@pytest.mark.parametrize("bad", ["0", "-1", "01", "1.0", "1e3", "", "1000000000", "١"])
def test_malformed_versions_are_refused(bad: str) -> None:
    with pytest.raises(MalformedId):
        ids.parse_version(bad)


def test_record_keys_sort_by_version() -> None:
    keys = [ids.record_key("a" * 32, version) for version in (10, 9, 100, 1)]
    assert [ids.version_of(key) for key in sorted(keys)] == [1, 9, 10, 100]


@pytest.mark.parametrize(
    ("label", "codec"),
    [
        (None, "utf-8"),
        ("UTF-8", "utf-8"),
        ("windows-1252", "cp1252"),
        ("cp1252", "cp1252"),
        ("ISO-8859-1", "iso8859-1"),
        ("latin1", "iso8859-1"),
        ("shift_jis", "shift_jis"),
    ],
)
def test_charsets_resolve_to_one_codec(label: str | None, codec: str) -> None:
    assert media.resolve_charset(label and label.lower()).codec == codec


@pytest.mark.parametrize("label", ["rot13", "base64", "idna", "unicode_escape", "utf-7", "nope"])
def test_non_charsets_are_unknown(label: str) -> None:
    with pytest.raises(UnknownCharset):
        media.resolve_charset(label)


def test_media_type_parsing() -> None:
    parsed = media.parse_media_type('Text/Plain ; format=flowed; CHARSET="Windows-1252"')
    assert parsed == media.MediaType(essence="text/plain", charset="windows-1252")
    assert media.parse_media_type("application/json").charset is None


def test_decoding_is_strict_and_names_the_byte() -> None:
    with pytest.raises(InvalidEncoding) as caught:
        media.decode(b"ok\xff", media.resolve_charset("utf-8"))
    assert caught.value.extensions["position"] == 2


def test_digest_fields() -> None:
    data = b"payload"
    b64 = base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert parse_digest_field(f"sha-256=:{b64}:, md5=:AAAA:") == {
        "sha-256": hashlib.sha256(data).digest(),
        "md5": b"\x00\x00\x00",
    }
    verify_content_digest(f"sha-256=:{b64}:", data)
    with pytest.raises(DigestMismatch):
        verify_content_digest(f"sha-256=:{b64}:", b"other")
    with pytest.raises(MalformedDigest):
        verify_content_digest("sha-256=abc", data)


@pytest.mark.parametrize(
    ("decoded", "expected"),
    [
        ("a\r\nb\rc\nd", "a\n\nb\n\nc\n\nd"),
        ("\ufeffBOM first", "BOM first"),
        ("keep \ufeff inside", "keep \ufeff inside"),
        ("line\u2028sep\u2029para", "line\n\nsep\n\npara"),
        ("e\u0301", "é"),
        ("“Curly” ‘quotes’ — dashes… kept", "“Curly” ‘quotes’ — dashes… kept"),
    ],
)
def test_normalize_text(decoded: str, expected: str) -> None:
    assert normalize_text(decoded) == expected


def test_config_from_environment() -> None:
    config = Config.from_env(
        {
            "VELLUM_PORT": "9000",
            "VELLUM_DATA_DIR": "/srv/vellum",
            "VELLUM_MAX_BODY_BYTES": "1024",
            "VELLUM_S3_ENDPOINT": "",
            "UNRELATED": "x",
        }
    )
    assert config.port == 9000
    assert config.data_dir == Path("/srv/vellum")
    assert config.max_body_bytes == 1024
    assert config.embedded_storage


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VELLUM_PORT", "http"),
        ("VELLUM_PORT", "70000"),
        ("VELLUM_S3_BUCKET", "ab"),
        ("VELLUM_LOG_FORMAT", "xml"),
    ],
)
def test_bad_config_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=variable):
        Config.from_env({variable: value})


def test_a_head_sorts_after_the_versions_and_is_no_version() -> None:
    document = "a" * 32
    versions = [ids.record_key(document, version) for version in (1, 999_999_999)]
    assert all(ids.is_version_key(key) for key in versions)
    assert not ids.is_version_key(ids.latest_key(document))
    assert sorted([ids.latest_key(document), *versions])[-1] == ids.latest_key(document)
