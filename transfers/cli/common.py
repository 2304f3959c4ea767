"""What every command shares: --json output, error lines and exit codes.

Exit codes: 0 success; 1 the operation failed (refused, shard or Temporal unreachable);
2 bad input (malformed arguments, unknown currency, garbage stack.json). No traceback for either.
A command raises an error of the one tree (shards.errors), which gives its `--json` type (`code`)
and its exit code (`exit_code`); `run` reports every one of them the same way. `fail` is for the
command's own argument checks.

Start-up: `transfers --help` imports every command module, so these modules import at the top only
Typer, Rich and light modules of ours; settings (pydantic), the shards (SQLAlchemy, psycopg) and
Temporal are imported inside the functions that use them (tests/cli/test_startup_imports.py).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer

from shards.errors import ConfigError, InvalidInput, TransfersError
from transfers.terminal import errors, styled

if TYPE_CHECKING:
    from shards.ledger import Ledger
    from transfers.client import TransfersClient
    from transfers.settings import Settings

T = TypeVar("T")
P = ParamSpec("P")

EXIT_FAILED = TransfersError.exit_code
EXIT_BAD_INPUT = InvalidInput.exit_code


JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object for scripts.")]
StackOption = Annotated[
    Path | None,
    typer.Option("--stack", help="Data dir of a running `transfers dev` (reads its stack.json)."),
]


def fail(
    message: str, exit_code: int = EXIT_FAILED, code: str = "Error", as_json: bool = False
) -> NoReturn:
    """Print one error line (or one JSON object) and exit with `exit_code`."""
    if as_json:
        print(json.dumps({"error": {"type": code, "message": message}}))
    else:
        errors.print(styled(("error:", "red"), " ", message))
    raise typer.Exit(exit_code)


def exit_with(error: TransfersError, as_json: bool = False) -> NoReturn:
    """Print an error of the tree as one line (or one JSON object) and exit with its code."""
    fail(str(error), error.exit_code, error.code, as_json)


def settings_from(stack: Path | None, as_json: bool = False) -> Settings:
    from pydantic import ValidationError

    from transfers.settings import load_settings, settings_problem

    try:
        return load_settings(stack)
    except TransfersError as error:  # StackFileError
        exit_with(error, as_json)
    except ValidationError as error:  # a malformed setting in the environment or .env
        exit_with(ConfigError(settings_problem(error)), as_json)


def run(action: Callable[[], Awaitable[T]], as_json: bool = False) -> T:
    """Run a command's coroutine, turning known failures into one line and an exit code."""
    import asyncio

    try:
        return asyncio.run(action())  # type: ignore[arg-type]
    except TransfersError as error:
        exit_with(error, as_json)
    except KeyboardInterrupt:
        fail("interrupted", 130, "Interrupted", as_json)


@asynccontextmanager
async def open_ledger(settings: Settings) -> AsyncIterator[Ledger]:
    """The shards as a Ledger, disposed afterwards; a garbled SHARD_DSNS is bad input (exit 2)."""
    from sqlalchemy.exc import ArgumentError

    from shards.ledger import Ledger
    from shards.router import ShardRouter

    try:
        router = ShardRouter.from_dsns(settings.dsn_list(), settings.pool())
    except (ValueError, ArgumentError) as error:
        raise ConfigError(f"SHARD_DSNS: {error}") from None
    try:
        yield Ledger(router, settings.lock_strategy)
    finally:
        await router.dispose()


@asynccontextmanager
async def temporal_client(settings: Settings) -> AsyncIterator[TransfersClient]:
    """The Python API's client; its errors are the tree's, reported by `run` like any other."""
    # Imported here: the Temporal SDK would add half a second to every shard-only command.
    from transfers.client import TransfersClient

    yield await TransfersClient.connect(settings)


def run_with_ledger(
    stack: Path | None, as_json: bool, operation: Callable[[Ledger], Awaitable[T]]
) -> T:
    """Settings, then `operation` on the shards' Ledger, with failures turned into exit codes."""
    settings = settings_from(stack, as_json)

    async def action() -> T:
        async with open_ledger(settings) as ledger:
            return await operation(ledger)

    return run(action, as_json)


def exits_without_teardown(command: Callable[P, None]) -> Callable[P, None]:
    """For commands that use the Temporal SDK: end the process as soon as the command is done.

    The SDK's Rust threads can abort the interpreter while it finalizes ("PyGILState_Release:
    thread state must be current", exit 134, temporalio/sdk-python#300), in about one run in
    five here; skipping the teardown after flushing the output avoids it.
    """

    @functools.wraps(command)
    def command_then_exit(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
            code = 0
        except typer.Exit as done:
            code = done.exit_code
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    return command_then_exit


def emit(data: dict[str, Any], as_json: bool, render: Callable[[], None]) -> None:
    """Print `data` as JSON for scripts, or call `render` for people."""
    if as_json:
        sys.stdout.write(json.dumps(data, default=str) + "\n")
    else:
        render()
