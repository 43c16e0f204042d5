"""The XML the S3 adapter reads: listings with URL-encoded keys, uploads, errors."""

from __future__ import annotations

import pytest

from service.errors import StorageError
from service.storage.s3 import xml

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def test_a_listing_decodes_its_keys_and_gives_the_next_token_only_when_truncated() -> None:
    page = xml.list_objects_page(
        f"<ListBucketResult {NS}><IsTruncated>true</IsTruncated>"
        "<NextContinuationToken>t+/=</NextContinuationToken>"
        "<Contents><Key>a%2Fb+c%25</Key></Contents>"
        "<CommonPrefixes><Prefix>p%2F</Prefix></CommonPrefixes></ListBucketResult>".encode()
    )
    assert page == xml.ListPage(keys=["a/b c%"], prefixes=["p/"], next_token="t+/=")
    last = xml.list_objects_page(
        b"<ListBucketResult><IsTruncated>false</IsTruncated>"
        b"<NextContinuationToken>x</NextContinuationToken>"
        b"</ListBucketResult>"
    )
    assert last.next_token is None


def test_open_uploads_and_their_markers() -> None:
    page = xml.uploads_page(
        f"<ListMultipartUploadsResult {NS}><IsTruncated>true</IsTruncated>"
        "<NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker>"
        "<Upload><Key>imports/x</Key><UploadId>id1</UploadId>"
        "<Initiated>2026-12-07T14:00:00.000Z</Initiated></Upload>"
        "</ListMultipartUploadsResult>".encode()
    )
    assert page.uploads == [xml.Upload("imports/x", "id1", 1796652000.0)]
    assert page.next_markers == {"key-marker": "k", "upload-id-marker": "u"}


def test_error_codes_of_bodies_with_and_without_an_error() -> None:
    assert xml.error_code(f"<Error {NS}><Code>SlowDown</Code></Error>".encode()) == "SlowDown"
    assert xml.error_code(b"") == ""  # a HEAD's error has no body
    assert xml.error_code(b"<CompleteMultipartUploadResult/>") == ""


def test_an_answer_that_does_not_parse_is_a_storage_error() -> None:
    with pytest.raises(StorageError, match="does not parse"):
        xml.list_objects_page(b"<ListBucketResult")
