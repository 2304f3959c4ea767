"""`transfers submit|status|list|cancel`: a transfer's saga, through Temporal."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple

import typer
from rich.table import Table

from shards.errors import AlreadyFinished, InvalidInput, SameAccount
from shards.money import format_amount, parse_amount
from shards.validation import check_account_id, check_transfer_id
from transfers.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    JsonOption,
    StackOption,
    emit,
    exit_with,
    exits_without_teardown,
    fail,
    open_ledger,
    run,
    settings_from,
    temporal_client,
)
from transfers.durations import parse_hold_timeout
from transfers.terminal import console

if TYPE_CHECKING:  # imported where used: pydantic models, the shards and the Temporal SDK
    from transfers.batch_client import BatchSummary
    from transfers.client import TransfersClient, TransferSummary
    from transfers.settings import Settings
    from workflows.batch_models import BatchOutcome
    from workflows.models import TransferOutcome, TransferRequest

TransferArgument = Annotated[str, typer.Argument(metavar="TRANSFER_ID", help="Transfer id.")]


def outcome_json(outcome: TransferOutcome) -> dict[str, Any]:
    """A transfer's state for --json: its status under `status`, error as {type, message}."""
    return {
        "transfer_id": outcome.transfer_id,
        "status": outcome.status.value,
        "step": outcome.step,
        "error": None if outcome.error is None else outcome.error.model_dump(),
        "expires_at": None if outcome.expires_at is None else outcome.expires_at.isoformat(),
    }


def outcome_line(outcome: TransferOutcome) -> str:
    from workflows.models import TransferStatus

    reason = "" if outcome.error is None else f": {outcome.error.type}: {outcome.error.message}"
    until = ""
    if outcome.status == TransferStatus.HELD and outcome.expires_at is not None:
        until = f" until {outcome.expires_at:%Y-%m-%d %H:%M:%S %Z}"
    return f"{outcome.transfer_id} {outcome.status.value}{until} (step {outcome.step}){reason}"


def _refused(outcome: TransferOutcome) -> bool:
    """Final without the money arriving: the command failed (exit 1)."""
    from workflows.models import TransferStatus

    return outcome.status.final and outcome.status != TransferStatus.COMPLETED


