"""The CLI refuses malformed input with exit 2 and a failed operation with exit 1, one line
each, and writes nothing. Temporal is live here, with a worker on the task queue the CLI uses:
a submit that got through would start a workflow and write to the shards, and neither happens
(a well-formed submit in the same environment afterwards does both)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from shards.ledger import Ledger
from shards.router import ShardRouter
from tests.support.cli_runs import CliResult, run_cli
from tests.support.refusals import (
    MALFORMED_AMOUNTS,
    CliCase,
    Fingerprint,
    assert_refused,
    cli_env,
    fingerprint,
    new_id,
    run_cases,
    serving_worker,
)
from tests.support.workers import Accounts
from transfers.settings import Settings

pytestmark = pytest.mark.bad_input

SUBMIT = ("submit", "--from", "acc-a", "--to", "acc-b", "--currency", "USD")
NOT_DECIMAL = r"is not a plain decimal number like 12\.34"
BAD_ID = r"must be 1-64 characters of A-Z a-z 0-9 _ \. : -"


def _submit(*changes: str, amount: str = "1.00") -> tuple[str, ...]:
    """`transfers submit` of SUBMIT with some options given other values (the last one wins)."""
    return (*SUBMIT, "--amount", amount, *changes)


CASES: dict[str, CliCase] = {
    # amounts
    "amount zero": CliCase(_submit(amount="0"), r"amount 0 must be positive"),
    "amount negative": CliCase(_submit(amount="-5"), rf"'-5' {NOT_DECIMAL}"),
    "amount NaN": CliCase(_submit(amount="NaN"), rf"'NaN' {NOT_DECIMAL}"),
    "amount exponent": CliCase(_submit(amount="1e9"), rf"'1e9' {NOT_DECIMAL}"),
    "amount empty": CliCase(_submit(amount=""), rf"'' {NOT_DECIMAL}"),
    "amount too precise": CliCase(_submit(amount="12.345"), r"has 3 decimals; USD allows 2"),
    "amount yen decimals": CliCase(
        _submit("--currency", "JPY", amount="1.5"), r"has 1 decimals; JPY allows 0"
    ),
    "amount beyond BIGINT": CliCase(
        _submit(amount="92233720368547758.08"), r"92233720368547758\.08 USD is too large to store"
    ),
    **{
        f"amount {name}": CliCase(_submit(amount=text), rf"{NOT_DECIMAL}|USD is too large to store")
        for name, text in MALFORMED_AMOUNTS.items()
    },
    # currencies
    "currency unknown": CliCase(
        _submit("--currency", "ZZZ"), r"currency ZZZ is not supported: not an active ISO 4217"
    ),
    "currency gold": CliCase(
        _submit("--currency", "XAU"), r"currency XAU \(Gold\) is not supported: .* no minor unit"
    ),
    "currency fund code": CliCase(
        _submit("--currency", "BOV"), r"currency BOV \(Mvdol\) is not supported: .* fund code"
    ),
    "currency short": CliCase(
        _submit("--currency", "US"), r"currency 'US' must be an ISO 4217 code of 3 capital"
    ),
    "currency symbol": CliCase(_submit("--currency", "U$D"), r"currency 'U\$D' must be an ISO"),
    # account and transfer ids
    "account id empty": CliCase(_submit("--from", ""), rf"account id '' {BAD_ID}"),
    "account id 65 chars": CliCase(_submit("--from", "a" * 65), rf"account id 'a{{65}}' {BAD_ID}"),
    "account id SQL": CliCase(
        _submit("--to", "x'; DROP TABLE accounts; --"),
        rf"""account id "x'; DROP TABLE accounts; --" {BAD_ID}""",
    ),
    "account id unicode": CliCase(_submit("--from", "konto-ö"), rf"account id 'konto-ö' {BAD_ID}"),
    # an escape sequence is shown as text, never sent to the terminal
    "account id control chars": CliCase(
        _submit("--from", "acc\x1b[2J\n"), rf"account id 'acc\\x1b\[2J\\n' {BAD_ID}"
    ),
    "same source and target": CliCase(
        _submit("--to", "acc-a"), r"--from and --to must be different accounts"
    ),
    "transfer id with spaces": CliCase(
        _submit("--id", "no spaces"), rf"transfer id 'no spaces' {BAD_ID}"
    ),
    "memo too long": CliCase(
        _submit("--memo", "m" * 201), r"memo: String should have at most 200 characters"
    ),
    # holds
    "pending without timeout": CliCase(
        _submit("--pending"), r"--pending and --timeout go together"
    ),
    "hold timeout zero": CliCase(
        _submit("--pending", "--timeout", "0s"), r"timeout 0s must be above 0 and at most 30d"
    ),
    "hold timeout 31 days": CliCase(
        _submit("--pending", "--timeout", "31d"), r"timeout 31d must be above 0 and at most 30d"
    ),
    "hold timeout in words": CliCase(
        _submit("--pending", "--timeout", "ten minutes"), r"'ten minutes' is not a duration"
    ),
    # other commands
    "open with SQL id": CliCase(
        ("accounts", "open", "x'; DROP TABLE accounts; --", "--currency", "USD"),
        rf"""account id "x'; DROP TABLE accounts; --" {BAD_ID}""",
    ),
    "list unknown status": CliCase(("list", "--status", "SOMEWHERE"), r"--status SOMEWHERE is not"),
    "migrate missing shard": CliCase(
        ("db", "upgrade", "--shard", "9"), r"--shard 9 is out of range: 3 shards configured"
    ),
    "chaos too short": CliCase(("chaos", "--duration", "10s"), r"needs at least 75s"),
    "chaos duration in words": CliCase(
        ("chaos", "--duration", "soon"), r"--duration soon is not a duration"
    ),
    # settings
    "SHARD_DSNS not a DSN": CliCase(
        ("accounts", "list"), r"SHARD_DSNS: ", env={"SHARD_DSNS": "not a dsn"}
    ),
    "SHARD_DSNS not PostgreSQL": CliCase(
        ("accounts", "list"),
        "not a PostgreSQL DSN: mysql://db/ledger",
        env={"SHARD_DSNS": "mysql://ledger:pw-secret@db/ledger"},
    ),
    "SHARD_DSNS empty": CliCase(
        ("db", "upgrade"), r"SHARD_DSNS is empty", env={"SHARD_DSNS": " , "}
    ),
    # `db upgrade` parsed no DSN before it migrated the first shard: a traceback, exit 1
    "migrate with an unparsable DSN": CliCase(
        ("db", "upgrade", "--json"),
        r"SHARD_DSNS: invalid literal for int\(\) with base 10: 'port'",
        env={"SHARD_DSNS": "postgresql://ledger:pw-secret@db:port/ledger"},
    ),
    "migrate with a bad port option": CliCase(
        ("db", "upgrade"),
        r"SHARD_DSNS: Received non-integer port arguments",
        env={"SHARD_DSNS": "postgresql://ledger:pw-secret@db/ledger?port=none"},
    ),
    "LOCK_STRATEGY unknown": CliCase(
        ("accounts", "list"), r"LOCK_STRATEGY: Input should be", env={"LOCK_STRATEGY": "hopeful"}
    ),
    # failed operations: exit 1
    "shard unreachable": CliCase(
        ("audit", "--json"),
        r"shard-0 unavailable",
        exit_code=1,
        env={"SHARD_DSNS": "postgresql://transfers:pw-secret@127.0.0.1:1/ledger"},
    ),
    "Temporal unreachable": CliCase(
        ("status", "t-1"),
        r"Temporal at 127\.0\.0\.1:1 is unreachable",
        exit_code=1,
        env={"TEMPORAL_ADDRESS": "127.0.0.1:1"},
    ),
}


@dataclass(frozen=True)
class Outcomes:
    results: dict[str, CliResult]
    before: Fingerprint
    after: Fingerprint
    started: int  # workflows started on the worker's task queue while the cases ran


@pytest.fixture(scope="module")
async def live(
    temporal_env: WorkflowEnvironment, dsns: list[str], router: ShardRouter
) -> AsyncIterator[Settings]:
    async with serving_worker(temporal_env, dsns, router) as settings:
        yield settings


async def _started(temporal_env: WorkflowEnvironment, settings: Settings) -> int:
    query = f"TaskQueue = '{settings.transfers_task_queue}'"
    return (await temporal_env.client.count_workflows(query)).count


@pytest.fixture(scope="module")
async def outcomes(
    temporal_env: WorkflowEnvironment,
    live: Settings,
    router: ShardRouter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Outcomes:
    """Every case run once, side by side, between two fingerprints of the shards."""
    before = await fingerprint(router)
    folder = tmp_path_factory.mktemp("cli")
    results = await asyncio.to_thread(run_cases, CASES, cli_env(live), folder)
    after = await fingerprint(router)
    return Outcomes(results, before, after, await _started(temporal_env, live))


@pytest.mark.parametrize("case", CASES)
def test_refused_with_its_message_and_exit_code(outcomes: Outcomes, case: str) -> None:
    result = outcomes.results[case]
    assert_refused(result, CASES[case])
    assert "pw-secret" not in result.stdout + result.stderr
    assert outcomes.started == 0  # no case started a workflow
    assert outcomes.after == outcomes.before  # nothing written by any case


async def test_a_well_formed_submit_in_the_same_environment_starts_and_writes(
    outcomes: Outcomes,
    temporal_env: WorkflowEnvironment,
    live: Settings,
    router: ShardRouter,
    tmp_path: Path,
) -> None:
    """The control: the environment the cases ran in would have run a submit that got through."""
    accounts = Accounts(Ledger(router), new_id)
    source, target = await accounts.open(100, shard=0), await accounts.open(0, shard=1)
    submit = ("submit", "--from", source, "--to", target, "--amount", "0.01", "--json")
    before = await fingerprint(router)

    result = await asyncio.to_thread(run_cli, submit, cli_env(live), tmp_path)

    assert (result.exit_code, result.json()["status"]) == (0, "COMPLETED"), result
    assert await _started(temporal_env, live) == outcomes.started + 1
    assert await fingerprint(router) != before


def test_a_garbage_stack_file_is_bad_input(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    stack.mkdir()
    (stack / "stack.json").write_text('{"temporal_address": 7, "shard_dsns": []}')
    (stack / "stack.json").chmod(0o600)  # as transfers dev writes it: only its content is wrong
    cases = {
        "garbage": CliCase(("accounts", "list", "--stack", str(stack)), r"not a valid stack file"),
        "missing": CliCase(
            ("audit", "--stack", str(tmp_path / "nowhere")), r"is `transfers dev` running\?"
        ),
        "chaos into a used dir": CliCase(
            ("chaos", "--data-dir", str(stack)), r"--data-dir .* is not empty"
        ),
    }
    results = run_cases(cases, dict(os.environ), tmp_path)
    for name, case in cases.items():
        assert_refused(results[name], case)


def test_a_data_dir_that_cannot_be_a_folder_is_refused_before_anything_starts(
    tmp_path: Path,
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    below_a_file = str(a_file / "data")
    cases = {
        "dev": CliCase(
            ("dev", "--data-dir", below_a_file),
            rf"^error: cannot use {below_a_file} as --data-dir: Not a directory$",
            exit_code=1,
        ),
        "chaos": CliCase(
            ("chaos", "--data-dir", below_a_file, "--json"),
            rf"^cannot use {below_a_file} as --data-dir: Not a directory$",
            exit_code=1,
        ),
    }
    results = run_cases(cases, dict(os.environ), tmp_path)
    for name, case in cases.items():
        assert_refused(results[name], case)
