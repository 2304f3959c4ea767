"""One shard: a pooled async engine and its unit of work, with database errors translated."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import cast

import psycopg
import psycopg.errors
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.util import greenlet_spawn

from shards.compiled import Driver
from shards.errors import InfrastructureError, LockTimeout, SerializationFailure, ShardUnavailable


def sqlalchemy_url(dsn: str) -> str:
    """Any PostgreSQL DSN as a `postgresql+psycopg://` URL."""
    url = make_url(dsn.strip())
    if url.get_backend_name() not in {"postgresql", "postgres"}:
        raise ValueError(f"not a PostgreSQL DSN: {redact(dsn)}")
    return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


_LOCATION = re.compile(r"(?P<host>[A-Za-z0-9.-]*|\[[0-9A-Fa-f:.]+\])(?P<port>:[0-9]{1,5})?")
_DATABASE = re.compile(r"/[A-Za-z0-9_.-]*")
NOT_SHOWN = "<DSN not shown>"


def redact(dsn: str) -> str:
    """Which server a DSN names, safe for logs and error messages: scheme, host, port and
    database only. The host is what follows the last `@` (a password may hold `@` or `/`); a
    DSN that does not take apart cleanly is not shown at all (it may hold a secret anywhere: a
    key=value DSN, an `@` in a query)."""
    scheme, separator, rest = dsn.strip().partition("://")
    credentials, _at, after = rest.rpartition("@")
    location, slash, tail = after.partition("/")
    database = f"/{re.split(r'[?#]', tail, maxsplit=1)[0]}" if slash else ""
    location = re.split(r"[?#]", location, maxsplit=1)[0]
    if (
        not separator
        or re.search(r"[?#]", credentials)  # an `@` in a query or fragment: its end is shown
        or not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme)
        or not _LOCATION.fullmatch(location)
        or (database and not _DATABASE.fullmatch(database))
    ):
        return NOT_SHOWN
    return f"{scheme}://{location}{database}"


@dataclass(frozen=True)
class PoolSettings:
    """Connection pool and server-side timeouts for one shard."""

    pool_size: int = 10
    max_overflow: int = 10
    connect_timeout_s: int = 5
    lock_timeout_ms: int = 5_000
    statement_timeout_ms: int = 15_000


class Shard:
    """A shard's engine; `begin()` is one short local transaction."""

    def __init__(self, index: int, dsn: str, pool: PoolSettings | None = None) -> None:
        pool = pool or PoolSettings()
        self.index = index
        self.name = f"shard-{index}"
        self.redacted_dsn = redact(dsn)
        options = (
            f"-c lock_timeout={pool.lock_timeout_ms} "
            f"-c statement_timeout={pool.statement_timeout_ms} "
            "-c idle_in_transaction_session_timeout=60000 "
            # The steps' guards are written for READ COMMITTED (a marker's opening re-run above
            # all: shards.engine.openings); a server's other default must not change them.
            r"-c default_transaction_isolation=read\ committed"
        )
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(dsn),
            pool_size=pool.pool_size,
            max_overflow=pool.max_overflow,
            pool_timeout=pool.connect_timeout_s * 2,
            # A ROLLBACK on every return to the pool costs a step about a tenth of its CPU; the
            # reset listener below rolls back only a connection that comes back mid-transaction.
            pool_reset_on_return=None,
            connect_args={
                "options": options,
                "connect_timeout": pool.connect_timeout_s,
                "application_name": "transfers",
            },
        )
        event.listen(self.engine.sync_engine, "reset", _roll_back_if_in_transaction)
        # Same pool; every statement of a transaction sees the snapshot taken by its first one.
        self.snapshot_engine = self.engine.execution_options(isolation_level="REPEATABLE READ")

    @asynccontextmanager
    async def begin(self, *, snapshot: bool = False) -> AsyncIterator[AsyncConnection]:
        """Commit on success, roll back on any exception; database errors become ours.

        `snapshot` runs the transaction at REPEATABLE READ: its reads agree with each other, and a
        write to a row changed since they were taken fails with `SerializationFailure`.
        """
        engine = self.snapshot_engine if snapshot else self.engine
        try:
            async with engine.begin() as connection:
                yield connection
        except DBAPIError as error:
            translated = translate_error(error, self.name)
            if translated is error:
                raise
            raise translated from error
        except PoolTimeout as error:  # every pooled connection stayed busy for pool_timeout
            raise ShardUnavailable(f"{self.name}: no free connection: {error}") from error
        except (OSError, TimeoutError) as error:
            raise ShardUnavailable(f"{self.name} unreachable: {error}") from error

    @asynccontextmanager
    async def driver_transaction(self, *, snapshot: bool = False) -> AsyncIterator[Driver]:
        """Like `begin()`, on the pooled connection's psycopg driver (see shards.compiled)."""
        try:
            # The bare pooled connection: a Connection facade would cost more than the step's SQL.
            pooled = await self.engine.raw_connection()
        except (psycopg.Error, DBAPIError, PoolTimeout, OSError, TimeoutError) as error:
            raise self._checkout_failure(error) from error
        driver = cast(Driver, pooled.driver_connection)
        try:
            if snapshot:
                await driver.set_isolation_level(psycopg.IsolationLevel.REPEATABLE_READ)
            async with driver.transaction():
                yield driver
        except psycopg.Error as error:
            if driver.broken:  # keep a dead connection out of the pool
                await greenlet_spawn(pooled.invalidate)
            translated = translate_driver_error(error, self.name)
            if translated is None:
                raise
            raise translated from error
        finally:
            if snapshot and not driver.closed:  # the pool's default for the next user
                await driver.set_isolation_level(None)
            await greenlet_spawn(pooled.close)  # back to the pool, through SQLAlchemy's bridge

    def _checkout_failure(self, error: Exception) -> Exception:
        if isinstance(error, DBAPIError):
            return translate_error(error, self.name)
        if isinstance(error, PoolTimeout):  # every pooled connection stayed busy for pool_timeout
            return ShardUnavailable(f"{self.name}: no free connection: {error}")
        if isinstance(error, psycopg.Error):
            return translate_driver_error(error, self.name) or error
        return ShardUnavailable(f"{self.name} unreachable: {error}")

    async def dispose(self) -> None:
        """Close the shard's connection pool."""
        await self.engine.dispose()


