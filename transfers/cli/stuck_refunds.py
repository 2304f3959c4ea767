"""`transfers retry-refund|resolve`: an operator's way out of a stuck refund (Temporal Updates).

A refund refused for a business reason (the source frozen, closed, or unable to take the money
back) waits for one of them: `retry-refund` once the cause is fixed, `resolve --note` once the
money was paid back by hand. `transfers list --stuck` finds those that wait. A batch's transfer
takes them too (its batch also tries the refund again every minute on its own).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from transfers.cli.common import (
    EXIT_FAILED,
    JsonOption,
    StackOption,
    exits_without_teardown,
    run,
    settings_from,
    temporal_client,
)
from transfers.cli.transfer import Located, TransferArgument, emit_located, located
from transfers.terminal import errors, styled

if TYPE_CHECKING:
    from transfers.client import TransfersClient
    from workflows.models import TransferOutcome

REFUNDED_FIRST = (
    "the ledger refunded the source before the resolve: do not pay it back by hand (recover "
    "a payment already made)"
)
NoWaitOption = Annotated[
    bool, typer.Option("--no-wait", help="Return once the Update is accepted, not at the end.")
]


def _decide(
    transfer_id: str,
    decision: Callable[[TransfersClient], Awaitable[TransferOutcome]],
    stack: StackOption,
    as_json: bool,
    *,
    note: str | None = None,
) -> None:
    """Send the decision, print where the transfer is now (as `status`, with its batch for a
    batch's transfer); exit 1 if its refund is stuck again."""
    settings = settings_from(stack, as_json)

    async def action() -> Located:
        from workflows.models import check_note

        if note is not None:
            check_note(note)  # bad input, before any server is asked
        async with temporal_client(settings) as client:
            await decision(client)
            return await located(client, transfer_id)

    found = run(action, as_json)
    emit_located(found, as_json)
    from workflows.models import TransferStep  # loaded with the client already

    if found.outcome.step == TransferStep.REFUND_STUCK:
        raise typer.Exit(EXIT_FAILED)
    if note is not None and found.outcome.step == TransferStep.REFUNDED:
        # the ledger paid the source back before the marker: a payment by hand is one too many
        errors.print(styled(("warning:", "yellow"), " ", REFUNDED_FIRST))
        raise typer.Exit(EXIT_FAILED)


@exits_without_teardown
def retry_refund_command(
    transfer_id: TransferArgument,
    no_wait: NoWaitOption = False,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Try a stuck refund again, once its cause is fixed; exit 1 if it is refused again."""
    _decide(
        transfer_id,
        lambda client: client.retry_refund(transfer_id, wait=not no_wait),
        stack,
        as_json,
    )


@exits_without_teardown
def resolve_command(
    transfer_id: TransferArgument,
    note: Annotated[str, typer.Option("--note", help="How the refund was settled by hand.")],
    no_wait: NoWaitOption = False,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record that a stuck refund is settled by hand: the transfer ends COMPENSATED, and a
    refund marker on the source's shard keeps any later refund from landing. Exit 1 if the
    ledger refunded first (then pay nothing by hand)."""
    _decide(
        transfer_id,
        lambda client: client.resolve(transfer_id, note, wait=not no_wait),
        stack,
        as_json,
        note=note,
    )


def register(app: typer.Typer) -> None:
    """Add `transfers retry-refund|resolve`."""
    app.command("retry-refund")(retry_refund_command)
    app.command("resolve")(resolve_command)