async def _build_request(
    settings: Settings,
    transfer_id: str,
    source: str,
    target: str,
    amount_text: str,
    currency: str | None,
    memo: str | None,
) -> TransferRequest:
    from pydantic import ValidationError

    from workflows.models import TransferRequest

    check_transfer_id(transfer_id)
    check_account_id(source)
    check_account_id(target)
    if source == target:
        raise SameAccount("--from and --to must be different accounts")
    if currency is None:  # the source account's own currency
        async with open_ledger(settings) as ledger:
            currency = (await ledger.get_account(source)).currency
    try:
        return TransferRequest(
            transfer_id=transfer_id,
            source_account_id=source,
            target_account_id=target,
            amount=parse_amount(amount_text, currency.upper()),
            currency=currency.upper(),
            memo=memo,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        field = ".".join(str(part) for part in problem["loc"]) or "transfer"
        raise InvalidInput(f"{field}: {problem['msg']}") from None


@exits_without_teardown
def submit_command(
    source: Annotated[str | None, typer.Option("--from", help="Source account id.")] = None,
    target: Annotated[str | None, typer.Option("--to", help="Target account id.")] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="Decimal in major units, e.g. 12.34.")
    ] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Default: the source account's currency.")
    ] = None,
    transfer_id: Annotated[
        str | None, typer.Option("--id", help="Transfer id (idempotency key); default: new.")
    ] = None,
    memo: Annotated[str | None, typer.Option("--memo", help="Free text, 200 chars.")] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Return once started, not once final.")
    ] = False,
    pending: Annotated[
        bool,
        typer.Option("--pending", help="Only hold the amount, until `post`, `void` or --timeout."),
    ] = False,
    timeout: Annotated[
        str | None,
        typer.Option(
            "--timeout", help="With --pending: the hold lasts 90s, 10m, 2h, 1d (max 30d)."
        ),
    ] = None,
    file: Annotated[
        str | None,
        typer.Option(
            "--file",
            help="Submit the transfers of a CSV (header transfer_id,from,to,amount,currency"
            "[,memo]) or JSON Lines file in batches; - reads stdin.",
        ),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option("--batch-size", help="With --file: transfers per batch (default 1000)."),
    ] = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a transfer (a saga on Temporal) and wait for its final status.

    With --pending, hold the amount on the source and return once it is HELD. With --file,
    submit a file of transfers in batches and wait for all of them."""
    from workflows.models import PendingTransferRequest

    if file is not None:
        singles = (source, target, amount, currency, transfer_id, memo, timeout)
        if any(option is not None for option in singles) or pending or no_wait:
            fail(
                "--file takes only --batch-size, --stack and --json",
                EXIT_BAD_INPUT,
                "InvalidInput",
                as_json,
            )
        _submit_file(file, batch_size, stack, as_json)
        return
    if source is None or target is None or amount is None:
        fail(
            "--from, --to and --amount are required (or --file)",
            EXIT_BAD_INPUT,
            "InvalidInput",
            as_json,
        )
    if batch_size is not None:
        exit_with(InvalidInput("--batch-size goes with --file"), as_json)
    settings = settings_from(stack, as_json)
    chosen_id = transfer_id or f"t-{uuid.uuid4().hex}"
    if pending != (timeout is not None):
        exit_with(InvalidInput("--pending and --timeout go together"), as_json)

    async def action() -> tuple[TransferRequest, TransferOutcome, str]:
        hold_s = None if timeout is None else parse_hold_timeout(timeout)
        request = await _build_request(settings, chosen_id, source, target, amount, currency, memo)
        if not as_json:
            console.print(
                f"transfer {chosen_id}: {format_amount(request.amount, request.currency)} "
                f"{request.currency} {source} -> {target}",
                highlight=False,
            )
        async with temporal_client(settings) as client:
            if hold_s is not None:
                request = PendingTransferRequest(**request.model_dump(), timeout_s=hold_s)
                outcome = await client.submit_pending(request)
            else:
                outcome = await client.submit(request, wait=not no_wait)
            return request, outcome, client.ui_link(chosen_id)

    request, outcome, link = run(action, as_json)
    data = {
        **outcome_json(outcome),
        "source_account_id": request.source_account_id,
        "target_account_id": request.target_account_id,
        "amount": format_amount(request.amount, request.currency),
        "currency": request.currency,
        "memo": request.memo,
        "timeout_s": request.timeout_s if isinstance(request, PendingTransferRequest) else None,
        "ui_link": link,
    }
    emit(data, as_json, lambda: console.print(outcome_line(outcome), link, sep="\n"))
    if _refused(outcome):
        raise typer.Exit(EXIT_FAILED)


def _submit_file(file: str, batch_size: int | None, stack: Path | None, as_json: bool) -> None:
    """`submit --file`: every line checked first (exit 2 and nothing submitted if any is bad),
    then batches; exit 1 unless every transfer reached a final status."""
    from transfers.cli import batches
    from transfers.cli.batch_file import BadFile, read_transfers
    from workflows.batch_models import DEFAULT_BATCH_SIZE

    size = DEFAULT_BATCH_SIZE if batch_size is None else batch_size
    try:
        batches.check_batch_size(size)
        requests = read_transfers(*batches.read_file(file))
    except BadFile as error:
        if as_json:
            exit_with(error, as_json)
        batches.print_bad_file(error)
        raise typer.Exit(EXIT_BAD_INPUT) from None
    except InvalidInput as error:
        exit_with(error, as_json)
    settings = settings_from(stack, as_json)

    async def action() -> list[BatchOutcome]:
        async with temporal_client(settings) as client:
            return await batches.submit_batches(client, requests, size, show_progress=not as_json)

    outcomes = run(action, as_json)
    data = batches.batches_json(requests, outcomes)
    emit(data, as_json, lambda: batches.print_counts(data))
    if not batches.all_final(outcomes):
        raise typer.Exit(EXIT_FAILED)


@exits_without_teardown
def status_command(
    transfer_id: TransferArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """A transfer's status, current step and error; for a transfer of a batch, which batch
    (found among the most recent batches)."""
    settings = settings_from(stack, as_json)

    async def action() -> Located:
        async with temporal_client(settings) as client:
            return await located(client, transfer_id)

    emit_located(run(action, as_json), as_json)


class Located(NamedTuple):
    """A transfer as `status` shows it: its outcome, its JSON, its page in the Web UI."""

    outcome: TransferOutcome
    data: dict[str, Any]
    link: str


async def located(client: TransfersClient, transfer_id: str) -> Located:
    """Where the transfer is: its own workflow's status, or its batch's (which batch)."""
    from transfers.batch_client import BatchMember
    from transfers.cli import batches

    found = await client.locate(transfer_id)
    if isinstance(found, BatchMember):
        link = client.batch_ui_link(found.batch_id)
        return Located(found.outcome, batches.member_json(found, link), link)
    summary, link = await client.summary(transfer_id), client.ui_link(transfer_id)
    return Located(found, {**outcome_json(found), **money_json(summary), "ui_link": link}, link)


def emit_located(found: Located, as_json: bool) -> None:
    in_batch = f" in batch {found.data['batch_id']}" if "batch_id" in found.data else ""
    line = outcome_line(found.outcome) + in_batch
    emit(found.data, as_json, lambda: console.print(line, found.link, sep="\n"))


def money_json(summary: TransferSummary | None) -> dict[str, str | None]:
    """The transfer's amount (decimal string, major units) and currency, from its search
    attributes; None for a workflow started without them."""
    if summary is None:
        return {"amount": None, "currency": None}
    return {
        "amount": format_amount(summary.amount, summary.currency),
        "currency": summary.currency,
    }


def summary_json(summary: TransferSummary) -> dict[str, Any]:
    return {
        "transfer_id": summary.transfer_id,
        "status": summary.status.value,
        "source_account_id": summary.source,
        "target_account_id": summary.target,
        **money_json(summary),
        "started_at": summary.started_at.isoformat() if summary.started_at else None,
    }


@exits_without_teardown
def list_command(
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status, e.g. COMPLETED.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    stuck: Annotated[
        bool,
        typer.Option("--stuck", help="Only those whose refund waits for retry-refund or resolve."),
    ] = False,
    batches: Annotated[
        bool, typer.Option("--batches", help="Only batches, with their counts per status.")
    ] = False,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Recent transfers, then recent batches, newest first (visibility queries on the search
    attributes). --status and --stuck filter transfers, and list no batches."""
    from transfers.cli import batches as batch_cli
    from workflows.models import TransferStatus

    if batches:
        _list_batches(limit, stack, as_json)
        return

    try:
        wanted = None if status is None else TransferStatus(status.upper())
    except ValueError:
        choices = ", ".join(member.value for member in TransferStatus)
        fail(f"--status {status} is not one of {choices}", EXIT_BAD_INPUT, as_json=as_json)
    settings = settings_from(stack, as_json)
    # a batch's transfers are no workflows of their own: unfiltered, the batches are listed too
    with_batches = wanted is None and not stuck

    async def action() -> tuple[list[TransferSummary], list[BatchSummary]]:
        async with temporal_client(settings) as client:
            found = await client.list(wanted, limit, stuck=stuck)
            return found, (await client.list_batches(limit) if with_batches else [])

    found, found_batches = run(action, as_json)
    rows = [summary_json(summary) for summary in found]
    batch_rows = [batch_cli.batch_summary_json(summary) for summary in found_batches]

    def render() -> None:
        table = Table("transfer", "status", "from", "to", "amount", "started (UTC)")
        for row in rows:
            table.add_row(
                row["transfer_id"],
                row["status"],
                row["source_account_id"],
                row["target_account_id"],
                f"{row['amount']} {row['currency']}",
                (row["started_at"] or "")[:19].replace("T", " "),
            )
        if rows or not batch_rows:
            console.print(table)
        if batch_rows:
            batch_cli.print_batches(batch_rows)

    data = {"transfers": rows, "batches": batch_rows} if with_batches else {"transfers": rows}
    emit(data, as_json, render)


