"""Optional encryption of what Temporal stores: AES-GCM over every payload but the summaries.

On when PAYLOAD_KEYS and PAYLOAD_KEY_ID are set, in the worker and in every client (the CLI,
`TransfersClient`), which must hold the same keys. A payload is encrypted with the key
PAYLOAD_KEY_ID names, and that id goes into its metadata (`encryption-key-id`); it is decrypted
with the key its metadata names. Rotation: add a new key, make it PAYLOAD_KEY_ID, keep the old
ones for as long as histories (and their retention) encrypted with them exist.

What stays readable without a key: search attributes (not payloads), summaries
(workflows.readable), and payloads written before encryption was turned on. Failure messages
(which name accounts) move into an encrypted payload too (the SDK's encoded failure attributes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from shards.errors import PayloadKeyError
from transfers.payload_keys import parse_payload_keys
from transfers.settings import Settings
from workflows.readable import ReadableMarkingConverter, is_readable

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12  # AES-GCM's standard nonce, random per payload


class EncryptionCodec(PayloadCodec):
    """AES-GCM with a key id in each payload's metadata (bound to the ciphertext as AAD)."""

    def __init__(self, keys: Mapping[str, bytes], key_id: str) -> None:
        if key_id not in keys:
            raise ValueError(f"key id {key_id} is not among the keys")
        self._ciphers = {known: AESGCM(key) for known, key in keys.items()}
        self._key_id = key_id

    @classmethod
    def from_settings(cls, settings: Settings) -> EncryptionCodec | None:
        """The codec PAYLOAD_KEYS and PAYLOAD_KEY_ID describe; None when they are not set."""
        if settings.payload_keys is None or settings.payload_key_id is None:
            return None
        keys = parse_payload_keys(settings.payload_keys.get_secret_value())
        return cls(keys, settings.payload_key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(payload) for payload in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        if is_readable(payload):
            return payload
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._key_id.encode()
        sealed = self._ciphers[self._key_id].encrypt(nonce, payload.SerializeToString(), key_id)
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The payload as it was before `encrypt`; one that is not encrypted is returned as it
        is (a summary, or a payload of a run recorded before encryption was turned on)."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadKeyError(
                f"a payload is encrypted with key id {key_id!r}, which PAYLOAD_KEYS does not hold"
            )
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag:
            raise PayloadKeyError(
                f"a payload of key id {key_id!r} does not decrypt: PAYLOAD_KEYS holds another "
                "key under that id, or the payload was altered"
            ) from None


def data_converter_for(settings: Settings) -> DataConverter:
    """What workers and clients convert with: pydantic models as JSON, summaries marked readable,
    and, with PAYLOAD_KEYS, everything else encrypted."""
    codec = EncryptionCodec.from_settings(settings)
    if codec is None:
        return DataConverter(payload_converter_class=ReadableMarkingConverter)
    return DataConverter(
        payload_converter_class=ReadableMarkingConverter,
        payload_codec=codec,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
