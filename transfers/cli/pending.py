"""`transfers post|void`: decide a pending transfer's hold (Temporal Updates on its workflow)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from shards.errors import UnknownTransfer
from shards.money import format_amount, parse_amount
from transfers.cli.common import (
    EXIT_FAILED,
    JsonOption,
    StackOption,
    emit,
    exits_without_teardown,
    run,
    settings_from,
    temporal_client,
)
from transfers.cli.transfer import TransferArgument, outcome_json, outcome_line
from transfers.terminal import console

if TYPE_CHECKING:
    from transfers.client import TransfersClient, TransferSummary
    from workflows.models import TransferOutcome


async def _pending_summary(client: TransfersClient, transfer_id: str) -> TransferSummary:
    """The held amount and its currency, from the transfer's search attributes."""
    summary = await client.summary(transfer_id)
    if summary is None:
        raise UnknownTransfer(
            f"transfer {transfer_id} has no amount or currency on record: use the Python API"
        )
    return summary


def _decision_json(outcome: TransferOutcome, summary: TransferSummary, link: str) -> dict[str, Any]:
    """The outcome, what was held and what was posted (decimal strings, major units)."""
    captured = [entry.amount for entry in outcome.entries if entry.kind == "capture"]
    currency = summary.currency
    return {
        **outcome_json(outcome),
        "held": format_amount(summary.amount, currency),
        "posted": format_amount(captured[0], currency) if captured else None,
        "currency": currency,
        "ui_link": link,
    }


def _show(outcome: TransferOutcome, data: dict[str, Any], as_json: bool) -> None:
    emit(
        data,
        as_json,
        lambda: console.print(outcome_line(outcome), data["ui_link"], sep="\n"),
    )


@exits_without_teardown
def post_command(
    transfer_id: TransferArgument,
    amount: Annotated[
        str | None,
        typer.Option(
            "--amount", help="Decimal in major units; default: all. The rest is released."
        ),
    ] = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Post a HELD transfer: capture its hold (or --amount of it) and credit the target."""
    settings = settings_from(stack, as_json)

    async def action() -> tuple[TransferOutcome, dict[str, Any]]:
        async with temporal_client(settings) as client:
            summary = await _pending_summary(client, transfer_id)
            minor = None if amount is None else parse_amount(amount, summary.currency)
            outcome = await client.post(transfer_id, minor)
            return outcome, _decision_json(outcome, summary, client.ui_link(transfer_id))

    from workflows.models import TransferStatus

    outcome, data = run(action, as_json)
    _show(outcome, data, as_json)
    if outcome.status != TransferStatus.COMPLETED:  # COMPENSATED: the credit was refused
        raise typer.Exit(EXIT_FAILED)


@exits_without_teardown
def void_command(
    transfer_id: TransferArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """Void a HELD transfer: release its hold; nothing moves."""
    settings = settings_from(stack, as_json)

    async def action() -> tuple[TransferOutcome, dict[str, Any]]:
        async with temporal_client(settings) as client:
            summary = await _pending_summary(client, transfer_id)
            outcome = await client.void(transfer_id)
            return outcome, _decision_json(outcome, summary, client.ui_link(transfer_id))

    outcome, data = run(action, as_json)
    _show(outcome, data, as_json)


def register(app: typer.Typer) -> None:
    """Add `transfers post|void`."""
    app.command("post")(post_command)
    app.command("void")(void_command)
