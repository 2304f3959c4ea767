"""The embedded PostgreSQL servers behind `transfers dev` and the test shards."""

from pathlib import Path

import psycopg
import pytest

from transfers.devtools.embedded_pg import EmbeddedPostgres, free_port


def test_a_relative_data_dir_works_like_the_default_dot_transfers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    server = EmbeddedPostgres(Path(".transfers/shards/shard-0"), free_port(), durable=False)
    try:
        server.start()
        with psycopg.connect(server.dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.remove()
    assert server.data_dir == tmp_path / ".transfers/shards/shard-0"
