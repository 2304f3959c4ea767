"""deploy/temporal/setup-namespace.sh, the compose stack's `temporal-setup` job, run against a
real Temporal server with the `temporal` CLI, as the admin-tools image runs it."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from workflows.search_attributes import REGISTRATION

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "deploy" / "temporal" / "setup-namespace.sh"


def _compose_setup_environment() -> dict[str, str]:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    environment: dict[str, str] = services["temporal-setup"]["environment"]
    return environment


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
    environment = {
        **_compose_setup_environment(),
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "NAMESPACE": namespace,
    }
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
