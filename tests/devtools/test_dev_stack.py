"""`transfers dev` end to end: start it, use it from other processes, stop it with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from shards.router import shard_index
from tests.support.cli_runs import CliMany, CliResult, assert_one_clean_line, run_cli
from transfers.devtools.embedded_pg import free_port

SHARDS = 2
START_TIMEOUT_S = 120


@dataclass
class DevProcess:
    process: subprocess.Popen[bytes]
    data_dir: Path
    output: Path

    def output_text(self) -> str:
        return self.output.read_text(errors="replace")


def _assert_private(dev: DevProcess) -> None:
    """Histories, balances, passwords and logs: nothing in the data dir is for other users, and
    the passwords are in the stack file only, never in what the stack prints."""
    written = [dev.data_dir, *dev.data_dir.rglob("*")]
    assert {"stack.json", "temporal.db", "worker.log", "password"} <= {p.name for p in written}
    for path in written:
        assert path.lstat().st_mode & 0o077 == 0, f"{path} is open to others"
    passwords = [(path.read_text().strip()) for path in dev.data_dir.rglob("password")]
    assert len(passwords) == SHARDS
    assert all(password not in dev.output_text() for password in passwords)


def _start_dev(data_dir: Path, *extra: str) -> DevProcess:
    output = data_dir.parent / f"{data_dir.name}.out"
    command = [sys.executable, "-m", "transfers.cli", "dev", "--data-dir", str(data_dir), *extra]
    with output.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    return DevProcess(process, data_dir, output)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    """A dev stack on free ports; stopped (or killed) whatever the test did."""
    ports = ("--temporal-port", str(free_port()), "--ui-port", str(free_port()))
    started = _start_dev(tmp_path / "data", "--shards", str(SHARDS), *ports, "--json")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not (started.data_dir / "stack.json").exists():
        if started.process.poll() is not None or time.monotonic() > deadline:
            started.process.kill()
            pytest.fail(f"transfers dev did not start:\n{started.output_text()}")
        time.sleep(0.2)
    try:
        yield started
    finally:
        if started.process.poll() is None:
            started.process.terminate()
            started.process.wait(60)


def _on_shard(prefix: str, shard: int) -> str:
    return next(
        f"{prefix}-{n}" for n in range(1000) if shard_index(f"{prefix}-{n}", SHARDS) == shard
    )


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent has not collected it yet


def _processes_of(dev: DevProcess) -> list[int]:
    """Temporal and the worker (children of `transfers dev`) and the shards' postmasters."""
    children = [
        int(stat.parent.name)
        for stat in Path("/proc").glob("[0-9]*/stat")
        if _parent_pid(stat) == dev.process.pid
    ]
    postmasters = [
        int(pid_file.read_text().split()[0])
        for pid_file in dev.data_dir.glob("shards/shard-*/postmaster.pid")
    ]
    return children + postmasters


def _parent_pid(stat: Path) -> int | None:
    try:
        return int(stat.read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _statuses(results: list[CliResult]) -> list[tuple[int, str]]:
    return [(result.exit_code, result.json()["status"]) for result in results]


@dataclass(frozen=True)
class Scene:
    """A funded source on shard 0, one more account beside it, an open and a closed one on 1."""

    stack: tuple[str, ...]
    source: str = _on_shard("src", 0)
    same_shard: str = _on_shard("same", 0)
    target: str = _on_shard("dst", 1)
    closed: str = _on_shard("closed", 1)

    def submit(self, transfer_id: str, target: str, amount: str) -> tuple[str, ...]:
        route = ("--from", self.source, "--to", target, "--amount", amount)
        return ("submit", "--id", transfer_id, *route, *self.stack)


def _set_scene(cli_many: CliMany, data_dir: Path) -> Scene:
    scene = Scene(stack=("--stack", str(data_dir), "--json"))
    accounts = (scene.source, scene.same_shard, scene.target, scene.closed)
    runs = [
        ("accounts", "open", account, "--currency", "USD", *scene.stack) for account in accounts
    ]
    assert [result.exit_code for result in cli_many(runs)] == [0, 0, 0, 0]
    runs = [
        ("accounts", "deposit", scene.source, "100.00", *scene.stack),
        ("accounts", "close", scene.closed, *scene.stack),
    ]
    assert [result.exit_code for result in cli_many(runs)] == [0, 0]
    return scene


def test_dev_stack_serves_the_cli_and_stops_cleanly(dev: DevProcess, cli_many: CliMany) -> None:
    ready = json.loads(dev.output_text().splitlines()[0])
    assert (ready["event"], len(ready["shard_dsns"])) == ("ready", SHARDS)
    _assert_private(dev)
    # the Web UI's list narrowed by the business status (opened in a browser by
    # tests/ops/test_web_ui_tracing.py)
    query = "query=TransferStatus%3D%22COMPENSATED%22"
    compensated = f"{ready['ui_url']}/namespaces/default/workflows?{query}"
    assert ready["ui_status_links"]["COMPENSATED"] == compensated
    scene = _set_scene(cli_many, dev.data_dir)

    submitted = cli_many(
        [
            scene.submit("t-completed", scene.target, "10.00"),
            scene.submit("t-refused", scene.target, "1000.00"),
            scene.submit("t-compensated", scene.closed, "5.00"),
            scene.submit("t-same-shard", scene.same_shard, "1.00"),
        ]
    )
    assert _statuses(submitted) == [
        (0, "COMPLETED"),
        (1, "FAILED"),
        (1, "COMPENSATED"),
        (0, "COMPLETED"),
    ]
    assert submitted[2].json()["error"]["type"] == "AccountNotOpen"
    again, conflict = cli_many(
        [
            scene.submit("t-completed", scene.target, "10.00"),
            scene.submit("t-completed", scene.target, "9.99"),
        ]
    )
    assert _statuses([again]) == [(0, "COMPLETED")]
    assert (conflict.exit_code, conflict.json()["error"]["type"]) == (1, "IdempotencyConflict")

    listed, audit, shown = cli_many(
        [
            ("list", *scene.stack),
            ("audit", *scene.stack),
            ("accounts", "show", scene.source, *scene.stack),
        ]
    )
    transfers = {row["transfer_id"]: row for row in listed.json()["transfers"]}
    assert {name: row["status"] for name, row in transfers.items()} == {
        "t-completed": "COMPLETED",
        "t-refused": "FAILED",
        "t-compensated": "COMPENSATED",
        "t-same-shard": "COMPLETED",
    }
    assert transfers["t-completed"]["amount"] == "10.00"
    assert audit.exit_code == 0
    assert audit.json()["currencies"]["USD"]["balances"] == "100.00"
    assert shown.json()["balance"] == "89.00"
    _stop_and_check_nothing_is_left(dev)


def _stop_and_check_nothing_is_left(dev: DevProcess) -> None:
    processes = _processes_of(dev)
    assert len(processes) == SHARDS + 2  # Temporal, the worker, one postmaster per shard
    dev.process.send_signal(signal.SIGTERM)
    assert dev.process.wait(60) == 0, dev.output_text()
    assert not (dev.data_dir / "stack.json").exists()
    assert [pid for pid in processes if _alive(pid)] == []


def test_dev_refuses_a_taken_port_with_one_line(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = str(squatter.getsockname()[1])
        result = run_cli(
            ("dev", "--data-dir", str(tmp_path / "data"), "--temporal-port", taken),
            dict(os.environ),
            tmp_path,
        )
    message = assert_one_clean_line(result, exit_code=1)
    assert taken in message
