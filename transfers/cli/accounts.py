"""`transfers accounts ...`: open, fund, freeze and inspect accounts directly on their shards."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.table import Table

from shards.money import exponent, format_amount, parse_amount
from transfers.cli.accounts_entries import entries_command
from transfers.cli.common import JsonOption, StackOption, emit, run_with_ledger
from transfers.terminal import console

if TYPE_CHECKING:  # the shard modules come with the Ledger that run_with_ledger opens
    from shards.ledger import Ledger
    from shards.records import AccountView, StepResult

AccountArgument = Annotated[str, typer.Argument(metavar="ID", help="Account id.")]
AmountArgument = Annotated[
    str, typer.Argument(metavar="AMOUNT", help="Decimal in major units, e.g. 12.34.")
]
EntryIdOption = Annotated[
    str | None,
    typer.Option("--id", help="Idempotency key: the same id again changes nothing."),
]


def account_json(view: AccountView) -> dict[str, Any]:
    """An account for --json: amounts as decimal strings in its currency's major units."""
    return {
        "account_id": view.account_id,
        "currency": view.currency,
        "balance": format_amount(view.balance, view.currency),
        "held": format_amount(view.held, view.currency),
        "available": format_amount(view.available, view.currency),
        "status": view.status,
        "version": view.version,
        "shard": view.shard,
    }


def _print_account(view: AccountView) -> None:
    amounts = account_json(view)
    console.print(
        f"{view.account_id}: {amounts['balance']} {view.currency} "
        f"(held {amounts['held']}, available {amounts['available']}), {view.status}, "
        f"shard {view.shard}, version {view.version}",
        highlight=False,
    )


def _show(view: AccountView, as_json: bool) -> None:
    emit(account_json(view), as_json, lambda: _print_account(view))


def open_command(
    account_id: AccountArgument,
    currency: Annotated[str, typer.Option("--currency", help="ISO 4217 code, e.g. USD.")],
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Open an empty account (opening it again with the same currency changes nothing)."""
    currency = currency.upper()

    async def operation(ledger: Ledger) -> AccountView:
        exponent(currency)  # refuse currencies whose amounts we could not parse
        return await ledger.open_account(account_id, currency)

    _show(run_with_ledger(stack, as_json, operation), as_json)


def _move_money(
    kind: Literal["deposit", "withdrawal"],
    account_id: str,
    amount_text: str,
    entry_id: str,
    stack: StackOption,
    as_json: bool,
) -> None:
    """A deposit or withdrawal, with the amount parsed in the account's own currency."""

    async def operation(ledger: Ledger) -> tuple[StepResult, str]:
        currency = (await ledger.get_account(account_id)).currency
        amount = parse_amount(amount_text, currency)
        apply = ledger.deposit if kind == "deposit" else ledger.withdraw
        return await apply(entry_id, account_id, amount, currency), currency

    result, currency = run_with_ledger(stack, as_json, operation)
    amount, balance = (
        format_amount(value, currency) for value in (result.amount, result.balance_after)
    )
    data = {
        "id": result.transfer_id,
        "kind": result.kind,
        "account_id": account_id,
        "amount": amount,
        "currency": currency,
        "balance_after": balance,
        "replayed": result.replayed,
    }
    note = " (already applied: nothing changed)" if result.replayed else ""
    emit(
        data,
        as_json,
        lambda: console.print(
            f"{result.kind} {result.transfer_id}: {amount} {currency} on {account_id}, "
            f"balance {balance} {currency}{note}",
            highlight=False,
        ),
    )


def deposit_command(
    account_id: AccountArgument,
    amount: AmountArgument,
    entry_id: EntryIdOption = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Add money to an account from outside the system."""
    entry_id = entry_id or f"dep-{uuid.uuid4()}"
    _move_money("deposit", account_id, amount, entry_id, stack, as_json)


def withdraw_command(
    account_id: AccountArgument,
    amount: AmountArgument,
    entry_id: EntryIdOption = None,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take money out of an account to outside the system."""
    entry_id = entry_id or f"wd-{uuid.uuid4()}"
    _move_money("withdrawal", account_id, amount, entry_id, stack, as_json)


def _set_status(
    account_id: str,
    status: Literal["open", "frozen", "closed"],
    stack: StackOption,
    as_json: bool,
) -> None:
    async def operation(ledger: Ledger) -> AccountView:
        from shards.enums import AccountStatus

        await ledger.set_status(account_id, AccountStatus(status))
        return await ledger.get_account(account_id)

    _show(run_with_ledger(stack, as_json, operation), as_json)


def freeze_command(
    account_id: AccountArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """Refuse every debit and credit until unfrozen."""
    _set_status(account_id, "frozen", stack, as_json)


def unfreeze_command(
    account_id: AccountArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """Open a frozen account again."""
    _set_status(account_id, "open", stack, as_json)


def close_command(
    account_id: AccountArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """Close an empty account for good."""
    _set_status(account_id, "closed", stack, as_json)


def show_command(
    account_id: AccountArgument, stack: StackOption = None, as_json: JsonOption = False
) -> None:
    """Balance, held and available amounts, status and shard of one account."""
    _show(run_with_ledger(stack, as_json, lambda ledger: ledger.get_account(account_id)), as_json)


def list_command(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 100,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Accounts of every shard, by id."""
    views = run_with_ledger(stack, as_json, lambda ledger: ledger.list_accounts(limit))

    def render() -> None:
        table = Table("account", "currency", "balance", "held", "available", "status", "shard")
        for view in views:
            amounts = account_json(view)
            table.add_row(
                view.account_id,
                view.currency,
                amounts["balance"],
                amounts["held"],
                amounts["available"],
                view.status,
                str(view.shard),
            )
        console.print(table)

    emit({"accounts": [account_json(view) for view in views]}, as_json, render)


def register(app: typer.Typer) -> None:
    """Add `transfers accounts ...`."""
    accounts_app = typer.Typer(
        help="Accounts on the shards (direct shard access, no Temporal).", no_args_is_help=True
    )
    accounts_app.command("open")(open_command)
    accounts_app.command("deposit")(deposit_command)
    accounts_app.command("withdraw")(withdraw_command)
    accounts_app.command("freeze")(freeze_command)
    accounts_app.command("unfreeze")(unfreeze_command)
    accounts_app.command("close")(close_command)
    accounts_app.command("show")(show_command)
    accounts_app.command("list")(list_command)
    accounts_app.command("entries")(entries_command)
    app.add_typer(accounts_app, name="accounts")
