"""The security tests reuse the workflow tests' fixtures: real shards, a worker, accounts."""

from __future__ import annotations

from tests.workflows import conftest as workflow_fixtures

# pytest finds fixtures by name in a conftest module: these are the workflow tests' own
worker_router = workflow_fixtures.worker_router
settings = workflow_fixtures.settings
client = workflow_fixtures.client
activities = workflow_fixtures.activities
worker = workflow_fixtures.worker
transfers = workflow_fixtures.transfers
accounts = workflow_fixtures.accounts
request_for = workflow_fixtures.request_for
