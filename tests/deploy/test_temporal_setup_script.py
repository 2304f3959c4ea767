"""deploy/temporal/setup-namespace.sh, the compose stack's `temporal-setup` job, run against a
real Temporal server with the `temporal` CLI, as the admin-tools image runs it; and
deploy/retry.sh, which bounds every wait of the stack's jobs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from transfers.devtools.embedded_pg import free_port
from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "deploy" / "temporal" / "setup-namespace.sh"
RETRY = ROOT / "deploy" / "retry.sh"


def _compose_setup_environment() -> dict[str, str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    environment: dict[str, str] = services["temporal-setup"]["environment"]
    return environment


def _environment_for(temporal_env: WorkflowEnvironment, namespace: str) -> dict[str, str]:
    """The compose job's environment, pointed at the test server and a namespace of its own."""
    return {
        **_compose_setup_environment(),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "NAMESPACE": namespace,
    }


async def _run_script(environment: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        "sh",
        str(SCRIPT),
        env={"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", **environment},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    return await process.wait(), output.decode()


async def test_setup_creates_the_namespace_with_our_search_attributes_once(
    temporal_env: WorkflowEnvironment, new_id: Callable[[str], str]
) -> None:
    namespace = new_id("ns")
    environment = _environment_for(temporal_env, namespace)
    first = await _run_script(environment)
    again = await _run_script(environment)  # every `docker compose up` runs it

    request = ListSearchAttributesRequest(namespace=namespace)
    response = await temporal_env.client.operator_service.list_search_attributes(request)
    registered = {
        name: IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").title()
        for name, kind in response.custom_attributes.items()
    }
    assert (first[0], again[0]) == (0, 0), first[1] + again[1]
    assert registered == REGISTRATION


async def test_setup_refuses_a_search_attribute_of_the_wrong_type(
    temporal_env: WorkflowEnvironment, new_id: Callable[[str], str]
) -> None:
    """TransferStatus as Text would pass a check by name; the workflows' Keyword upserts fail."""
    namespace = new_id("ns")
    environment = _environment_for(temporal_env, namespace)
    wrong = {**environment, "SEARCH_ATTRIBUTES": "TransferStatus=Text"}
    assert (await _run_script(wrong))[0] == 0

    code, output = await _run_script(environment)

    assert code == 1
    assert f"search attribute TransferStatus is Text on namespace {namespace}" in output


async def test_setup_gives_up_when_temporal_never_answers() -> None:
    environment = {
        **_compose_setup_environment(),
        "TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # nothing listens
        "NAMESPACE": "default",
        "WAIT_SECONDS": "2",
    }
    started = time.monotonic()
    code, output = await _run_script(environment)
    assert code == 1
    assert "gave up waiting for Temporal at" in output
    assert time.monotonic() - started < 30


def _retry(*arguments: str, interval: str = "0.1") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(RETRY), *arguments],
        env={"PATH": "/usr/bin:/bin", "RETRY_INTERVAL": interval},
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_retry_runs_the_command_until_it_succeeds(tmp_path: Path) -> None:
    """Fails twice (a counter in a file), then succeeds: exit 0 after two waits."""
    counter = tmp_path / "tries"
    attempt = f'echo x >> {counter}; [ "$(wc -l < {counter})" -ge 3 ]'
    result = _retry("20", "the third try", "sh", "-c", attempt)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("waiting for the third try") == 2


def test_retry_gives_up_after_its_seconds() -> None:
    started = time.monotonic()
    result = _retry("1", "nothing", "false")
    assert result.returncode == 1
    assert "gave up waiting for nothing after 1s" in result.stderr
    assert time.monotonic() - started < 10


def test_retry_refuses_missing_arguments() -> None:
    assert _retry("5", "no command").returncode == 2
