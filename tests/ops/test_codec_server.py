"""`transfers codec-server`, run as the command: the codec server protocol the Web UI speaks,
CORS for the UI's origin only, its namespace only, and clear refusals."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict, ParseDict
from temporalio.api.common.v1 import Payload, Payloads

from tests.support.cli_runs import run_cli
from tests.support.codec_server import codec_server, key_env
from transfers.payload_codec import KEY_ID, EncryptionCodec

pytestmark = pytest.mark.security

KEY = os.urandom(32)
UI_ORIGIN = "http://127.0.0.1:18233"
MEMO = Payload(metadata={"encoding": b"json/plain"}, data=b'{"memo": "rent for march"}')


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("codec")
    with codec_server(key_env(k1=KEY), folder, "--ui-origin", UI_ORIGIN) as url:
        yield url


def _call(
    url: str, body: Payloads | None = None, method: str = "POST", **headers: str
) -> tuple[int, dict[str, str], Any]:
    """(status, headers, JSON body or None) of one request."""
    data = None if body is None else json.dumps(MessageToDict(body)).encode()
    headers = {"Content-Type": "application/json", **headers}
    # the server's own http:// URL, never a scheme from outside
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, answer, raw = response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        status, answer, raw = error.code, dict(error.headers), error.read()
    return status, answer, json.loads(raw) if raw else None


def _payloads(answer: Any) -> list[Payload]:
    return list(ParseDict(answer, Payloads()).payloads)


def test_decode_answers_what_the_workers_codec_encrypted(server: str) -> None:
    sealed = EncryptionCodec({"k1": KEY}, "k1").encrypt(MEMO)

    status, headers, answer = _call(
        f"{server}/decode",
        Payloads(payloads=[sealed]),
        Origin=UI_ORIGIN,
        **{"X-Namespace": "default"},
    )

    assert status == 200, answer
    assert _payloads(answer) == [MEMO]
    assert headers["Access-Control-Allow-Origin"] == UI_ORIGIN


def test_encode_then_decode_under_a_namespace_path(server: str) -> None:
    status, _, encoded = _call(f"{server}/default/encode", Payloads(payloads=[MEMO]))
    [sealed] = _payloads(encoded)
    _, _, decoded = _call(f"{server}/default/decode", Payloads(payloads=[sealed]))

    assert status == 200
    assert sealed.metadata[KEY_ID] == b"k1"
    assert b"rent" not in sealed.data
    assert _payloads(decoded) == [MEMO]


def test_the_preflight_allows_the_ui_and_nobody_else(server: str) -> None:
    preflight = {"Access-Control-Request-Method": "POST"}

    ui = _call(f"{server}/decode", method="OPTIONS", Origin=UI_ORIGIN, **preflight)
    other = _call(f"{server}/decode", method="OPTIONS", Origin="http://evil.test", **preflight)
    posted = _call(f"{server}/decode", Payloads(), Origin="http://evil.test")

    assert ui[0] == 204
    assert ui[1]["Access-Control-Allow-Origin"] == UI_ORIGIN
    assert "X-Namespace" in ui[1]["Access-Control-Allow-Headers"]
    for status, headers, _ in (other, posted):
        assert status == 403
        assert "Access-Control-Allow-Origin" not in headers


@pytest.mark.parametrize(
    ("path", "headers", "payload", "status", "error"),
    [
        ("decode", {"X-Namespace": "payments"}, MEMO, 403, "keys of namespace default"),
        (
            "decode",
            {},
            EncryptionCodec({"k0": KEY}, "k0").encrypt(MEMO),
            400,
            "key id 'k0', which PAYLOAD_KEYS does not hold",
        ),
        ("compress", {}, MEMO, 404, "POST /encode or /decode"),
    ],
)
def test_refusals_say_why(
    server: str, path: str, headers: dict[str, str], payload: Payload, status: int, error: str
) -> None:
    answer = _call(f"{server}/{path}", Payloads(payloads=[payload]), **headers)

    assert answer[0] == status
    assert error in answer[2]["error"]


def test_without_keys_the_command_refuses_to_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PAYLOAD_")}

    result = run_cli(("codec-server", "--port", "0"), env, tmp_path, timeout_s=30)

    assert result.exit_code == 2
    assert "PAYLOAD_KEYS and PAYLOAD_KEY_ID are not set" in result.stderr
