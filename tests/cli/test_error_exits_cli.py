"""Exit 2 for bad input, 1 for a server that does not answer: one line each, never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.conftest import CliMany, assert_one_clean_line, run_cli


def test_submit_refuses_malformed_transfers_before_contacting_temporal(cli_many: CliMany) -> None:
    base = ("submit", "--from", "acc-a", "--currency", "USD")
    runs = [
        (*base, "--to", "acc-a", "--amount", "1"),
        (*base, "--to", "acc-b", "--amount", "12.345"),
        (*base, "--to", "acc-b", "--amount", "1", "--id", "no spaces allowed"),
        (*base, "--to", "acc-b", "--amount", "1", "--memo", "m" * 201),
        ("submit", "--from", "acc-a", "--to", "acc-b", "--amount", "1", "--currency", "ZZZ"),
        ("list", "--status", "SOMEWHERE"),
    ]
    for result in cli_many(runs):
        assert_one_clean_line(result, exit_code=2)


def test_unusable_settings_are_bad_input(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "stack.json").write_text("{not json")
    environment = {**os.environ, "SHARD_DSNS": "not a dsn"}
    for args in (("accounts", "list"), ("audit", "--stack", str(garbage))):
        assert_one_clean_line(run_cli(args, environment, tmp_path), exit_code=2)
    missing = ("accounts", "list", "--stack", str(tmp_path / "nowhere"))
    message = assert_one_clean_line(run_cli(missing, environment, tmp_path), exit_code=2)
    assert "is `transfers dev` running?" in message


def test_an_unreachable_shard_is_a_failure(tmp_path: Path) -> None:
    environment = {**os.environ, "SHARD_DSNS": "postgresql://postgres@127.0.0.1:1/postgres"}
    message = assert_one_clean_line(run_cli(("audit",), environment, tmp_path), exit_code=1)
    assert "unavailable" in message


def test_an_unreachable_temporal_is_a_failure(cli_env: dict[str, str], tmp_path: Path) -> None:
    environment = {**cli_env, "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    submit = ("submit", "--from", "acc-a", "--to", "acc-b", "--amount", "1", "--currency", "USD")
    message = assert_one_clean_line(run_cli(submit, environment, tmp_path), exit_code=1)
    assert "127.0.0.1:1" in message