def _list_batches(limit: int, stack: Path | None, as_json: bool) -> None:
    from transfers.cli import batches

    settings = settings_from(stack, as_json)

    async def action() -> list[dict[str, Any]]:
        async with temporal_client(settings) as client:
            found = await client.list_batches(limit)
            return [batches.batch_summary_json(summary) for summary in found]

    rows = run(action, as_json)
    emit({"batches": rows}, as_json, lambda: batches.print_batches(rows))


def _cancel_batch(batch_id: str, stack: Path | None, as_json: bool) -> None:
    settings = settings_from(stack, as_json)

    async def action() -> None:
        async with temporal_client(settings) as client:
            if not await client.cancel_batch(batch_id):
                raise AlreadyFinished(f"batch {batch_id} has finished: nothing to cancel")

    run(action, as_json)
    emit(
        {"batch_id": batch_id, "cancel_requested": True},
        as_json,
        lambda: console.print(f"cancellation of batch {batch_id} requested", highlight=False),
    )


@exits_without_teardown
def cancel_command(
    transfer_id: Annotated[
        str | None, typer.Argument(metavar="TRANSFER_ID", help="Transfer id.")
    ] = None,
    batch: Annotated[
        str | None,
        typer.Option(
            "--batch",
            metavar="BATCH_ID",
            help="Cancel a batch: what is not debited fails, what is debited is refunded.",
        ),
    ] = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Ask a running transfer to stop; before the credit it refunds the source."""
    if transfer_id is None or batch is not None:
        if (transfer_id is None) == (batch is None):
            fail("give a TRANSFER_ID or --batch BATCH_ID", EXIT_BAD_INPUT, "InvalidInput", as_json)
        _cancel_batch(str(batch), stack, as_json)
        return
    settings = settings_from(stack, as_json)

    async def action() -> None:
        async with temporal_client(settings) as client:
            if not await client.cancel(transfer_id):
                outcome = await client.status(transfer_id)
                raise AlreadyFinished(
                    f"transfer {transfer_id} has finished ({outcome.status.value}): "
                    "nothing to cancel"
                )

    run(action, as_json)
    emit(
        {"transfer_id": transfer_id, "cancel_requested": True},
        as_json,
        lambda: console.print(f"cancellation of {transfer_id} requested", highlight=False),
    )


def register(app: typer.Typer) -> None:
    """Add `transfers submit|status|list|cancel`."""
    app.command("submit")(submit_command)
    app.command("status")(status_command)
    app.command("list")(list_command)
    app.command("cancel")(cancel_command)
