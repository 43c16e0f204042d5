"""SPEC §2's start-up probe: the endpoint keeps what the write protocol relies on.

A second conditional create of one key is refused (412), and a body whose SHA-256 does
not match its checksum header is refused (400). An endpoint that fails either would
silently overwrite or keep corrupt bytes: UnsafeStorage, naming the guarantee. Two fixed
probe keys, written again at every start.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING

from service.errors import UnsafeStorage
from service.storage.s3.transport import Transport, write_headers

if TYPE_CHECKING:
    from service.storage.s3.store import S3ObjectStore

PROTOCOL_PROBE_KEY = "_vellum/protocol-probe/conditional-create"
CHECKSUM_PROBE_KEY = "_vellum/protocol-probe/checksum"
_BODY = b"vellum write-protocol probe"


async def prove(store: S3ObjectStore, s3: Transport) -> None:
    digest = hashlib.sha256(_BODY).digest()
    endpoint = store.settings.endpoint
    await store.put_if_absent(PROTOCOL_PROBE_KEY, _BODY, sha256=digest, content_type="text/plain")
    if await store.put_if_absent(
        PROTOCOL_PROBE_KEY, _BODY, sha256=digest, content_type="text/plain"
    ):
        raise UnsafeStorage(
            f"the S3 endpoint {endpoint} accepted a second conditional create of one key "
            "(If-None-Match: * must get 412): it would silently overwrite archived "
            "objects, so Vellum refuses it"
        )
    headers = write_headers(digest, "text/plain")
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode("ascii")
    headers["x-amz-checksum-sha256"] = wrong
    answer = await s3.request(
        "PutObject",
        "PUT",
        store.prefix + CHECKSUM_PROBE_KEY,
        headers=headers,
        body=_BODY,
        accept=range(200, 500),  # any answer but a server error is the probe's result
    )
    if answer.status != 400:
        raise UnsafeStorage(
            f"the S3 endpoint {endpoint} answered HTTP {answer.status} to a body whose "
            "SHA-256 does not match its x-amz-checksum-sha256 (it must refuse it with "
            "400): it would keep corrupt bytes, so Vellum refuses it"
        )
