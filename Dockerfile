# syntax=docker/dockerfile:1.7
# Every image of the platform from one Dockerfile: a service image holds that service and the
# shared library, nothing else; the seed image holds kap_local (the demo seed job).
# Build from the repository root, naming the service and its CONTRACT port (section 4):
#   docker build --build-arg SERVICE=intake --build-arg HTTP_PORT=8001 \
#     -t kap-intake:$(uv version --package kap-intake --short) .
#   docker build --target seed --build-arg PACKAGE=kap-local --build-arg PACKAGE_DIR=deploy/local \
#     -t kap-seed:local .
# A service image runs one process (uvicorn serving HTTP + the Kafka consumer + the outbox
# relay; the console: pages + the live Kafka reader), configured only through the environment
# (CONTRACT section 5); runs as uid 10001 and keeps its writable state in VAR_DIR, so the root
# filesystem can be mounted read-only. docker-compose.yml passes each service's arguments.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
# SERVICE names the member; PACKAGE and PACKAGE_DIR follow from it (the seed overrides both).
ARG SERVICE
ARG PACKAGE=kap-${SERVICE}
ARG PACKAGE_DIR=services/${SERVICE}
RUN pip install --no-cache-dir uv==0.13.8
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /app
# Dependency layer: only the lock file and manifests, so code changes reuse it.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/pyproject.toml
COPY ${PACKAGE_DIR}/pyproject.toml ${PACKAGE_DIR}/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package ${PACKAGE}
# Then the code: the shared library and this member (sources only, not their tests).
COPY shared/src shared/src
COPY ${PACKAGE_DIR}/src ${PACKAGE_DIR}/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package ${PACKAGE}

# What every runtime image shares: the unprivileged user and the built virtualenv.
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 kap \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/kap --no-create-home kap \
    && mkdir -p /var/lib/kap && chown 10001:10001 /var/lib/kap
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

# One-shot job that seeds a demo clinic network through scheduling's public API
# (idempotent: 409 "already exists" counts as done). Development and demo only.
# Needs SCHEDULING_URL and KAP_JWT_SECRET (HS256: the services must share it).
FROM runtime AS seed
LABEL org.opencontainers.image.title="kap-seed"
USER 10001:10001
HEALTHCHECK NONE
CMD ["python", "-m", "kap_local.seed"]

# A service (the default target, so it is the last stage).
FROM runtime AS service
ARG SERVICE
ARG HTTP_PORT
LABEL org.opencontainers.image.title="kap-${SERVICE}" \
      org.opencontainers.image.description="KAP care-coordination platform: the ${SERVICE} service"
ENV HTTP_HOST=0.0.0.0 \
    HTTP_PORT=${HTTP_PORT} \
    VAR_DIR=/var/lib/kap \
    LOG_FORMAT=json \
    KAP_SERVICE_MODULE=kap_${SERVICE}
# Numeric, so Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
WORKDIR /var/lib/kap
EXPOSE ${HTTP_PORT}
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"HTTP_PORT\"]}/healthz', timeout=2)"]
# Exec form does not expand build arguments, so the shell reads the module from the
# environment and `exec`s: python replaces it and is the one process (PID 1, gets SIGTERM).
CMD ["/bin/sh", "-c", "exec python -m \"$KAP_SERVICE_MODULE\""]
