"""PAYLOAD_KEYS, the AES keys of the payload codec: `KEY_ID:BASE64,KEY_ID:BASE64`.

Read by the settings (so a bad key is a settings error at start-up) without loading any crypto.
A message here never repeats a key, only its id: settings problems are printed and logged.
"""

from __future__ import annotations

import base64
import binascii
import re

KEY_BYTES = (16, 24, 32)  # AES-128, AES-192, AES-256
KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def parse_payload_keys(text: str) -> dict[str, bytes]:
    """Key id -> AES key. Raises ValueError naming the key id at fault, never the key."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key_id, colon, encoded = item.partition(":")
        if not colon or not KEY_ID.match(key_id):
            # no quote of the item: without its colon it may be a bare key
            raise ValueError("PAYLOAD_KEYS: each key is KEY_ID:BASE64, the id 1-64 of A-Za-z0-9_.-")
        if key_id in keys:
            raise ValueError(f"PAYLOAD_KEYS: key id {key_id} is given twice")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise ValueError(f"PAYLOAD_KEYS: key {key_id} is not base64") from None
        if len(key) not in KEY_BYTES:
            raise ValueError(
                f"PAYLOAD_KEYS: key {key_id} has {len(key)} bytes; AES-GCM takes 16, 24 or 32"
            )
        keys[key_id] = key
    return keys
