"""Alembic environment: runs on the connection handed in by shards.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from shards.schema import Base

connection: Connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
