"""Statements built with typed SQLAlchemy Core, compiled once, run on the psycopg connection.

A saga step runs the same few statements thousands of times a second. SQLAlchemy's execution
path (cache key, execution context, greenlet hop, result wrapping) cost more CPU than the
statements themselves on a 2-core machine (`transfers bench shards` measures it), so the step
path compiles each statement once here and hands the SQL to psycopg directly. The tables are
still the one typed definition in shards.schema; psycopg still prepares the statements
server-side after a few runs.

Array parameters (the batched steps' `unnest` columns and `= ANY` lists) are sent in PostgreSQL's
binary format: psycopg's text format quotes each element after a regular expression search,
which took an eighth of the worker's CPU at thousands of batched transfers a second
(BENCHMARKS.md, "Batches"). Every such parameter is cast in the SQL (`::TEXT[]`, `::BIGINT[]`),
so the server reads the same values either way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import psycopg
from psycopg.rows import AsyncRowFactory, class_row
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.sql import ClauseElement, sqltypes
from sqlalchemy.sql.compiler import SQLCompiler

Driver = psycopg.AsyncConnection[Any]
T = TypeVar("T")

_DIALECT = PGDialect_psycopg()  # type: ignore[no-untyped-call]


@dataclass(frozen=True)
class Compiled:
    """One statement as SQL text with `%(name)s` placeholders and its constant parameters."""

    sql: str
    constants: Mapping[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> Compiled:
        """Compile `statement` once for psycopg; its literal binds become `constants`."""
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        # Binds with no value are the caller's; those with one are literals such as `+ 1`.
        constants = compiled.construct_params(_check=False)
        sql = compiled.string
        for bind, name in compiled.bind_names.items():
            if isinstance(bind.type, sqltypes.ARRAY):  # `%(name)b`: psycopg dumps it in binary
                sql = sql.replace(f"%({name})s", f"%({name})b")
        return cls(sql, {k: v for k, v in constants.items() if v is not None})

    async def rows(
        self, connection: Driver, row_factory: AsyncRowFactory[T], **parameters: Any
    ) -> list[T]:
        """Run the statement on `connection`, each row built by `row_factory`."""
        async with connection.cursor(row_factory=row_factory) as cursor:
            await cursor.execute(self.sql, {**self.constants, **parameters})
            return await cursor.fetchall()

    async def objects(self, connection: Driver, kind: type[T], **parameters: Any) -> list[T]:
        """The rows as `kind` instances, built from the columns by name."""
        return await self.rows(connection, class_row(kind), **parameters)

    async def run(self, connection: Driver, **parameters: Any) -> int:
        """Run a statement without rows; returns the number of rows it touched."""
        async with connection.cursor() as cursor:
            await cursor.execute(self.sql, {**self.constants, **parameters})
            return cursor.rowcount
