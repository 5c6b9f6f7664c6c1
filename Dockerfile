# reelforge: the API (`reelforge serve`, the default), workers (`reelforge worker`) and the
# schema migration (`reelforge db upgrade`) from one image. README, "Deploy".
#
#   docker build -t reelforge .
#   docker build --build-arg EXTRAS=postgres,s3,redis,google -t reelforge .
#   docker run -p 8000:8000 -v reelforge:/data reelforge          # API + worker on SQLite
#   docker run --env-file prod.env reelforge worker                # a worker
#
# Build arguments:
#   BASE_IMAGE   a Debian-family image with Python >= 3.11 as `python3` and its `venv`
#                module (the official slim image, or Debian's python3 + python3-venv)
#   EXTRAS       the package extras to install (postgres, s3, redis, google; `diffusers` in
#                Dockerfile.gpu)
#   PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_CERT
#                a package mirror and a CA bundle for pip (behind a TLS-inspecting proxy,
#                mount the host's certificates, e.g. `-v /etc/ssl/certs:/etc/host-certs:ro
#                --build-arg PIP_CERT=/etc/host-certs/ca-certificates.crt`)
ARG BASE_IMAGE=python:3.12-slim

# --- builder: a wheel of the project, installed with its extras into a virtualenv ---------
FROM ${BASE_IMAGE} AS builder
ARG PIP_CERT
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG EXTRAS="postgres,s3,redis"
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python3 -m venv /opt/reelforge
COPY pyproject.toml README.md ./
COPY src ./src
# The project's wheel with its extras; pip itself is not needed at run time.
RUN /opt/reelforge/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && wheel="$(echo /wheels/reelforge-*.whl)" \
    && /opt/reelforge/bin/pip install "${wheel}${EXTRAS:+[${EXTRAS}]}" \
    && /opt/reelforge/bin/reelforge --help >/dev/null \
    && /opt/reelforge/bin/pip uninstall --yes pip

# --- runtime: the virtualenv on the same base, a non-root user, data on a volume -----------
FROM ${BASE_IMAGE} AS runtime
ARG UID=10001
LABEL org.opencontainers.image.title="reelforge" \
      org.opencontainers.image.description="Self-hosted video generation with the AI/ML API video endpoints" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid "${UID}" reelforge \
    && useradd --no-log-init --uid "${UID}" --gid reelforge --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin reelforge \
    && mkdir -p /data \
    && chown reelforge:reelforge /data
COPY --from=builder /opt/reelforge /opt/reelforge
ENV PATH=/opt/reelforge/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    REELFORGE_HOME=/data \
    REELFORGE_HOST=0.0.0.0 \
    REELFORGE_PORT=8000
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
USER ${UID}:${UID}
# No curl in slim images: Python asks /health. (Workers serve no HTTP: compose turns this
# check off for them, Kubernetes uses its own probes.)
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('REELFORGE_PORT', '8000'), timeout=4)"]
ENTRYPOINT ["reelforge"]
CMD ["serve"]
