"""Secrets never reach output: shard passwords and the Temporal API key stay out of the worker's
start-up failure and its log while it runs, and of the CLI's --json errors (`submit`, `accounts`,
`audit`, `db upgrade`), whatever is wrong with the DSN or whatever fails."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from temporalio.client import Client

from tests.ops.test_worker_process import WorkerProcess
from tests.support.cli_runs import CliResult, run_cli
from tests.support.refusals import CliCase, run_cases
from tests.support.workers import Accounts
from transfers.client import TransfersClient
from transfers.devtools.embedded_pg import free_port
from transfers.settings import Settings
from workflows.models import TransferRequest, TransferStatus

pytestmark = pytest.mark.security
WORKER_SCRIPT = Path(__file__).parents[2] / "worker.py"
PASSWORD = "pw-9f3a1c"  # in settings and in a DSN that cannot be parsed; the live shards' own too
API_KEY = "key-7d2e4b6a"
COMMANDS = {
    "audit": ("audit", "--json"),
    "db upgrade": ("db", "upgrade", "--json"),
    "accounts list": ("accounts", "list", "--json"),
}


@pytest.fixture
def secret_env() -> dict[str, str]:
    """Settings whose Temporal and shard are both dead ports, with a password and an API key."""
    return {
        "PATH": "/usr/bin:/bin",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "TEMPORAL_API_KEY": API_KEY,
        "SHARD_DSNS": f"postgresql://transfers:{PASSWORD}@127.0.0.1:{free_port()}/ledger",
        "STARTUP_TIMEOUT_S": "1",
    }


def _worker(env: dict[str, str], cwd: Path) -> CliResult:
    completed = subprocess.run(
        [sys.executable, str(WORKER_SCRIPT)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
    return CliResult(completed.returncode, completed.stdout, completed.stderr)


def test_no_secret_in_failures(secret_env: dict[str, str], tmp_path: Path) -> None:
    submit = ("submit", "--from", "acc-1", "--to", "acc-2", "--amount", "1.00", "--json")
    with ThreadPoolExecutor() as pool:
        worker = pool.submit(_worker, secret_env, tmp_path)
        submitted = pool.submit(run_cli, submit, secret_env, tmp_path)
        shown = pool.submit(run_cli, ("accounts", "show", "acc-1", "--json"), secret_env, tmp_path)
        results = [worker.result(), submitted.result(), shown.result()]

    assert [result.exit_code for result in results] == [1, 1, 1]
    assert "is unreachable" in results[0].stderr
    assert "shard-0 at postgresql://127.0.0.1:" in results[0].stderr  # which server, no user
    for result in results[1:]:
        assert json.loads(result.stdout)["error"]["type"] in {
            "TemporalUnavailable",
            "ShardUnavailable",
        }
    for result in results:
        assert PASSWORD not in result.stdout + result.stderr
        assert API_KEY not in result.stdout + result.stderr


def test_a_missing_certificate_is_a_settings_error(
    secret_env: dict[str, str], tmp_path: Path
) -> None:
    missing = tmp_path / "ca.pem"
    result = _worker({**secret_env, "TEMPORAL_TLS_CA": str(missing)}, tmp_path)

    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: TEMPORAL_TLS_CA: Path does not point to a file")
    assert API_KEY not in result.stderr


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
