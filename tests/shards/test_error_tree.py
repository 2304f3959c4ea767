"""One error tree (shards.errors): drawn whole in its docstring, each error's code and exit code
given one way, the names that go out in `--json` and across Temporal kept."""

from __future__ import annotations

import inspect
import re

import shards.errors
import transfers.client
from shards.errors import BUSINESS_ERRORS, InvalidInput, TransfersError

TREE = {
    cls.__name__: cls
    for cls in vars(shards.errors).values()
    if inspect.isclass(cls) and issubclass(cls, TransfersError)
}

# `ApplicationError.type` of an activity's refusal: in recorded histories and retry policies.
CROSS_TEMPORAL = [
    "InvalidInput",
    "InvalidAmount",
    "InvalidAccountId",
    "InvalidTransferId",
    "InvalidCurrency",
    "InvalidTtl",
    "InvalidCursor",
    "SameAccount",
    "InsufficientFunds",
    "AccountNotFound",
    "AccountNotOpen",
    "AccountAlreadyExists",
    "AccountNotEmpty",
    "CurrencyMismatch",
    "IdempotencyConflict",
    "AlreadyCompensated",
    "RouteChanged",
    "HoldExpired",
    "HoldNotActive",
]
# "type" of `--json` errors that the CLI printed before they joined the tree.
JSON_TYPES = [
    "TransferNotFound",
    "RefundNotStuck",
    "TemporalUnavailable",
    "PayloadKeyError",
    "StackFileError",
    "ConfigError",
    "AlreadyFinished",
    "UnknownTransfer",
    "ShardUnavailable",
]


def drawing() -> list[tuple[int, str]]:
    """(depth, name) of each error the module docstring draws, top to bottom."""
    drawn = []
    for line in (shards.errors.__doc__ or "").splitlines():
        found = re.match(r"^    ((?:[│ ]   )*)(?:├── |└── )?([A-Z]\w+)", line)
        if found is not None:
            depth = len(found[1]) // 4 + (0 if found[2] == "TransfersError" else 1)
            drawn.append((depth, found[2]))
    return drawn


def test_the_docstring_draws_every_error_of_the_tree_once_and_nothing_else() -> None:
    assert sorted(name for _, name in drawing()) == sorted(TREE)


def test_each_drawn_error_sits_under_the_parent_the_drawing_shows() -> None:
    parents: list[str] = []
    for depth, name in drawing():
        parents[depth:] = [name]
        if depth:
            assert TREE[name].__bases__ == (TREE[parents[depth - 1]],), name


def test_codes_are_class_names_that_the_contracts_still_hold() -> None:
    assert set(CROSS_TEMPORAL + JSON_TYPES) <= set(TREE)
    assert sorted(BUSINESS_ERRORS) == sorted(CROSS_TEMPORAL)  # the retry policies' list
    assert all(TREE[name]("m").code == name for name in TREE)


def test_bad_input_exits_2_and_every_other_error_exits_1() -> None:
    for cls in TREE.values():
        assert cls.exit_code == (2 if issubclass(cls, InvalidInput) else 1), cls


def test_the_client_re_exports_its_errors_from_the_tree() -> None:
    for name in ("TransfersError", "TransferNotFound", "RefundNotStuck", "TemporalUnavailable"):
        assert getattr(transfers.client, name) is TREE[name]
