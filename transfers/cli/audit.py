"""`transfers audit`: check the shards' books, asking Temporal which transfers have ended."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from shards.errors import TemporalUnavailable, TransferNotFound
from shards.money import format_amount
from transfers.cli.common import (
    EXIT_FAILED,
    JsonOption,
    StackOption,
    emit,
    exits_without_teardown,
    open_ledger,
    run,
    settings_from,
    temporal_client,
)
from transfers.terminal import console, styled

if TYPE_CHECKING:  # imported where used: the shards and the Temporal SDK
    from shards.audit import AuditReport, WorkflowEnded
    from transfers.settings import Settings


def audit_json(report: AuditReport) -> dict[str, Any]:
    currencies = {
        currency: {
            **{
                name: format_amount(getattr(totals, name), currency)
                for name in (
                    "balances",
                    "held",
                    "in_flight",
                    "written_off",
                    "deposits",
                    "withdrawals",
                )
            },
            "conserved": totals.conserved,
        }
        for currency, totals in sorted(report.currencies.items())
    }
    return {
        "ok": report.ok,
        "violations": report.violations,
        "currencies": currencies,
        "accounts_by_shard": report.accounts_by_shard,
        "transfers_checked": report.transfers_checked,
        "account_mismatches": report.account_mismatches,
        "contradictions": report.contradictions,
        "stranded": report.stranded,
    }


def _print_audit(data: dict[str, Any]) -> None:
    shards = ", ".join(f"shard {index}: {n}" for index, n in data["accounts_by_shard"].items())
    console.print(f"accounts: {shards}; transfers checked: {data['transfers_checked']}")
    table = Table(
        "currency", "balances", "held", "in flight", "deposits", "withdrawals", "conserved"
    )
    for currency, totals in data["currencies"].items():
        amounts = [totals[name] for name in ("balances", "held", "in_flight")]
        flows = [totals["deposits"], totals["withdrawals"]]
        conserved = "yes" if totals["conserved"] else styled(("NO", "red"))
        table.add_row(currency, *amounts, *flows, conserved)
    console.print(table)
    for account_id, problem in data["account_mismatches"].items():
        console.print(styled((f"account {account_id}:", "red"), " ", problem))
    for transfer_id, problem in data["contradictions"].items():
        console.print(styled((f"transfer {transfer_id}:", "red"), " ", problem))
    for transfer_id, problem in data["stranded"].items():
        console.print(styled((f"transfer {transfer_id} stranded:", "red"), " ", problem))
    verdict = ("OK", "green") if data["ok"] else (f"{data['violations']} violation(s)", "red")
    console.print(styled("audit: ", verdict))


def _ask_temporal(settings: Settings) -> WorkflowEnded:
    """Which transfers have ended, Temporal asked only when some money is in flight."""

    async def workflow_ended(transfer_ids: list[str]) -> set[str]:
        try:
            async with temporal_client(settings) as client:
                return await client.ended(transfer_ids)
        except (TemporalUnavailable, TransferNotFound) as error:
            hint = f"{error}; `transfers audit --no-temporal` audits the shards alone"
            raise type(error)(hint) from None

    return workflow_ended


@exits_without_teardown
def audit_command(
    idle: Annotated[
        bool,
        typer.Option(
            "--idle",
            help="state that no transfer is running: any money in flight is a violation",
        ),
    ] = False,
    no_temporal: Annotated[
        bool,
        typer.Option(
            "--no-temporal",
            help="do not ask Temporal which transfers with money in flight have ended "
            "(shards only)",
        ),
    ] = False,
    stack: StackOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check that money is conserved across shards, every transfer's entries agree, and no
    money is in flight for a transfer that has ended."""
    settings = settings_from(stack, as_json)
    workflow_ended = None if idle or no_temporal else _ask_temporal(settings)

    async def action() -> AuditReport:
        from sqlalchemy.exc import DBAPIError

        from shards.audit import run_audit
        from shards.shard import translate_error

        async with open_ledger(settings) as ledger:
            try:
                return await run_audit(ledger.router, workflow_ended=workflow_ended, quiet=idle)
            except DBAPIError as error:  # the audit reads outside Shard.begin(), untranslated
                raise translate_error(error, "shard") from error

    data = audit_json(run(action, as_json))
    emit(data, as_json, lambda: _print_audit(data))
    if not data["ok"]:
        raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    """Add `transfers audit`."""
    app.command("audit")(audit_command)
