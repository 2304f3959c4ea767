"""Production connection settings become the SDK's connect options (worker and client alike)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.client import TLSConfig

from transfers.settings import Settings
from transfers.temporal_connection import connect_options


def _settings(**environment: str) -> Settings:
    return Settings(_env_file=None, **environment)


@pytest.fixture
def certificates(tmp_path: Path) -> dict[str, Path]:
    files = {"ca": b"CA PEM", "cert": b"CERT PEM", "key": b"KEY PEM"}
    for name, content in files.items():
        (tmp_path / f"{name}.pem").write_bytes(content)
    return {name: tmp_path / f"{name}.pem" for name in files}


def test_plain_by_default() -> None:
    options = connect_options(_settings(temporal_namespace="payments"))
    assert options == {"namespace": "payments", "tls": None, "api_key": None}


def test_temporal_cloud_api_key_leaves_tls_on_to_the_sdk() -> None:
    settings = _settings(temporal_api_key="secret-key")
    assert connect_options(settings) == {
        "namespace": "default",
        "tls": None,
        "api_key": "secret-key",
    }
    assert "secret-key" not in repr(settings)


def test_self_hosted_mutual_tls(certificates: dict[str, Path]) -> None:
    settings = _settings(
        temporal_tls_ca=str(certificates["ca"]),
        temporal_tls_cert=str(certificates["cert"]),
        temporal_tls_key=str(certificates["key"]),
        temporal_tls_server_name="temporal.internal",
    )
    assert connect_options(settings)["tls"] == TLSConfig(
        server_root_ca_cert=b"CA PEM",
        client_cert=b"CERT PEM",
        client_private_key=b"KEY PEM",
        domain="temporal.internal",
    )


def test_tls_with_the_system_roots() -> None:
    assert connect_options(_settings(temporal_tls="true"))["tls"] == TLSConfig()


def test_tls_off_wins(certificates: dict[str, Path]) -> None:
    settings = _settings(temporal_tls="false", temporal_tls_ca=str(certificates["ca"]))
    assert connect_options(settings)["tls"] is False


def test_a_certificate_needs_its_key(certificates: dict[str, Path]) -> None:
    with pytest.raises(ValidationError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"):
        _settings(temporal_tls_cert=str(certificates["cert"]))
