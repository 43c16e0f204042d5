# Vellum's container image (docs/operations.md, "Containers").
#
#   make image                 # wheelhouse/ from requirements/runtime.txt, then docker build
#   # or by hand: make wheelhouse && docker build -t vellum:latest .
#   #   --build-arg BASE_IMAGE=vellum-base:bookworm  for a local Debian base (docs/operations.md)
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

# The base: any Debian-like image with python3 (3.11) and its venv module. The default
# is the official one; `make image-test` builds one with debootstrap from a Debian mirror
# when Docker Hub cannot be reached (docs/operations.md, "Containers").
ARG BASE_IMAGE=python:3.11-slim-bookworm

# Builder: a venv with exactly the locked runtime, installed offline from the wheelhouse
# (`make wheelhouse`: every wheel of requirements/runtime.txt, hash-checked, plus
# Vellum's own wheel). No index, no network, no compiler: a wheel whose hash the lock
# does not list is refused.
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# pip lives in a venv of its own (/opt/pip, left behind in this stage) and installs into
# /opt/venv, which gets no pip or setuptools: nothing at run time needs them.
RUN python3 -m venv /opt/pip && python3 -m venv --without-pip /opt/venv

WORKDIR /src
# Only the lock and the wheels (.dockerignore keeps everything else out of the context).
# The dependencies with --require-hashes: a layer that stays cached until the lock moves.
# pip writes the .pyc files itself, so the read-only root costs no compile at start-up.
# vellum.pth puts /opt/vellum (below) on the venv's path.
COPY requirements/runtime.txt ./requirements/runtime.txt
COPY wheelhouse/deps ./wheelhouse/deps
RUN /opt/pip/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --find-links /src/wheelhouse/deps --require-hashes -r requirements/runtime.txt \
    && echo /opt/vellum > "$(/opt/venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/vellum.pth"
# Then Vellum itself, without dependencies (its wheel, built from this tree, is the one
# file the lock has no hash for), in a directory of its own: a change to Vellum rebuilds
# a layer of 1 MB and leaves the dependencies' 60 MB cached.
COPY wheelhouse/vellum ./wheelhouse/vellum
RUN /opt/pip/bin/python -m pip --python /opt/venv/bin/python install --no-cache-dir \
        --no-index --no-deps --target /opt/vellum /src/wheelhouse/vellum/vellum-*.whl

# Runtime: the venv and Vellum and nothing else; no compilers, no pip, no wheels, no
# source tree.
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="vellum" \
      org.opencontainers.image.description="Article ingestion and archival service over S3-compatible storage" \
      org.opencontainers.image.licenses="Apache-2.0"

# A fixed numeric uid/gid, so Kubernetes' runAsNonRoot can verify it.
RUN groupadd --system --gid 10001 vellum \
    && useradd --system --uid 10001 --gid vellum --home-dir /var/lib/vellum \
        --shell /usr/sbin/nologin vellum \
    && install -d -o vellum -g vellum -m 0750 /var/lib/vellum

COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/vellum /opt/vellum

ENV PATH=/opt/vellum/bin:/opt/venv/bin:$PATH \
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
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % (os.environ.get('VELLUM_PORT') or '8080'), timeout=4)"]

# `docker run IMAGE` serves; `docker run IMAGE import ...` runs another subcommand.
ENTRYPOINT ["vellum"]
CMD ["serve"]
