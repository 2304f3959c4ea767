"""Array parameters go to the server in binary (shards.compiled) and it reads exactly the values
it read in psycopg's text format: elements text quotes or escapes, NULLs, int64's ends, empties."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import BigInteger, Boolean, Text, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from shards.compiled import Compiled
from shards.router import ShardRouter

_ECHO = Compiled.of(
    select(
        bindparam("texts", type_=ARRAY(Text)).label("texts"),
        bindparam("numbers", type_=ARRAY(BigInteger)).label("numbers"),
        bindparam("flags", type_=ARRAY(Boolean)).label("flags"),
        bindparam("one", type_=BigInteger).label("one"),
    )
)
# The same statement with every parameter in psycopg's default (text, for lists) format.
_ECHO_AS_TEXT = Compiled(_ECHO.sql.replace(")b::", ")s::"), _ECHO.constants)

AWKWARD_TEXTS = ["", "NULL", "null", "a,b", "{x}", 'say "hi"', "back\\slash", " pad ", "é€", None]


@dataclass(frozen=True)
class _Echo:
    texts: list[str | None] | None
    numbers: list[int | None] | None
    flags: list[bool | None] | None
    one: int


def test_array_parameters_are_marked_binary_and_scalars_are_not() -> None:
    assert "%(texts)b::TEXT[]" in _ECHO.sql
    assert "%(numbers)b::BIGINT[]" in _ECHO.sql
    assert "%(flags)b::BOOLEAN[]" in _ECHO.sql
    assert "%(one)s::BIGINT" in _ECHO.sql


@pytest.mark.parametrize(
    "values",
    [
        {"texts": AWKWARD_TEXTS, "numbers": [0, -1, 2**63 - 1, -(2**63), None], "flags": [True]},
        {"texts": ["acc-1", "acc-2"], "numbers": [1, 2, 3], "flags": [False, None, True]},
        {"texts": [], "numbers": [], "flags": []},
        {"texts": [None, None], "numbers": [None], "flags": [None]},
    ],
    ids=["awkward", "small-ints", "empty", "all-null"],
)
async def test_binary_arrays_reach_the_server_as_the_text_format_did(
    router: ShardRouter, values: dict[str, list[Any]]
) -> None:
    async with router.shards[0].driver_transaction() as connection:
        (binary,) = await _ECHO.objects(connection, _Echo, one=7, **values)
        (as_text,) = await _ECHO_AS_TEXT.objects(connection, _Echo, one=7, **values)
    assert binary == as_text
    assert (binary.texts, binary.numbers, binary.flags) == (
        values["texts"],
        values["numbers"],
        values["flags"],
    )
