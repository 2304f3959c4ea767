"""Secrets never reach output: shard passwords and the Temporal API key stay out of the worker's
start-up failure and of the CLI's --json errors, whatever fails."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.cli_runs import CliResult, run_cli
from transfers.devtools.embedded_pg import free_port

WORKER_SCRIPT = Path(__file__).parents[2] / "worker.py"
PASSWORD = "pw-9f3a1c"
API_KEY = "key-7d2e4b6a"


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
