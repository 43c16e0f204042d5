# Vellum's container image (docs/operations.md, "Containers").
#
#   docker build -t vellum:latest .
#   vellum keys create --scope ingest --scope read --keys-file keys.jsonl  # prints the key
#   chmod 0644 keys.jsonl                  # hashes only; the container's uid 10001 reads it
#   docker run --rm -p 127.0.0.1:8080:8080 \
#       --mount type=bind,src="$PWD/keys.jsonl",dst=/etc/vellum/keys.jsonl,readonly \
#       -e VELLUM_KEYS_FILE=/etc/vellum/keys.jsonl \
#       -e VELLUM_S3_ENDPOINT=http://s3.example:8333 -e VELLUM_S3_BUCKET=vellum \
#       -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY vellum:latest
#
# The image listens on 0.0.0.0:8080, which `vellum serve` binds only with API keys
# (VELLUM_KEYS_FILE, a file mounted at run time) or with VELLUM_ALLOW_PUBLIC_WITHOUT_KEYS=1;
# the image sets neither, so without a keys file it exits and says why. Neither keys nor
# S3 credentials are baked in: they come from the mounted file and the environment (the
# AWS chain) when the container starts.

# Builder: the project and its dependencies, installed from pyproject.toml into a venv.
FROM python:3.11-slim-bookworm AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv

WORKDIR /src
# Only what `pip install .` reads (.dockerignore keeps everything else out of the context).
COPY pyproject.toml README.md ./
COPY service ./service
RUN /opt/venv/bin/python -m pip install --no-cache-dir . \
    && /opt/venv/bin/python -m compileall -q /opt/venv

# Runtime: the venv and nothing else; no compilers, no pip cache, no source tree.
FROM python:3.11-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="vellum" \
      org.opencontainers.image.description="Article ingestion and archival service over S3-compatible storage" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 vellum \
    && useradd --system --uid 10001 --gid vellum --home-dir /var/lib/vellum \
        --shell /usr/sbin/nologin vellum \
    && install -d -o vellum -g vellum -m 0750 /var/lib/vellum

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VELLUM_HOST=0.0.0.0 \
    VELLUM_PORT=8080 \
    VELLUM_DATA_DIR=/var/lib/vellum \
    VELLUM_LOG_FORMAT=json

USER 10001:10001
WORKDIR /var/lib/vellum

EXPOSE 8080

# Liveness of the HTTP server, with the standard library only (no curl in the image).
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('VELLUM_PORT') or '8080'), timeout=4)"]

# `docker run IMAGE` serves; `docker run IMAGE import ...` runs another subcommand.
ENTRYPOINT ["vellum"]
CMD ["serve"]
