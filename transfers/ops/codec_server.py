"""`transfers codec-server`: the Temporal codec server protocol over the payload codec, so that
the Web UI (or `temporal workflow show --codec-endpoint`) shows decrypted payloads to whoever
runs it with the keys.

POST /encode and POST /decode (also under a namespace path, `/{namespace}/decode`, the CLI's
templating) take and answer `{"payloads": [...]}` in protobuf JSON (metadata values and data in
base64). The UI calls from its own origin, so CORS answers that origin only; a request from a
page of any other origin is refused (a web page cannot use the keys, DNS rebinding included),
and one for another namespace (`X-Namespace`) too. Requests without an Origin (the CLI, curl)
are served: anyone who can reach the port can decrypt, which is why it binds 127.0.0.1 unless
told otherwise.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from google.protobuf.json_format import MessageToDict, ParseDict, ParseError
from temporalio.api.common.v1 import Payload, Payloads

from shards.errors import PayloadKeyError
from transfers.payload_codec import EncryptionCodec
from transfers.terminal import inert

MAX_BODY_BYTES = 16 * 1024 * 1024  # the UI sends one event's payloads; Temporal caps one at 2 MB
ALLOWED_HEADERS = "Content-Type, X-Namespace, Authorization"

log = logging.getLogger("transfers.ops.codec_server")


def origin_of(url: str) -> str:
    """`http://localhost:8233/namespaces/...` -> `http://localhost:8233`, as browsers send it."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CodecServer(ThreadingHTTPServer):
    """The codec server; `serve_forever()` until `shutdown()`."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        codec: EncryptionCodec,
        namespace: str,
        origins: Collection[str],
    ) -> None:
        super().__init__(address, _Handler)
        self.actions: dict[str, Callable[[Payload], Payload]] = {
            "encode": codec.encrypt,
            "decode": codec.decrypt,
        }
        self.namespace = namespace
        self.origins = frozenset(origins)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: CodecServer

    def do_OPTIONS(self) -> None:  # the browser's CORS preflight
        if self._refused_origin():
            return
        self.send_response(HTTPStatus.NO_CONTENT)
        self._cors_headers()
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", ALLOWED_HEADERS)
        self.send_header("Access-Control-Max-Age", "600")
        self.end_headers()

    def do_POST(self) -> None:
        if self._refused_origin():
            return
        action = self.server.actions.get(self.path.split("?")[0].rstrip("/").rsplit("/", 1)[-1])
        if action is None:
            self._answer(HTTPStatus.NOT_FOUND, {"error": "POST /encode or /decode"})
            return
        namespace = self.headers.get("X-Namespace")
        if namespace not in (None, self.server.namespace):
            message = f"this codec server holds the keys of namespace {self.server.namespace}"
            self._answer(HTTPStatus.FORBIDDEN, {"error": message})
            return
        try:
            payloads = self._payloads()
            converted = Payloads(payloads=[action(payload) for payload in payloads.payloads])
        except (ValueError, ParseError, PayloadKeyError) as error:
            self._answer(HTTPStatus.BAD_REQUEST, {"error": str(error).splitlines()[0]})
            return
        self._answer(HTTPStatus.OK, MessageToDict(converted))

    def _payloads(self) -> Payloads:
        length = int(self.headers.get("Content-Length") or -1)
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"a body of 0 to {MAX_BODY_BYTES} bytes, with its Content-Length")
        body = json.loads(self.rfile.read(length))
        if not isinstance(body, dict):
            raise ValueError('the body is {"payloads": [...]}')
        return ParseDict(body, Payloads())

    def _refused_origin(self) -> bool:
        """A browser request from a page that is not the Web UI's: 403, and no CORS headers."""
        origin = self.headers.get("Origin")
        if origin is None or origin in self.server.origins:
            return False
        self._answer(HTTPStatus.FORBIDDEN, {"error": f"origin {origin} is not the Web UI's"})
        return True

    def _cors_headers(self) -> None:
        origin = self.headers.get("Origin")
        if origin in self.server.origins:
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Vary", "Origin")

    def _answer(self, status: HTTPStatus, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self._cors_headers()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.info("%s %s", self.address_string(), inert(format % args))  # the path is anyone's
