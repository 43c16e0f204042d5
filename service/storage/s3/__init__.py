"""The S3 adapter: the only package that imports boto3 and botocore.

`store.S3ObjectStore` is the storage port over S3 requests that `transport` signs with
botocore's SigV4 signer and credential chain and sends with aiohttp (no thread hop);
`xml` reads and writes the few XML documents involved; `guarantees` is the start-up
probe of SPEC §2; `settings` holds `S3Settings` and
`s3_client`, a boto3 client with the same settings (the benchmark's ceiling).
"""

from service.storage.s3.settings import S3Settings, s3_client
from service.storage.s3.store import PART_BYTES, S3ObjectStore
from service.storage.s3.transport import PENDING_PER_CONNECTION

__all__ = ["PART_BYTES", "PENDING_PER_CONNECTION", "S3ObjectStore", "S3Settings", "s3_client"]
