"""`vellum export --bagit DIR`: each document as a BagIt bag (RFC 8493), checked.

One bag per document, in `DIR/<document id>/`:

    bagit.txt                  BagIt-Version: 1.0, tag files in UTF-8
    bag-info.txt               External-Identifier (the id), Bagging-Date (UTC),
                               Payload-Oxum, Bag-Software-Agent, and Vellum-* fields:
                               the original's SHA-256, media type and size, the record
                               versions, the record schema, the provenance IRI base
    manifest-sha256.txt        every payload file, in both algorithms
    manifest-sha512.txt
    tagmanifest-sha256.txt     bagit.txt, bag-info.txt and the two manifests
    tagmanifest-sha512.txt
    data/original              the exact original bytes; no extension, because its media
                               type (in bag-info.txt) is the authority, not a guessed name
    data/record-v<N>.json      every record version N = 1, 2, …, byte for byte as archived
    data/provenance.jsonld     the PROV-O JSON-LD of the latest version; its IRIs are under
                               `urn:vellum:archive`, since no server is involved

Nothing is written unchecked: the original must hash to the SHA-256 its records name
(every version must name the same one), and each record to the SHA-256 stored with it,
holding the id and version its key says. After writing, every payload file is read back
and hashed again. Any mismatch leaves no bag for that document, which is reported
(`failed`), and the export goes on with the others.

A bag is built in `DIR/.<id>.partial-<random>/`, fsynced, and renamed to `DIR/<id>` only
when complete, so `DIR/<id>` is always a whole bag; an interrupted export leaves only a
`.partial-` directory, which is safe to delete. A document whose bag exists is skipped,
never replaced: to export it again (say after `vellum reprocess`), delete its directory.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import shutil
from collections.abc import AsyncIterable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from service import __version__
from service.archive import Archive
from service.errors import IntegrityError, StorageUnavailable, VellumError
from service.jobs.reprocess import Failure
from service.jobs.takers import each
from service.provenance import prov_document
from service.types import SCHEMA, Record, record_decoder

PROVENANCE_BASE = "urn:vellum:archive"
ALGORITHMS = ("sha256", "sha512")
Outcome = Literal["written", "skipped", "failed"]


class ExportReport(msgspec.Struct, frozen=True):
    """Counts, and the failed documents only (`on_bag` hears of each as it is done)."""

    written: int  # bags this export made
    skipped: int  # documents whose bag existed already
    failed: list[Failure]  # documents that could not be bagged, with why (no bag left)


class _Bag(msgspec.Struct, frozen=True):
    files: dict[str, bytes]  # name under data/ -> bytes
    sha256: dict[str, str]  # name under data/ -> the digest the archive vouches for
    info: dict[str, str]  # bag-info.txt, without Payload-Oxum


async def export_bags(
    archive: Archive,
    document_ids: Iterable[str] | AsyncIterable[str],
    target: Path,
    *,
    concurrency: int = 8,
    on_bag: Callable[[str, Outcome], None] | None = None,
) -> ExportReport:
    """Write a bag per document under `target`. A document that cannot be bagged (its
    bytes fail their digests, a record unreadable or gone) is reported and leaves no
    bag, and the others go on; only storage going away stops the run."""
    try:
        await asyncio.to_thread(target.mkdir, parents=True, exist_ok=True)
    except OSError as exc:
        raise VellumError(f"cannot create the export directory {target}: {exc}") from exc
    done: dict[Outcome, int] = {"written": 0, "skipped": 0, "failed": 0}
    failed: list[Failure] = []

    async def one(document_id: str) -> None:
        outcome: Outcome = "skipped"
        try:
            if not await asyncio.to_thread((target / document_id).exists):
                bag = await _collect(archive, document_id)
                outcome = await asyncio.to_thread(_write_bag, target, document_id, bag)
        except StorageUnavailable:
            raise
        except VellumError as error:
            failed.append(Failure(document_id, f"{error.slug}: {error.detail}"))
            outcome = "failed"
        done[outcome] += 1
        if on_bag is not None:
            on_bag(document_id, outcome)

    await each(document_ids, one, concurrency)
    return ExportReport(
        written=done["written"],
        skipped=done["skipped"],
        failed=sorted(failed, key=lambda failure: failure.id),
    )


async def _collect(archive: Archive, document_id: str) -> _Bag:
    """Every version and the original, each checked against the archive's digests."""
    versions = await archive.versions(document_id)
    # Each read is checked by the store against the SHA-256 kept with the object.
    stored = await asyncio.gather(*(archive.stored_record(document_id, v) for v in versions))
    files: dict[str, bytes] = {}
    sha256: dict[str, str] = {}
    records: list[Record] = []
    for item in stored:
        name = f"record-v{item.version}.json"
        where = f"record version {item.version} of {document_id}"
        try:
            record = record_decoder.decode(item.data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"{where} is not a readable record: {exc}") from exc
        if (record.id, record.version) != (document_id, item.version):
            raise IntegrityError(f"{where} holds {record.id} version {record.version}")
        files[name], sha256[name] = item.data, hashlib.sha256(item.data).hexdigest()
        records.append(record)
    latest = records[-1]
    if {record.original.sha256 for record in records} != {latest.original.sha256}:
        raise IntegrityError(f"the record versions of {document_id} name different originals")
    files["original"] = await archive.original(latest)  # IntegrityError unless it matches
    sha256["original"] = latest.original.sha256
    provenance = prov_document(latest, PROVENANCE_BASE)
    files["provenance.jsonld"] = msgspec.json.format(msgspec.json.encode(provenance)) + b"\n"
    sha256["provenance.jsonld"] = hashlib.sha256(files["provenance.jsonld"]).hexdigest()
    info = {
        "External-Identifier": document_id,
        "External-Description": f"Vellum document {document_id}: original, records, provenance",
        "Bagging-Date": datetime.now(UTC).date().isoformat(),
        "Bag-Software-Agent": f"vellum {__version__}",
        "Vellum-Original-SHA256": latest.original.sha256,
        "Vellum-Original-Media-Type": latest.original.media_type,
        "Vellum-Original-Size": str(latest.original.size),
        "Vellum-Record-Versions": ", ".join(str(v) for v in versions),
        "Vellum-Record-Schema": SCHEMA,
        "Vellum-Provenance-Base": PROVENANCE_BASE,
    }
    if latest.source.url is not None:
        info["Vellum-Source-URL"] = latest.source.url
    return _Bag(files=files, sha256=sha256, info=info)


