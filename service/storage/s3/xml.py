"""The few XML documents Vellum's S3 calls read and write, with `xml.etree.ElementTree`.

S3 answers in the namespace http://s3.amazonaws.com/doc/2006-03-01/ (some servers omit
it): elements are matched by their local name. Answers come from the configured
endpoint, which Vellum trusts with its data; expat expands no external entities and
bounds entity expansion, so a malformed answer is at worst a StorageError.
"""

from __future__ import annotations

import urllib.parse
from datetime import datetime
from typing import NamedTuple
from xml.etree import ElementTree

from service.errors import StorageError


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _children(element: ElementTree.Element, name: str) -> list[ElementTree.Element]:
    return [child for child in element if _local(child.tag) == name]


def _text(element: ElementTree.Element, name: str) -> str:
    """The text of the first child called `name`, "" if there is none."""
    for child in element:
        if _local(child.tag) == name:
            return child.text or ""
    return ""


def _root(body: bytes) -> ElementTree.Element:
    try:
        return ElementTree.fromstring(body)  # noqa: S314 (the configured endpoint; see above)
    except ElementTree.ParseError as exc:
        raise StorageError(f"S3 answered XML that does not parse: {exc}") from exc


def error_code(body: bytes) -> str:
    """The `<Code>` of an `<Error>` answer; "" for an empty or unreadable body (a HEAD's)."""
    try:
        root = _root(body)
    except StorageError:
        return ""
    return _text(root, "Code") if _local(root.tag) == "Error" else ""


class ListPage(NamedTuple):
    """One ListObjectsV2 answer: keys, common prefixes, the token of the next page."""

    keys: list[str]
    prefixes: list[str]
    next_token: str | None


def list_objects_page(body: bytes) -> ListPage:
    """A ListObjectsV2 answer asked for with `encoding-type=url` (keys come URL-encoded,
    as botocore asks for and decodes them, so any key survives XML)."""
    root = _root(body)
    truncated = _text(root, "IsTruncated") == "true"
    return ListPage(
        keys=[
            urllib.parse.unquote_plus(_text(item, "Key")) for item in _children(root, "Contents")
        ],
        prefixes=[
            urllib.parse.unquote_plus(_text(item, "Prefix"))
            for item in _children(root, "CommonPrefixes")
        ],
        next_token=_text(root, "NextContinuationToken") if truncated else None,
    )


class Upload(NamedTuple):
    key: str
    upload_id: str
    initiated: float  # seconds since the epoch


class UploadsPage(NamedTuple):
    """One ListMultipartUploads answer and the markers of the next page."""

    uploads: list[Upload]
    next_markers: dict[str, str] | None  # query parameters of the next page


def uploads_page(body: bytes) -> UploadsPage:
    root = _root(body)
    uploads = [
        Upload(
            key=_text(item, "Key"),
            upload_id=_text(item, "UploadId"),
            initiated=datetime.fromisoformat(_text(item, "Initiated")).timestamp(),
        )
        for item in _children(root, "Upload")
    ]
    if _text(root, "IsTruncated") != "true":
        return UploadsPage(uploads, None)
    markers = {
        "key-marker": _text(root, "NextKeyMarker"),
        "upload-id-marker": _text(root, "NextUploadIdMarker"),
    }
    return UploadsPage(uploads, markers)


def upload_id(body: bytes) -> str:
    """The `<UploadId>` of a CreateMultipartUpload answer."""
    return _text(_root(body), "UploadId")


def complete_upload(parts: list[tuple[int, str]]) -> bytes:
    """The body of CompleteMultipartUpload: each part's number and ETag, in order."""
    root = ElementTree.Element(
        "CompleteMultipartUpload", xmlns="http://s3.amazonaws.com/doc/2006-03-01/"
    )
    for number, etag in parts:
        part = ElementTree.SubElement(root, "Part")
        ElementTree.SubElement(part, "PartNumber").text = str(number)
        ElementTree.SubElement(part, "ETag").text = etag
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=False)
    return body
