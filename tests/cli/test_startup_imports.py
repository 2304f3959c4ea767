"""What a command imports before it is done (issue 13): `transfers --help` neither settings nor the
shards nor Temporal, a Temporal command not the shards, a shard command not Temporal.

Structural, not timed: the start-up figures are in BENCHMARKS.md ("CLI start-up").
"""

from __future__ import annotations

import os
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from shards.ledger import Ledger
from shards.router import ShardRouter
from tests.shards.support import NewId
from tests.support.cli_runs import CliResult, run_cli

SETTINGS = {"pydantic", "pydantic_settings"}
SHARDS = {"sqlalchemy", "psycopg", "alembic"}
TEMPORAL = {"temporalio", "cryptography"}


def run_importing(
    args: tuple[str, ...], env: dict[str, str], cwd: Path
) -> tuple[CliResult, set[str]]:
    """The command's result, and the top-level packages it imported (`python -X importtime`)."""
    result = run_cli(args, {**env, "PYTHONPROFILEIMPORTTIME": "1"}, cwd)
    imported, other = set(), []
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            imported.add(line.rsplit("|", 1)[1].strip().split(".")[0])
        else:
            other.append(line)
    return CliResult(result.exit_code, result.stdout, "\n".join(other)), imported


def test_help_imports_neither_settings_nor_shards_nor_temporal(tmp_path: Path) -> None:
    result, imported = run_importing(("--help",), dict(os.environ), tmp_path)

    assert result.exit_code == 0, result
    assert "accounts" in result.stdout
    assert {"typer", "rich"} <= imported
    assert imported & (SETTINGS | SHARDS | TEMPORAL) == set()


async def test_a_shard_command_does_not_import_temporal(
    cli_env: dict[str, str], tmp_path: Path, router: ShardRouter, new_id: NewId
) -> None:
    account = new_id("acc")
    await Ledger(router).open_account(account, "USD")

    result, imported = run_importing(("accounts", "show", account, "--json"), cli_env, tmp_path)

    assert result.exit_code == 0, result
    assert result.json()["account_id"] == account
    assert SHARDS - {"alembic"} <= imported
    assert imported & (TEMPORAL | {"alembic"}) == set()


def test_a_temporal_command_does_not_import_the_shards(
    temporal_env: WorkflowEnvironment, tmp_path: Path, new_id: NewId
) -> None:
    address = temporal_env.client.service_client.config.target_host
    env = {**os.environ, "TEMPORAL_ADDRESS": address}
    env.pop("SHARD_DSNS", None)
    transfer_id = new_id("t")

    result, imported = run_importing(("status", transfer_id), env, tmp_path)

    # An unknown id: connected, asked, answered (the SDK and the models were needed for that).
    assert result.exit_code == 1, result
    assert transfer_id in result.stderr
    assert "temporalio" in imported
    assert imported & SHARDS == set()
