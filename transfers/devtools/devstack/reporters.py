"""What `transfers dev` says while its stack runs: lines for a person, or JSON lines for scripts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from shards.shard import redact
from transfers.settings import StackInfo
from transfers.stack_location import DEFAULT_DATA_DIR
from transfers.terminal import console, errors, link, styled
from transfers.ui_links import status_list_link
from workflows.models import TransferStatus

if TYPE_CHECKING:
    from transfers.devtools.devstack.demo import DemoTransfer

STATUS_COLOURS = {
    TransferStatus.COMPLETED: "green",
    TransferStatus.FAILED: "red",
    TransferStatus.COMPENSATED: "yellow",
}
# Printed as links at start-up (the JSON has every status): the UI's list says COMPLETED for
# each of these workflows; a stuck refund waits in COMPENSATING.
LISTED_STATUSES = (*STATUS_COLOURS, TransferStatus.COMPENSATING)


def ui_status_links(stack: StackInfo) -> dict[str, str]:
    """Each status -> the Web UI's list of the transfers in it (none without a UI)."""
    if stack.ui_url is None:
        return {}
    return {
        status.value: status_list_link(stack.ui_url, stack.namespace, status)
        for status in TransferStatus
    }


class ConsoleReporter:
    """What the stack does, for a person at a terminal."""

    def __init__(self, data_dir: Path, worker: bool) -> None:
        self.data_dir = data_dir
        self.worker = worker

    def ready(self, stack: StackInfo, stack_file: Path) -> None:
        logs = self.data_dir / "logs"
        worker = f"log {logs}/worker.log" if self.worker else "none: run `transfers worker`"
        lines: list[str | Text] = [
            styled(("transfers dev is up", "bold green"), f" (data in {self.data_dir})"),
            f"  Temporal    {stack.temporal_address}  namespace {stack.namespace}, "
            f"task queue {stack.task_queue}",
            Text.assemble(
                "  Web UI      ",
                link(stack.ui_url) if stack.ui_url else "none",
                " (this machine only: it shows every history, memo and amount)",
            ),
            *_status_link_lines(stack),
            *(
                f"  shard {index}     {redact(dsn)} (password in the stack file)"
                for index, dsn in enumerate(stack.shard_dsns)
            ),
            f"  worker      {worker}",
            f"  stack file  {stack_file}",
        ]
        hint = "" if self.data_dir == DEFAULT_DATA_DIR else f" --stack {self.data_dir}"
        lines.append(
            f"Other terminals: `transfers accounts list{hint}`, `transfers submit ...{hint}`. "
            "Ctrl-C stops everything."
        )
        console.print(*lines, sep="\n")

    def demo(self, transfers: list[DemoTransfer]) -> None:
        table = Table("transfer", "what it shows", "amount", "status", title="sample transfers")
        for transfer in transfers:
            colour = STATUS_COLOURS.get(transfer.status, "white")
            request = transfer.request
            route = f"{request.source_account_id} -> {request.target_account_id}"
            table.add_row(
                Text(f"{transfer.transfer_id}\n{route}"),  # a Text keeps its line break
                transfer.story,
                f"{transfer.amount} {request.currency}",
                styled((transfer.status, colour)),
            )
        console.print(table)
        # Links outside the table: a narrow terminal would cut them short in a cell.
        for transfer in transfers:
            console.print(Text.assemble(f"  {transfer.transfer_id}: ", link(transfer.ui_link)))

    def problem(self, message: str) -> None:
        errors.print(styled(("error:", "red"), " ", message))

    def stopping(self) -> None:
        console.print("stopping: worker, then Temporal, then the shards ...")


def _status_link_lines(stack: StackInfo) -> list[Text]:
    links = ui_status_links(stack)
    shown = [status for status in LISTED_STATUSES if status in links]
    return [
        Text.assemble(
            f"  {'by status' if index == 0 else '':<10}  {status:<12}  ", link(links[status])
        )
        for index, status in enumerate(shown)
    ]


class JsonReporter:
    """What the stack does, one JSON object per line, each with an `event` key."""

    def _line(self, event: str, data: dict[str, Any]) -> None:
        print(json.dumps({"event": event, **data}), flush=True)

    def ready(self, stack: StackInfo, stack_file: Path) -> None:
        shown = {**stack.model_dump(), "shard_dsns": [redact(dsn) for dsn in stack.shard_dsns]}
        shown["ui_status_links"] = ui_status_links(stack)
        self._line("ready", {**shown, "stack_file": str(stack_file)})  # passwords: in the file

    def demo(self, transfers: list[DemoTransfer]) -> None:
        self._line("demo", {"transfers": [demo_json(transfer) for transfer in transfers]})

    def problem(self, message: str) -> None:
        self._line("error", {"message": message})

    def stopping(self) -> None:
        self._line("stopping", {})


def demo_json(transfer: DemoTransfer) -> dict[str, Any]:
    request = transfer.request
    return {
        "transfer_id": transfer.transfer_id,
        "story": transfer.story,
        "source_account_id": request.source_account_id,
        "target_account_id": request.target_account_id,
        "amount": transfer.amount,
        "currency": request.currency,
        "status": transfer.status.value,
        "ui_link": transfer.ui_link,
    }
