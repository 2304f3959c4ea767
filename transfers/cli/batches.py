"""The batch side of `transfers submit --file`, `status`, `list --batches` and `cancel --batch`.

A file is read and checked whole (transfers.cli.batch_file), cut into batches of --batch-size in
file order, each with the id its content derives (so the same file submitted again, with the same
--batch-size, joins or finds the same batches; with another size, its transfers are found again
by their ids on the shards and move no money twice). BATCHES_IN_FLIGHT run at a time.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from shards.errors import InvalidInput
from shards.money import format_amount
from transfers.terminal import console, errors, styled

if TYPE_CHECKING:
    from transfers.batch_client import BatchMember, BatchSummary
    from transfers.cli.batch_file import BadFile
    from transfers.client import TransfersClient
    from workflows.batch_models import BatchOutcome
    from workflows.models import TransferRequest

BATCHES_IN_FLIGHT = 4
PROGRESS_POLL_S = 0.5


def read_file(file: str) -> tuple[str, str]:
    """The text of FILE (`-`: standard input) and the name to report it by."""
    if file == "-":
        return sys.stdin.read(), "stdin"
    try:
        return Path(file).read_text(encoding="utf-8"), file
    except (OSError, UnicodeDecodeError) as error:
        raise InvalidInput(f"cannot read {file}: {error}") from None


def print_bad_file(error: BadFile) -> None:
    """`error:` and the file's problem, then each bad line on a line of its own."""
    errors.print(styled(("error:", "red"), " ", error.headline))
    for line in error.lines:
        errors.print(styled(line))


def check_batch_size(batch_size: int) -> None:
    """InvalidInput unless 1 <= batch_size <= MAX_BATCH_SIZE."""
    from workflows.batch_models import MAX_BATCH_SIZE

    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"--batch-size {batch_size}: from 1 to {MAX_BATCH_SIZE:,}")


async def submit_batches(
    client: TransfersClient,
    requests: list[TransferRequest],
    batch_size: int,
    *,
    show_progress: bool,
) -> list[BatchOutcome]:
    """Run the requests as batches of `batch_size`, a progress bar on stderr while they run."""
    chunks = [requests[at : at + batch_size] for at in range(0, len(requests), batch_size)]
    gate = asyncio.Semaphore(BATCHES_IN_FLIGHT)
    columns = (TextColumn("transfers"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=errors, disable=not show_progress, transient=True) as bar:
        task = bar.add_task("transfers", total=len(requests))
        ended = [0] * len(chunks)

        def show(index: int, done: int) -> None:
            ended[index] = done
            bar.update(task, completed=sum(ended))

        async def run(index: int, chunk: list[TransferRequest]) -> BatchOutcome:
            async with gate:
                batch_id = await client.start_batch(chunk)
                outcome = asyncio.ensure_future(client.batch_outcome(batch_id))
                while not outcome.done():
                    await asyncio.wait([outcome], timeout=PROGRESS_POLL_S)
                    if not outcome.done():
                        show(index, _final(await client.batch_counts(batch_id)))
                show(index, len(chunk))
                return outcome.result()

        return list(await asyncio.gather(*(run(i, chunk) for i, chunk in enumerate(chunks))))


def _final(counts: dict[str, int]) -> int:
    from workflows.models import TransferStatus

    return sum(n for status, n in counts.items() if TransferStatus(status).final)


def batches_json(requests: list[TransferRequest], outcomes: list[BatchOutcome]) -> dict[str, Any]:
    """`submit --file --json`: `batches`, `transfers` (in file order) and `counts`."""
    asked = {request.transfer_id: request for request in requests}
    transfers = []
    for outcome in outcomes:
        for transfer in outcome.transfers:
            request = asked[transfer.transfer_id]
            transfers.append(
                {
                    "transfer_id": transfer.transfer_id,
                    "status": transfer.status.value,
                    "step": transfer.step,
                    "error": None if transfer.error is None else transfer.error.model_dump(),
                    "source_account_id": request.source_account_id,
                    "target_account_id": request.target_account_id,
                    "amount": format_amount(request.amount, request.currency),
                    "currency": request.currency,
                }
            )
    counts: Counter[str] = Counter()
    for outcome in outcomes:
        counts.update(outcome.counts)
    return {
        "batches": [
            {"batch_id": o.batch_id, "size": len(o.transfers), "counts": o.counts} for o in outcomes
        ],
        "transfers": transfers,
        "counts": dict(counts),
    }


def print_counts(data: dict[str, Any]) -> None:
    """The batches' ids, then the table of counts per status."""
    batches = data["batches"]
    console.print(
        f"{len(data['transfers']):,} transfers in {len(batches)} "
        f"batch{'es' if len(batches) != 1 else ''}: "
        + ", ".join(batch["batch_id"] for batch in batches),
        highlight=False,
    )
    table = Table("status", Column("transfers", justify="right"))
    for status, n in data["counts"].items():
        table.add_row(status, f"{n:,}")
    console.print(table)


def all_final(outcomes: list[BatchOutcome]) -> bool:
    """Whether every transfer of every batch reached a final status."""
    return all(outcome.final for outcome in outcomes)


def member_json(member: BatchMember, link: str) -> dict[str, Any]:
    """`status --json` of a transfer found inside a batch."""
    from transfers.cli.transfer import outcome_json

    request = member.request
    return {
        **outcome_json(member.outcome),
        "amount": format_amount(request.amount, request.currency),
        "currency": request.currency,
        "batch_id": member.batch_id,
        "ui_link": link,
    }


def batch_summary_json(summary: BatchSummary) -> dict[str, Any]:
    """One batch of `list --batches --json`."""
    amount = None
    if summary.amount is not None and summary.currency is not None:
        amount = format_amount(summary.amount, summary.currency)
    return {
        "batch_id": summary.batch_id,
        "running": summary.running,
        "size": summary.size,
        "amount": amount,
        "currency": summary.currency,
        "counts": summary.counts,
        "started_at": summary.started_at.isoformat(),
    }


def print_batches(rows: list[dict[str, Any]]) -> None:
    # the id whole, never cut: it is what `status` and `cancel --batch` take
    table = Table(
        Column("batch", no_wrap=True, min_width=32),
        Column("size", justify="right"),
        "amount",
        "counts",
        "started (UTC)",
    )
    for row in rows:
        counts = row["counts"]
        said = "running" if counts is None else "\n".join(_counted(counts))
        money = f"{row['amount']} {row['currency']}" if row["amount"] else "several currencies"
        started = row["started_at"][:19].replace("T", " ")
        size = "" if row["size"] is None else f"{row['size']:,}"  # unknown: started elsewhere
        table.add_row(row["batch_id"], size, money, said, started)
    console.print(table)


def _counted(counts: dict[str, int]) -> list[str]:
    """`990 completed`, a line each status that has any."""
    return [f"{n:,} {status.lower()}" for status, n in counts.items() if n]
