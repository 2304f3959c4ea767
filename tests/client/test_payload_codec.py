"""The payload codec on its own: AES-GCM by key id, rotation, readable summaries, and settings
that refuse a bad key without repeating it."""

from __future__ import annotations

import base64
import os

import pytest
from pydantic import SecretStr, ValidationError
from temporalio.api.common.v1 import Payload

from shards.errors import PayloadKeyError
from transfers.payload_codec import ENCODING, KEY_ID, EncryptionCodec
from transfers.settings import Settings, settings_problem
from workflows.readable import Readable, ReadableMarkingConverter

pytestmark = pytest.mark.security

OLD, NEW = os.urandom(32), os.urandom(16)
SECRET = b'{"memo": "rent for march", "source_account_id": "acc-alice"}'


def _json(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


async def test_a_payload_is_sealed_under_the_current_key_id_and_opens_again() -> None:
    codec = EncryptionCodec({"old": OLD}, "old")

    [sealed] = await codec.encode([_json(SECRET)])

    assert (sealed.metadata["encoding"], sealed.metadata[KEY_ID]) == (ENCODING, b"old")
    assert b"rent" not in sealed.data
    assert b"acc-alice" not in sealed.data
    assert await codec.decode([sealed]) == [_json(SECRET)]


async def test_rotation_decrypts_by_the_key_id_in_each_payload() -> None:
    before = EncryptionCodec({"old": OLD}, "old")
    after = EncryptionCodec({"old": OLD, "new": NEW}, "new")

    [under_old] = await before.encode([_json(SECRET)])
    [under_new] = await after.encode([_json(SECRET)])

    assert under_new.metadata[KEY_ID] == b"new"
    assert await after.decode([under_old, under_new]) == [_json(SECRET), _json(SECRET)]
    # the old key retired too early: its payloads no longer open, and the error says which key
    with pytest.raises(PayloadKeyError, match="key id 'old', which PAYLOAD_KEYS does not hold"):
        await EncryptionCodec({"new": NEW}, "new").decode([under_old])


async def test_another_key_under_the_same_id_or_an_altered_payload_fails_clearly() -> None:
    [sealed] = await EncryptionCodec({"k": OLD}, "k").encode([_json(SECRET)])
    # flip a bit of the tag: overwriting a byte with a fixed value changes nothing 1 time in 256
    altered = Payload(
        metadata=sealed.metadata, data=sealed.data[:-1] + bytes([sealed.data[-1] ^ 1])
    )
    relabelled = Payload(metadata={**sealed.metadata, KEY_ID: b"k2"}, data=sealed.data)

    with pytest.raises(PayloadKeyError, match="another key under that id, or the payload"):
        await EncryptionCodec({"k": NEW}, "k").decode([sealed])
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await EncryptionCodec({"k": OLD}, "k").decode([altered])
    # the key id is bound to the ciphertext: another label does not open it with another key
    with pytest.raises(PayloadKeyError, match="does not decrypt"):
        await EncryptionCodec({"k": OLD, "k2": OLD}, "k").decode([relabelled])


async def test_summaries_and_payloads_written_before_encryption_stay_as_they_are() -> None:
    codec = EncryptionCodec({"k": OLD}, "k")
    summary, amount = ReadableMarkingConverter().to_payloads([Readable("1.00 USD a -> b"), 100])

    encoded = await codec.encode([summary, amount])

    assert encoded[0] == summary
    assert encoded[0].data == b'"1.00 USD a -> b"'
    assert encoded[1].metadata["encoding"] == ENCODING
    assert await codec.decode([_json(SECRET)]) == [_json(SECRET)]


def _settings(**fields: object) -> Settings:
    return Settings(_env_file=None, **fields)  # type: ignore[arg-type]


def test_settings_take_keys_by_id_and_the_current_one() -> None:
    settings = _settings(payload_keys=f"old:{_b64(OLD)}, new:{_b64(NEW)}", payload_key_id="new")

    codec = EncryptionCodec.from_settings(settings)

    assert codec is not None
    assert EncryptionCodec.from_settings(_settings()) is None
    assert "**" in repr(settings.payload_keys)
    assert _b64(OLD) not in repr(settings)


@pytest.mark.parametrize(
    ("keys", "key_id", "problem"),
    [
        (f"old:{_b64(OLD)}", "new", "PAYLOAD_KEY_ID new is not among the PAYLOAD_KEYS"),
        (f"old:{_b64(OLD)}", None, "PAYLOAD_KEYS and PAYLOAD_KEY_ID must be set together"),
        (None, "old", "PAYLOAD_KEYS and PAYLOAD_KEY_ID must be set together"),
        (_b64(OLD), "old", "each key is KEY_ID:BASE64"),
        (f"old:{_b64(OLD)[:-4]}!!", "old", "key old is not base64"),
        (f"old:{_b64(OLD[:20])}", "old", "key old has 20 bytes; AES-GCM takes 16, 24 or 32"),
        (f"old:{_b64(OLD)},old:{_b64(NEW)}", "old", "key id old is given twice"),
    ],
)
def test_a_bad_key_setting_is_refused_without_repeating_the_key(
    keys: str | None, key_id: str | None, problem: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        _settings(payload_keys=None if keys is None else SecretStr(keys), payload_key_id=key_id)

    line = settings_problem(refused.value)
    assert problem in line
    assert _b64(OLD)[:12] not in line
    assert _b64(NEW)[:12] not in line
