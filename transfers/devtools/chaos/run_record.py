"""What a chaos run hands its checks besides the evidence, and what a check reports."""

from __future__ import annotations

from dataclasses import dataclass

from transfers.devtools.chaos.accounts import AccountBook
from transfers.devtools.chaos.workload import TransferRecord


@dataclass(frozen=True)
class Violation:
    check: str
    subject: str
    detail: str


@dataclass(frozen=True)
class RunRecord:
    """What the run did: its accounts, its transfers, and what its clients could not explain."""

    book: AccountBook
    transfers: dict[str, TransferRecord]
    client_anomalies: list[tuple[str, str]]  # (transfer id, what went wrong)
    duplicate_problems: list[tuple[str, str]]
