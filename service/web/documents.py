"""Handlers of /v1/documents: ingest one article, read a record, read an original."""

from __future__ import annotations

import hashlib

import msgspec
from aiohttp import web

from service import media, submission
from service.digests import digest_field, verify_content_digest
from service.errors import UnknownCharset, UnsupportedMediaType
from service.ids import parse_id, parse_version
from service.ingest import Arrival
from service.provenance import prov_document
from service.types import DocumentReceipt, VersionEntry, VersionList
from service.web.body import read_body
from service.web.typedefs import DOCUMENT_ID, KEY_ID, METRICS, REQUEST_ID, SERVICES

_json = msgspec.json.Encoder()
JSON = media.APPLICATION_JSON
_IMMUTABLE = "public, max-age=31536000, immutable"
NEAR_DUPLICATE_DISTANCE = 3  # SPEC §9: the 201 names the documents within 3 bits


async def create_document(request: web.Request) -> web.Response:
    config = request.app[SERVICES].config
    declared = media.parse_media_type(request.headers.get("Content-Type"))
    if declared.essence == media.TEXT_PLAIN:
        charset = media.resolve_charset(declared.charset)  # 415 before reading the body
    elif declared.essence == media.APPLICATION_JSON:
        if declared.charset not in (None, "utf-8"):
            raise UnknownCharset("application/json is always UTF-8", charset=declared.charset)
    else:
        raise UnsupportedMediaType(
            f"{declared.essence!r} is not accepted; send text/plain or application/json",
            supported=[media.TEXT_PLAIN, media.APPLICATION_JSON],
        )

    body = await read_body(
        request,
        config.max_body_bytes,
        seconds=config.body_timeout_seconds,
        budget=config.max_body_bytes_in_flight,
    )
    body_sha256 = hashlib.sha256(body).digest() if declared.essence == media.TEXT_PLAIN else None
    if (content_digest := request.headers.get("Content-Digest")) is not None:
        verify_content_digest(content_digest, body, sha256=body_sha256)
    if declared.essence == media.TEXT_PLAIN:
        verified = submission.from_text_body(body, charset, sha256=body_sha256)
    else:
        verified = submission.from_json_document(body, max_metadata_bytes=config.max_metadata_bytes)

    outcome = await request.app[SERVICES].ingestor.ingest(
        verified,
        Arrival(channel="http", request_id=request[REQUEST_ID], submitter=request.get(KEY_ID)),
    )
    request[DOCUMENT_ID] = outcome.record.id
    request.app[METRICS].document_ingested(created=outcome.created, channel="http")
    near = await request.app[SERVICES].finder.near(outcome.record, NEAR_DUPLICATE_DISTANCE)
    receipt = DocumentReceipt.of(outcome.record, near)
    return web.Response(
        status=201 if outcome.created else 200,
        body=_json.encode(receipt),
        content_type=JSON,
        headers={"Location": receipt.links.self},
    )


async def get_document(request: web.Request) -> web.Response:
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    version = _asked_version(request)
    stored = await request.app[SERVICES].archive.stored_record(document_id, version)
    etag = f'"{document_id}.{stored.version}"'
    headers = {
        "ETag": etag,
        "Cache-Control": _IMMUTABLE if version is not None else "no-cache",
    }
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=stored.data, content_type=JSON, headers=headers)


async def get_original(request: web.Request) -> web.Response:
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    archive = request.app[SERVICES].archive
    record = await archive.record(document_id, 1)
    data = await archive.original(record)
    etag = f'"{record.original.sha256}"'
    headers = {
        "Content-Type": record.original.media_type,
        "Repr-Digest": digest_field(bytes.fromhex(record.original.sha256)),
        "ETag": etag,
        "Cache-Control": _IMMUTABLE,
        # The bytes are what a submitter sent: a browser must not sniff them into HTML.
        "X-Content-Type-Options": "nosniff",
    }
    if _matches(request.headers.get("If-None-Match"), etag):
        return web.Response(status=304, headers=headers)
    return web.Response(body=data, headers=headers)


async def get_versions(request: web.Request) -> web.Response:
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    versions = await request.app[SERVICES].archive.versions(document_id)
    body = VersionList(
        id=document_id,
        latest=versions[-1],
        versions=[
            VersionEntry(version=n, href=f"/v1/documents/{document_id}?version={n}")
            for n in versions
        ],
    )
    return web.Response(body=_json.encode(body), content_type=JSON)


async def get_provenance(request: web.Request) -> web.Response:
    """PROV-O JSON-LD of the latest record version (`?version=N` for another)."""
    document_id = parse_id(request.match_info["id"])
    request[DOCUMENT_ID] = document_id
    version = _asked_version(request)
    record = await request.app[SERVICES].archive.record(document_id, version)
    document = prov_document(record, str(request.url.origin()))
    return web.Response(body=_json.encode(document), content_type=media.APPLICATION_LD_JSON)


def _asked_version(request: web.Request) -> int | None:
    asked = request.query.get("version")
    return None if asked is None else parse_version(asked)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of If-None-Match against our (strong) ETag."""
    if if_none_match is None:
        return False
    candidates = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
    return "*" in candidates or etag in candidates
