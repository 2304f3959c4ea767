"""How a worker or a client reaches Temporal: namespace, TLS, mTLS certificates, API key.

self-hosted, private CA:  TEMPORAL_TLS=true TEMPORAL_TLS_CA=/certs/ca.pem
self-hosted, mTLS:        ... TEMPORAL_TLS_CERT=/certs/client.pem TEMPORAL_TLS_KEY=/certs/client.key
Temporal Cloud, API key:  TEMPORAL_ADDRESS=<region>.<cloud>.api.temporal.io:7233
                          TEMPORAL_NAMESPACE=<ns>.<account> TEMPORAL_API_KEY=...
Temporal Cloud, mTLS:     TEMPORAL_ADDRESS=<ns>.<account>.tmprl.cloud:7233 + CERT and KEY

`connect_temporal` is the one way in, for the client (transfers.client), the worker (worker.py)
and the tooling alike.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TypedDict

from temporalio.client import Client, TLSConfig
from temporalio.runtime import Runtime

from shards.errors import TemporalUnavailable
from transfers.payload_codec import data_converter_for
from transfers.settings import Settings

CONNECT_WAIT_S = 5.0


class ConnectOptions(TypedDict):
    """The keyword arguments of `temporalio.client.Client.connect` that settings decide."""

    namespace: str
    tls: bool | TLSConfig | None
    api_key: str | None


def connect_options(settings: Settings) -> ConnectOptions:
    api_key = settings.temporal_api_key
    return ConnectOptions(
        namespace=settings.temporal_namespace,
        tls=tls_config(settings),
        api_key=None if api_key is None else api_key.get_secret_value(),
    )


def tls_config(settings: Settings) -> bool | TLSConfig | None:
    """None lets the SDK decide (TLS exactly when there is an API key); False is plain text."""
    files = (settings.temporal_tls_ca, settings.temporal_tls_cert, settings.temporal_tls_key)
    wanted = any(files) or settings.temporal_tls_server_name is not None
    if settings.temporal_tls is False or not (wanted or settings.temporal_tls):
        return settings.temporal_tls
    return TLSConfig(
        server_root_ca_cert=_read(settings.temporal_tls_ca),
        client_cert=_read(settings.temporal_tls_cert),
        client_private_key=_read(settings.temporal_tls_key),
        domain=settings.temporal_tls_server_name,
    )


def _read(path: Path | None) -> bytes | None:
    return None if path is None else path.read_bytes()


async def connect_temporal(
    settings: Settings, *, wait_s: float = CONNECT_WAIT_S, runtime: Runtime | None = None
) -> Client:
    """A client with the pydantic data converter (payloads encrypted with PAYLOAD_KEYS, see
    transfers.payload_codec), retrying for up to `wait_s` seconds.

    Namespace, TLS and API key come from `settings` (`connect_options`); a worker passes the
    `runtime` that exports its metrics. `TemporalUnavailable` when it stays unreachable.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        remaining = deadline - loop.time()
        try:
            return await asyncio.wait_for(
                Client.connect(
                    settings.temporal_address,
                    data_converter=data_converter_for(settings),
                    runtime=runtime,
                    **connect_options(settings),
                ),
                timeout=max(remaining, 0.5),
            )
        except (RuntimeError, TimeoutError):
            if loop.time() + 0.5 >= deadline:
                raise TemporalUnavailable(
                    f"Temporal at {settings.temporal_address} is unreachable "
                    f"(waited {wait_s:g}s): is the server running?"
                ) from None
            await asyncio.sleep(0.5)
