"""Where settings come from cannot be redirected: a stack file only when nothing else names a
cluster, and only a file of ours naming this machine; an API key never in clear; the worker's
code never taken from the current folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from shards.shard import redact
from transfers.devtools.devstack.worker_process import python_module
from transfers.settings import (
    STACK_FILE,
    Settings,
    StackFileError,
    StackInfo,
    load_settings,
    write_stack,
)

pytestmark = pytest.mark.security

STACK = StackInfo(
    temporal_address="127.0.0.1:7233",
    namespace="default",
    task_queue="transfers",
    ui_url="http://localhost:8233",
    shard_dsns=["postgresql://postgres:secret@127.0.0.1:15432/postgres?require_auth=scram-sha-256"],
)
CLUSTER_SETTINGS = ("TEMPORAL_", "SHARD_DSNS", "PAYLOAD_KEY")


@pytest.fixture
def in_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with a dev stack's file at `.transfers/stack.json` and no settings given."""
    for name in os.environ:
        if name.startswith(CLUSTER_SETTINGS):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".transfers").mkdir()
    write_stack(tmp_path / ".transfers", STACK)
    return tmp_path / ".transfers"


def test_the_stack_file_is_written_for_its_owner_only(in_a_project: Path) -> None:
    assert (in_a_project / STACK_FILE).stat().st_mode & 0o777 == 0o600
    assert load_settings().dsn_list() == STACK.shard_dsns


def test_any_temporal_or_shard_setting_keeps_the_stack_file_out(
    in_a_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example.com:7233")
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-for-the-real-cluster")
    settings = load_settings()
    assert settings.temporal_address == "temporal.example.com:7233"  # not the file's
    assert settings.shard_dsns == ""
    monkeypatch.delenv("TEMPORAL_ADDRESS")
    monkeypatch.delenv("TEMPORAL_API_KEY")
    monkeypatch.setenv("TEMPORAL_NAMESPACE", "payments")
    assert load_settings().temporal_address == "localhost:7233"


def test_an_explicit_stack_never_meets_an_api_key_or_tls(
    in_a_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "key-for-the-real-cluster")
    with pytest.raises(StackFileError, match="TEMPORAL_API_KEY"):
        load_settings(in_a_project)
    monkeypatch.delenv("TEMPORAL_API_KEY")
    monkeypatch.setenv("TEMPORAL_TLS", "true")
    with pytest.raises(StackFileError, match="TEMPORAL_TLS"):
        load_settings(in_a_project)


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666, 0o644])  # 0644: as a git checkout
def test_a_stack_file_not_written_by_transfers_dev_is_refused(
    in_a_project: Path, mode: int
) -> None:
    (in_a_project / STACK_FILE).chmod(mode)
    with pytest.raises(StackFileError, match="mode 0600"):
        load_settings()


def test_a_linked_stack_file_is_refused(in_a_project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    (in_a_project / STACK_FILE).rename(elsewhere)
    (in_a_project / STACK_FILE).symlink_to(elsewhere)
    with pytest.raises(StackFileError, match="cannot be read"):
        load_settings()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file away takes root")
def test_a_stack_file_of_another_user_is_refused(in_a_project: Path) -> None:
    os.chown(in_a_project / STACK_FILE, 65534, 65534)  # nobody
    with pytest.raises(StackFileError, match="yours, mode 0600"):
        load_settings()


@pytest.mark.parametrize(
    "change",
    [
        {"temporal_address": "temporal.example.com:7233"},
        {"shard_dsns": ["postgresql://postgres@db.example.com:5432/postgres"]},
        {"ui_url": "http://phish.example.com:8233"},
        {"temporal_address": "127.evil.example:7233"},
        {"temporal_address": "localhost.evil.example:7233"},
        {"shard_dsns": ["postgresql://postgres@127.0.0.1:5432/postgres?host=db.example.com"]},
        {"shard_dsns": ["postgresql://postgres@127.0.0.1:5432,db.example.com:5432/postgres"]},
        {"shard_dsns": ["postgresql://postgres:pw@127.0.0.1:5432/postgres#?host=192.0.2.2"]},
        {"shard_dsns": ["postgresql://postgres:pw@192.0.2.2,[::1]/postgres"]},
        {"shard_dsns": ["host=192.0.2.2 user=@localhost"]},
        {"shard_dsns": ["postgresql://postgres:pw@127.0.0.1:5432/postgres"]},  # no require_auth
        {"temporal_address": "192.0.2.2:8080\\@localhost:7233"},
        {"ui_url": "http://192.0.2.2:8080\\@localhost:8233"},
    ],
)
def test_a_stack_file_naming_another_machine_is_refused(
    in_a_project: Path, change: dict[str, object]
) -> None:
    write_stack(in_a_project, STACK.model_copy(update=change))
    with pytest.raises(StackFileError, match="not on this machine"):
        load_settings()


def test_an_api_key_is_never_sent_in_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEMPORAL_API_KEY", "the-key")
    monkeypatch.setenv("TEMPORAL_TLS", "false")
    monkeypatch.setenv("TEMPORAL_ADDRESS", "temporal.example.com:7233")
    with pytest.raises(ValueError, match="unencrypted"):
        Settings()
    monkeypatch.setenv("TEMPORAL_ADDRESS", "192.0.2.2:8080\\@localhost:7233")  # the SDK: 192.0.2.2
    with pytest.raises(ValueError, match="unencrypted"):
        Settings()
    monkeypatch.setenv("TEMPORAL_ADDRESS", "127.0.0.1:7233")  # a local proxy or dev server
    assert Settings().temporal_tls is False


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        (
            "postgresql://u:p@ss@db.example.com:5432/ledger",
            "postgresql://db.example.com:5432/ledger",
        ),
        (
            "postgresql://db:5432/ledger?password=s3cret&sslpassword=k3y",
            "postgresql://db:5432/ledger",
        ),
        ("postgresql://u:s3cret@[::1]:5432/ledger", "postgresql://[::1]:5432/ledger"),
        ("host=db password=s3cret", "<DSN not shown>"),
        ("postgresql://app:2024/Summer@db:5432/ledger", "postgresql://db:5432/ledger"),
        ("postgresql://app:/pa@ss@db:5432/ledger", "postgresql://db:5432/ledger"),
        ("postgresql://app:1234#secret@db/ledger", "<DSN not shown>"),
        ("postgresql://db/ledger?sslpassword=a@secret", "<DSN not shown>"),
    ],
)
def test_a_redacted_dsn_shows_host_port_and_database_only(dsn: str, shown: str) -> None:
    assert redact(dsn) == shown


def test_a_worker_py_in_the_current_folder_is_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "shadowed"
    (tmp_path / "worker.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (tmp_path / "shards").mkdir()
    (tmp_path / "shards" / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    environment = {"PATH": os.environ["PATH"], "SHARD_DSNS": "", "STARTUP_TIMEOUT_S": "x"}
    completed = subprocess.run(
        python_module("worker"),
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == 2, completed.stderr  # the real worker: bad settings
    assert "STARTUP_TIMEOUT_S" in completed.stderr
    assert not marker.exists()
