"""A file of transfers for `transfers submit --file`: CSV with the header
`transfer_id,from,to,amount,currency[,memo]`, or JSON Lines with the same keys (told apart by the
first character: `{` is JSON Lines). `amount` is a decimal string in major units ("12.34").

Every line is checked before anything is submitted: a bad row, or a transfer id twice in the file,
is reported with its line number, all of them at once (`BadFile`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shards.errors import InvalidInput, TransfersError
from shards.money import parse_amount

if TYPE_CHECKING:
    from workflows.models import TransferRequest

REQUIRED = ("transfer_id", "from", "to", "amount", "currency")
COLUMNS = (*REQUIRED, "memo")


class BadFile(InvalidInput):
    """The file has bad lines: `problems` lists each as (line number, what is wrong)."""

    def __init__(self, name: str, problems: list[tuple[int, str]]) -> None:
        noun = "line" if len(problems) == 1 else "lines"
        self.headline = f"{name}: {len(problems)} bad {noun}, nothing submitted"
        self.lines = [f"line {number}: {problem}" for number, problem in problems]
        super().__init__("\n".join([self.headline, *self.lines]))
        self.problems = problems


@dataclass(frozen=True)
class _Row:
    number: int
    fields: dict[str, object]


def read_transfers(text: str, name: str) -> list[TransferRequest]:
    """The transfers of a file's `text`, in order; `BadFile` listing every bad line."""
    if not text.strip():
        raise BadFile(name, [(1, "the file is empty")])
    problems: list[tuple[int, str]] = []
    requests: list[TransferRequest] = []
    first_line: dict[str, int] = {}
    rows = _json_lines(text, problems) if text.lstrip().startswith("{") else _csv(text, problems)
    for row in rows:
        try:
            request = _request(row.fields)
        except TransfersError as error:
            problems.append((row.number, str(error)))
            continue
        seen = first_line.setdefault(request.transfer_id, row.number)
        if seen != row.number:
            problems.append(
                (row.number, f"transfer_id {request.transfer_id} is on line {seen} already")
            )
            continue
        requests.append(request)
    if not requests and not problems:
        problems.append((1, "no transfers in the file"))
    if problems:
        raise BadFile(name, sorted(problems))
    return requests


def _csv(text: str, problems: list[tuple[int, str]]) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    expected = ",".join(REQUIRED) + "[,memo]"
    if header is None or tuple(header) not in (REQUIRED, COLUMNS):
        problems.append((1, f"the header must be {expected}, not {','.join(header or [])!r}"))
        return
    line = reader.line_num
    for values in reader:
        number, line = line + 1, reader.line_num
        if not values:
            continue  # a blank line
        if len(values) != len(header):
            problems.append((number, f"{len(values)} fields where the header has {len(header)}"))
            continue
        yield _Row(number, dict(zip(header, values, strict=True)))


def _json_lines(text: str, problems: list[tuple[int, str]]) -> Iterator[_Row]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            # numbers kept as their text: an amount 12.34 is never a float
            fields = json.loads(line, parse_float=str, parse_int=str)
        except json.JSONDecodeError as error:
            problems.append((number, f"not JSON: {error.msg}"))
            continue
        if not isinstance(fields, dict):
            problems.append((number, "not a JSON object"))
            continue
        unknown = sorted(set(fields) - set(COLUMNS))
        if unknown:
            problems.append(
                (number, f"unknown keys {', '.join(unknown)}; keys: {', '.join(COLUMNS)}")
            )
            continue
        yield _Row(number, fields)


def _request(fields: dict[str, object]) -> TransferRequest:
    """One row as a transfer request, validated as `transfers submit` validates one."""
    from pydantic import ValidationError

    from workflows.models import TransferRequest

    missing = [key for key in REQUIRED if not isinstance(fields.get(key), str) or not fields[key]]
    if missing:
        raise InvalidInput(f"missing or not text: {', '.join(missing)}")
    currency = str(fields["currency"]).upper()
    memo = fields.get("memo")
    try:
        return TransferRequest(
            transfer_id=fields["transfer_id"],
            source_account_id=fields["from"],
            target_account_id=fields["to"],
            amount=parse_amount(str(fields["amount"]), currency),
            currency=currency,
            memo=memo or None,
        )
    except ValidationError as error:
        problem = error.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "transfer"
        message = problem["msg"].removeprefix("Value error, ")
        raise InvalidInput(f"{_FIELD_NAMES.get(where, where)}: {message}") from None


# The request's field names as the file calls them.
_FIELD_NAMES = {"source_account_id": "from", "target_account_id": "to"}