def _roll_back_if_in_transaction(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, state: PoolResetState
) -> None:
    """On return to the pool: end a transaction left open (an error or a cancellation midway)."""
    driver = cast(Driver, record.driver_connection)
    idle = driver.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    if state.asyncio_safe and not idle and not driver.closed:
        dbapi_connection.rollback()


def translate_error(error: DBAPIError, shard_name: str) -> Exception:
    """Map a driver error to the retryable infrastructure errors; anything else is a bug."""
    original = error.orig
    translated = translate_driver_error(original, shard_name)
    if translated is None and error.connection_invalidated:
        return ShardUnavailable(f"{shard_name} unavailable: {_first_line(original)}")
    return error if translated is None else translated


def translate_driver_error(error: BaseException | None, shard_name: str) -> Exception | None:
    """The retryable error for a psycopg error, or None when it is not one of those."""
    if isinstance(error, psycopg.errors.SerializationFailure | psycopg.errors.DeadlockDetected):
        return SerializationFailure(f"{shard_name}: {type(error).__name__}")
    if isinstance(error, psycopg.errors.LockNotAvailable):
        return LockTimeout(f"{shard_name}: row lock not granted within lock_timeout")
    if isinstance(error, psycopg.errors.QueryCanceled):
        return LockTimeout(f"{shard_name}: statement timed out")
    if isinstance(error, psycopg.OperationalError | psycopg.InterfaceError):
        return ShardUnavailable(f"{shard_name} unavailable: {_first_line(error)}")
    return None


def _first_line(error: BaseException | None) -> str:
    text = str(error or "").strip()
    return text.splitlines()[0] if text else type(error).__name__


__all__ = ["InfrastructureError", "PoolSettings", "Shard", "redact", "sqlalchemy_url"]
