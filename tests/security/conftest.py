"""The security tests run on the workflow tests' fixtures: real shards, a worker, accounts."""

from __future__ import annotations

# Imported into this conftest, pytest offers them to the tests of this folder.
from tests.workflows.conftest import (  # noqa: F401
    accounts,
    activities,
    client,
    request_for,
    settings,
    worker,
    worker_router,
)
