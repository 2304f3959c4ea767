"""`transfers accounts entries ID`: an account's statement, newest first, a page at a time."""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from shards.money import format_amount
from shards.validation import MAX_PAGE
from transfers.cli.common import JsonOption, StackOption, emit, run_with_ledger
from transfers.terminal import console

if TYPE_CHECKING:
    from shards.statements import StatementEntry, StatementPage


def entry_json(entry: StatementEntry, currency: str) -> dict[str, Any]:
    """One entry for --json: amounts as decimal strings in the account's currency, time in UTC."""
    return {
        "created_at": entry.created_at.astimezone(UTC).isoformat(),
        "kind": entry.kind,
        "transfer_id": entry.transfer_id,
        "amount": format_amount(entry.amount, currency),
        "balance_after": format_amount(entry.balance_after, currency),
        "marker": entry.marker,
    }


def statement_json(page: StatementPage) -> dict[str, Any]:
    return {
        "account_id": page.account_id,
        "currency": page.currency,
        "entries": [entry_json(entry, page.currency) for entry in page.entries],
        "next_cursor": page.next_cursor,
    }


def _print_statement(data: dict[str, Any]) -> None:
    currency = data["currency"]
    # Every datum as Text: nothing an id or a cursor holds is read as Rich markup.
    table = Table("time (UTC)", "kind", "transfer", "amount", "balance after", "marker")
    for row in data["entries"]:
        table.add_row(
            Text(row["created_at"][:19].replace("T", " ")),
            Text(row["kind"]),
            Text(row["transfer_id"]),
            Text(f"{row['amount']} {currency}"),
            Text(f"{row['balance_after']} {currency}"),
            Text("marker" if row["marker"] else ""),
        )
    console.print(Text(f"{data['account_id']} ({currency}), newest first"))
    console.print(table)
    if data["next_cursor"] is not None:
        console.print(Text(f"older entries: --before {data['next_cursor']}"))


def entries_command(
    account_id: Annotated[str, typer.Argument(metavar="ACCOUNT_ID", help="Account id.")],
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=MAX_PAGE, help="At most this many entries.")
    ] = 50,
    before: Annotated[
        str | None,
        typer.Option("--before", metavar="CURSOR", help="The next_cursor a page printed."),
    ] = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """The account's entries, newest first: time, kind, transfer, amount, balance after."""
    page = run_with_ledger(
        stack,
        as_json,
        lambda ledger: ledger.statement(account_id, limit=limit, before=before),
    )
    data = statement_json(page)
    emit(data, as_json, lambda: _print_statement(data))
