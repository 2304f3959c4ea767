"""What a chaos run hands its checks besides the evidence, and what a check reports."""

from __future__ import annotations

from dataclasses import dataclass, field

from transfers.devtools.chaos.accounts import AccountBook
from transfers.devtools.chaos.workload import BatchRecord, TransferRecord


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    detail: str


@dataclass(frozen=True)
class RunRecord:
    """What the run did: its accounts, its transfers (single and batched), its batches, and what
    its clients could not explain."""

    book: AccountBook
    transfers: dict[str, TransferRecord]
    client_anomalies: list[tuple[str, str]]  # (transfer id, what went wrong)
    duplicate_problems: list[tuple[str, str]]
    batches: dict[str, BatchRecord] = field(default_factory=dict)