def _write_bag(target: Path, document_id: str, bag: _Bag) -> Outcome:
    """Build the bag beside its place, check it, and rename it in; "skipped" if one exists."""
    final = target / document_id
    try:
        work = target / f".{document_id}.partial-{secrets.token_hex(8)}"
        work.mkdir()  # with the umask's permissions, unlike mkdtemp
    except OSError as exc:
        raise VellumError(f"cannot write a bag in {target}: {exc}") from exc
    try:
        (work / "data").mkdir()
        for name, content in bag.files.items():
            _write(work / "data" / name, content)
        _fsync(work / "data")
        oxum = f"{sum(len(content) for content in bag.files.values())}.{len(bag.files)}"
        info = {**bag.info, "Payload-Oxum": oxum}
        tags = {
            "bagit.txt": "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n",
            "bag-info.txt": "".join(f"{key}: {_one_line(value)}\n" for key, value in info.items()),
        }
        for algorithm in ALGORITHMS:
            tags[f"manifest-{algorithm}.txt"] = _manifest(algorithm, bag.files, "data/")
        for name, text in tags.items():
            _write(work / name, text.encode())
        tag_bytes = {name: text.encode() for name, text in tags.items()}
        for algorithm in ALGORITHMS:
            _write(work / f"tagmanifest-{algorithm}.txt", _manifest(algorithm, tag_bytes).encode())
        for name, expected in bag.sha256.items():  # what is on disk, not what we meant
            if hashlib.sha256((work / "data" / name).read_bytes()).hexdigest() != expected:
                raise IntegrityError(
                    f"data/{name} of {document_id} does not match the archive after writing"
                )
        _fsync(work)
        if final.exists():
            shutil.rmtree(work)
            return "skipped"
        work.rename(final)
    except OSError as exc:
        shutil.rmtree(work, ignore_errors=True)
        if final.is_dir() and any(final.iterdir()):
            return "skipped"  # another export renamed its bag in first
        raise VellumError(f"cannot write the bag of {document_id} in {target}: {exc}") from exc
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _fsync(target)  # make the rename durable
    return "written"


def _manifest(algorithm: str, files: dict[str, bytes], prefix: str = "") -> str:
    return "".join(
        f"{hashlib.new(algorithm, content).hexdigest()}  {prefix}{name}\n"
        for name, content in sorted(files.items())
    )


def _one_line(value: str) -> str:
    """bag-info.txt values here are single lines: line breaks become spaces."""
    return " ".join(value.splitlines())


def _write(path: Path, data: bytes) -> None:
    with path.open("xb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
