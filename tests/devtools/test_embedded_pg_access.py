"""The embedded PostgreSQL servers (dev stack, tests, bench) as another local user would meet them:
no way in without the password, no shell that sees a path, no folder made wider."""

from __future__ import annotations

import contextlib
import os
import pwd
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from transfers.devtools.devstack.data_dir import lock_data_dir
from transfers.devtools.devstack.processes import ChildProcess, StackError
from transfers.devtools.embedded_pg import EmbeddedPostgres, ServerStartError, free_port
from transfers.devtools.embedded_pg.service_account import (
    SERVICE_HOME,
    SERVICE_USER,
    root_owned_folder,
)

pytestmark = pytest.mark.security

AS_ROOT = os.geteuid() == 0
REPOSITORY = Path(__file__).resolve().parents[2]


@pytest.fixture
def private_folder() -> Iterator[Path]:
    """A folder only its owner may enter, like root's home or `mktemp -d`."""
    folder = Path(tempfile.mkdtemp(prefix="transfers-private-"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    yield folder
    subprocess.run(["rm", "-rf", str(folder)], check=False)


@pytest.fixture
def server(private_folder: Path) -> Iterator[EmbeddedPostgres]:
    started = EmbeddedPostgres(private_folder / "shard-0", free_port(), durable=False)
    started.start()
    yield started
    started.remove()


def _modes(path: Path) -> list[tuple[Path, int]]:
    return [(folder, folder.stat().st_mode) for folder in [path, *path.parents]]


def test_no_connection_without_the_password(
    server: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)  # no ~/.pgpass may fill it in
    anyone = f"postgresql://postgres@127.0.0.1:{server.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(anyone, connect_timeout=5).close()
    wrong = f"postgresql://postgres:guess@127.0.0.1:{server.port}/postgres"
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(wrong, connect_timeout=5).close()
    with psycopg.connect(server.dsn, connect_timeout=5) as connection:
        assert connection.execute("SHOW unix_socket_directories").fetchone() == ("",)
        assert connection.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    password_file = server.data_dir / "password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert urlsplit(server.dsn).password == password_file.read_text().strip()


@pytest.mark.skipif(not AS_ROOT, reason="as another user, PostgreSQL runs as that user")
def test_as_root_the_server_runs_in_its_own_group_without_a_shell(
    server: EmbeddedPostgres,
) -> None:
    account = pwd.getpwnam(SERVICE_USER)
    pid = server.pid()
    assert pid is not None
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    assert status["Uid"].split() == [str(account.pw_uid)] * 4
    assert status["Gid"].split() == [str(account.pw_gid)] * 4
    assert status["Groups"].split() == []
    assert account.pw_gid != 0
    assert account.pw_shell.endswith(("nologin", "false"))
    # Binaries and data sit under root's own folder, the data readable by the account only.
    assert server.pgdata.is_relative_to(SERVICE_HOME)
    assert server.pgdata.stat().st_uid == account.pw_uid
    assert stat.S_IMODE(server.pgdata.stat().st_mode) == 0o700
    assert Path(os.readlink(f"/proc/{pid}/exe")).is_relative_to(SERVICE_HOME)


def test_folders_it_did_not_create_keep_their_modes(private_folder: Path) -> None:
    data_dir = private_folder / "clone" / ".transfers" / "shards" / "shard-0"
    before = _modes(private_folder)
    wheel = Path(sys.prefix)
    wheel_before = _modes(wheel)
    server = EmbeddedPostgres(data_dir, free_port(), durable=False)
    try:
        server.start()
        with psycopg.connect(server.dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.stop("immediate")
    assert _modes(private_folder) == before
    assert _modes(wheel) == wheel_before
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700


def test_a_clone_in_a_private_folder_starts_its_server(private_folder: Path) -> None:
    """The newcomer's path: `git clone` into a 0700 folder, a server started from the clone."""
    clone = private_folder / "transfers"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", f"file://{REPOSITORY}", str(clone)],
        check=True,
        capture_output=True,
    )
    before = _modes(clone)
    script = (
        "from pathlib import Path; import psycopg\n"
        "from transfers.devtools.embedded_pg import EmbeddedPostgres, free_port\n"
        "server = EmbeddedPostgres(Path('.transfers/shards/shard-0'), free_port(), durable=False)\n"
        "server.start()\n"
        "print(psycopg.connect(server.dsn).execute('SELECT 40 + 2').fetchone()[0])\n"
        "server.remove()\n"
    )
    completed = subprocess.run(
        [sys.executable, "-P", "-c", script],
        cwd=clone,
        env={**os.environ, "PYTHONPATH": str(clone)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (completed.returncode, completed.stdout.strip()) == (0, "42"), completed.stderr
    assert _modes(clone) == before


def test_a_data_dir_named_like_a_shell_command_runs_nothing(
    private_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"pwned-{os.getpid()}"
    monkeypatch.chdir(private_folder)
    data_dir = private_folder / f"a b$(touch {marker})c`touch {marker}`"
    server = EmbeddedPostgres(data_dir, free_port(), durable=False)
    try:
        server.start()
        with psycopg.connect(server.dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        server.remove()
    for folder in (private_folder, server.pgdata, Path("/"), Path.home()):
        assert not (folder / marker).exists()


def test_a_pid_file_naming_another_process_is_not_signalled(server: EmbeddedPostgres) -> None:
    """The pid file is written by the server's account: root must not trust it to pick a pid."""
    server.stop("fast")
    (server.pgdata / "postmaster.pid").write_text(f"{os.getpid()}\n{server.pgdata}\n")
    assert server.pid() is None
    server.stop("immediate")  # would be SIGQUIT to this test's own process if it trusted it


@pytest.mark.skipif(not AS_ROOT, reason="only root keeps binaries and data there")
def test_a_service_home_others_may_write_is_refused(private_folder: Path) -> None:
    writable = private_folder / "home"
    writable.mkdir(mode=0o777)
    writable.chmod(0o777)
    with pytest.raises(PermissionError, match="only root may write"):
        root_owned_folder(writable)
    link = private_folder / "link"
    link.symlink_to(private_folder)
    with pytest.raises(PermissionError):
        root_owned_folder(link)


def test_a_server_a_killed_run_left_is_found_and_stopped(server: EmbeddedPostgres) -> None:
    """What `transfers dev` does first: the folder's server, started by another process."""
    leftover = EmbeddedPostgres(server.data_dir, port=0)
    running = server.pid()
    assert running is not None
    assert leftover.pid() == running
    leftover.stop("fast")
    assert server.pid() is None


def _cleartext_impostor(port: int, received: list[bytes]) -> socket.socket:
    """A server on the port that asks every client for its password in clear."""
    listener = socket.create_server(("127.0.0.1", port))

    def serve() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                # An SSL or GSS request (8 bytes) is declined; then comes the startup message.
                while len(connection.recv(4096)) == 8:
                    connection.sendall(b"N")
                connection.sendall(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartext
                received.append(connection.recv(4096))

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_the_password_never_goes_to_an_impostor_on_the_port(private_folder: Path) -> None:
    """Another local user may take a shard's port first: libpq must refuse to answer it."""
    server = EmbeddedPostgres(private_folder / "shard-0", free_port(), durable=False)
    server.start()
    server.stop("fast")
    received: list[bytes] = []
    with (
        _cleartext_impostor(server.port, received),
        pytest.raises(psycopg.OperationalError, match="cleartext"),
    ):
        psycopg.connect(server.dsn, connect_timeout=5).close()
    assert all(server.password.encode() not in message for message in received)
    server.remove()


def test_a_cluster_and_password_a_checkout_brought_are_not_started(private_folder: Path) -> None:
    """Files git checked out are 0644: a password file not written by transfers (mode 0600)
    means the cluster beside it is someone else's, with their postgresql.conf."""
    server = EmbeddedPostgres(private_folder / "shard-0", free_port(), durable=False)
    server.start()
    server.stop("fast")
    (server.data_dir / "password").chmod(0o644)
    with pytest.raises(ServerStartError, match="not written by transfers"):
        server.start()
    assert server.pid() is None
    server.remove()


def test_a_linked_pgdata_is_not_emptied(private_folder: Path) -> None:
    precious = private_folder / "home"
    (precious / "projects").mkdir(parents=True)
    (precious / "notes.txt").write_text("keep me")
    data_dir = private_folder / "clone" / "shard-0"
    data_dir.mkdir(parents=True)
    (data_dir / "pgdata").symlink_to(precious)
    (precious / "PG_VERSION").write_text("18\n")  # looks like a cluster without its password
    server = EmbeddedPostgres(data_dir, free_port(), durable=False)
    if server.pgdata != data_dir / "pgdata":
        pytest.skip("as root the data lives under the service home, not in the data dir")
    with pytest.raises(ServerStartError, match="is a link"):
        server.start()
    assert (precious / "notes.txt").read_text() == "keep me"
    assert (precious / "projects").is_dir()


def test_a_data_dir_with_a_link_in_it_is_refused(private_folder: Path) -> None:
    target = private_folder / "bashrc"
    target.write_text("keep me")
    data_dir = private_folder / ".transfers"
    (data_dir / "logs").mkdir(parents=True)
    (data_dir / "logs" / "worker.log").symlink_to(target)
    with pytest.raises(StackError, match="is a link"):
        lock_data_dir(data_dir)
    assert target.read_text() == "keep me"


def test_a_child_log_is_never_written_through_a_link(private_folder: Path) -> None:
    target = private_folder / "bashrc"
    target.write_text("keep me")
    (private_folder / "worker.log").symlink_to(target)
    child = ChildProcess("worker", ["true"], private_folder / "worker.log")
    with pytest.raises(OSError, match="Too many levels of symbolic links"):
        child.start()
    assert target.read_text() == "keep me"


@pytest.mark.skipif(not AS_ROOT, reason="only root keeps data outside the project folder")
def test_the_data_of_a_removed_folder_is_swept(private_folder: Path) -> None:
    """As root the data lives under /var/lib: a project folder deleted without `remove()`
    (pytest's temporary folders, `make clean`) must not leave it there for good."""
    gone = EmbeddedPostgres(private_folder / "gone" / "shard-0", free_port(), durable=False)
    gone.start()
    gone.stop("fast")
    assert (gone.pgdata / "PG_VERSION").exists()
    running = EmbeddedPostgres(private_folder / "running" / "shard-0", free_port(), durable=False)
    running.start()
    subprocess.run(["rm", "-rf", str(private_folder / "gone"), str(running.data_dir)], check=True)
    try:
        kept = EmbeddedPostgres(private_folder / "kept" / "shard-0", free_port(), durable=False)
        kept.start()
        kept.remove()
        assert not gone.pgdata.exists()  # its folder is gone and no server runs on it
        assert (running.pgdata / "PG_VERSION").exists()  # a server still runs on it: kept
    finally:
        running.remove()
    assert not running.pgdata.exists()
