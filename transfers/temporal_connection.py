"""How a worker or a client reaches Temporal: namespace, TLS, mTLS certificates, API key.

self-hosted, private CA:  TEMPORAL_TLS=true TEMPORAL_TLS_CA=/certs/ca.pem
self-hosted, mTLS:        ... TEMPORAL_TLS_CERT=/certs/client.pem TEMPORAL_TLS_KEY=/certs/client.key
Temporal Cloud, API key:  TEMPORAL_ADDRESS=<region>.<cloud>.api.temporal.io:7233
                          TEMPORAL_NAMESPACE=<ns>.<account> TEMPORAL_API_KEY=...
Temporal Cloud, mTLS:     TEMPORAL_ADDRESS=<ns>.<account>.tmprl.cloud:7233 + CERT and KEY
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from temporalio.client import TLSConfig

from transfers.settings import Settings


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
