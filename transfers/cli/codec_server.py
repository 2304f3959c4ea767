"""`transfers codec-server`: decrypt payloads for the Web UI, with PAYLOAD_KEYS."""

from __future__ import annotations

from typing import Annotated

import typer

from transfers.cli.common import EXIT_BAD_INPUT, StackOption, fail, settings_from
from transfers.terminal import console

DEFAULT_PORT = 8081


def codec_server_command(
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on: whoever reaches it decrypts.")
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="0: any free port.")
    ] = DEFAULT_PORT,
    ui_origins: Annotated[
        list[str] | None,
        typer.Option(
            "--ui-origin",
            help="Origin of the Web UI that may call (repeatable); default: UI_URL's.",
        ),
    ] = None,
    stack: StackOption = None,
) -> None:
    """Serve /encode and /decode for the Temporal Web UI (its --ui-codec-endpoint) until
    Ctrl-C, with the keys of PAYLOAD_KEYS."""
    # Imported here: the codec brings the Temporal SDK and cryptography, other commands not.
    import logging

    from transfers.ops.codec_server import CodecServer, origin_of
    from transfers.payload_codec import EncryptionCodec

    settings = settings_from(stack)
    codec = EncryptionCodec.from_settings(settings)
    if codec is None:
        fail(
            "PAYLOAD_KEYS and PAYLOAD_KEY_ID are not set: no key to decrypt with",
            EXIT_BAD_INPUT,
        )
    origins = ui_origins or [origin_of(settings.ui_url)]
    try:
        server = CodecServer((host, port), codec, settings.temporal_namespace, origins)
    except OSError as error:
        fail(f"cannot listen on {host}:{port}: {error.strerror or error}", EXIT_BAD_INPUT)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    console.print(
        f"codec server on {server.url} for namespace {settings.temporal_namespace}, "
        f"Web UI origins {', '.join(origins)}",
        markup=False,
        highlight=False,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def register(app: typer.Typer) -> None:
    """Add `transfers codec-server`."""
    app.command("codec-server")(codec_server_command)
