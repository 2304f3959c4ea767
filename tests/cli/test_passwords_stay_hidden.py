"""A shard password never reaches output: not the --json errors of `audit`, `db upgrade` and
`accounts list` whatever is wrong with the DSN, nor a running worker's log. (The worker's
start-up failure and `submit --json`: tests/cli/test_secrets_stay_hidden.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.engine import make_url
from temporalio.client import Client

from tests.support.refusals import CliCase, run_cases
from tests.support.workers import Accounts
from tests.ops.test_worker_process import WorkerProcess
from transfers.client import TransfersClient
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

PASSWORD = "pw-4c1d9e"  # in a DSN that cannot be parsed; the live shards' own passwords too
COMMANDS = {
    "audit": ("audit", "--json"),
    "db upgrade": ("db", "upgrade", "--json"),
    "accounts list": ("accounts", "list", "--json"),
}


def _changed(dsn: str, *, port: int | None = None, database: str | None = None) -> str:
    url = make_url(dsn)
    url = url.set(port=port or url.port, database=database or url.database)
    return url.render_as_string(hide_password=False)


def _passwords(dsns: list[str]) -> list[str]:
    passwords = [make_url(dsn).password for dsn in dsns]
    assert all(passwords), "the test shards ask for a password"
    return [str(password) for password in passwords]


def _wrong_dsns(live: str) -> dict[str, tuple[str, int, str]]:
    """DSN kind -> (DSN with a password, exit code, what the error says)."""
    return {
        "dead port": (_changed(live, port=free_port()), 1, "Connection refused"),
        "no such database": (_changed(live, database="nope"), 1, 'database "nope"'),
        "unparsable": (f"postgresql://ledger:{PASSWORD}@db:port/ledger", 2, "SHARD_DSNS"),
    }


def test_no_password_in_json_errors(dsns: list[str], tmp_path: Path) -> None:
    wrong = _wrong_dsns(dsns[0])
    cases = {
        (command, kind): CliCase(args, message, exit_code, {"SHARD_DSNS": dsn})
        for command, args in COMMANDS.items()
        for kind, (dsn, exit_code, message) in wrong.items()
    }
    results = run_cases(cases, dict(os.environ), tmp_path)

    for case, result in results.items():
        assert result.exit_code == cases[case].exit_code, (case, result)
        assert cases[case].message in result.json()["error"]["message"], (case, result)
        for secret in [PASSWORD, *_passwords(dsns)]:
            assert secret not in result.stdout + result.stderr, (case, result)


async def test_a_running_worker_never_logs_the_password(
    client: Client,
    settings: Settings,
    accounts: Accounts,
    request_for: Callable[..., TransferRequest],
    tmp_path: Path,
) -> None:
    worker = WorkerProcess(settings, tmp_path)
    process = await worker.start_polling()
    transfers = TransfersClient(client, settings)
    try:
        source = await accounts.open(100, shard=0)
        target = await accounts.open(0, shard=1)
        done = await transfers.submit(request_for(source, target, 60))
        refused = await transfers.submit(request_for(source, target, 60))
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.wait(), timeout=30)

    assert (done.status, refused.status) == (TransferStatus.COMPLETED, TransferStatus.FAILED)
    log = worker.log.read_text()
    assert "InsufficientFunds" in log  # the refusal was logged, with no password around it
    for secret in _passwords(settings.shard_dsns.split(",")):
        assert secret not in log
