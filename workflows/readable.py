"""Strings that stay readable in Temporal when payloads are encrypted: the summaries.

The SDK puts a workflow's, an activity's or a timer's summary through the same payload codec as
the data, so an encrypting codec would hide them from anyone without the key: the list of
transfers in the Web UI would show ciphertext. A summary is built only from what the search
attributes show anyway (amount, currency, account ids, never the memo), so it is marked
`Readable`; the payload converter flags its payload and the codec leaves it as it is.

Workflows build their summaries as `Readable(...)` and import this module passed through the
sandbox, so the converter sees the same class. If a summary were missed, it would be encrypted:
the mistake hides a summary, it never shows data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter

READABLE = "transfers-readable"  # payload metadata key: the codec leaves this payload in clear


class Readable(str):
    """A summary: left readable by the payload codec."""

    __slots__ = ()


class ReadableMarkingConverter(PydanticPayloadConverter):
    """The pydantic payload converter, flagging the payloads of `Readable` strings."""

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        """The payloads of `values`, those of `Readable` strings flagged for the codec."""
        payloads = super().to_payloads(values)
        for value, payload in zip(values, payloads, strict=True):
            if isinstance(value, Readable):
                payload.metadata[READABLE] = b"true"
        return payloads


def is_readable(payload: Payload) -> bool:
    """Whether the payload holds a `Readable` string: the codec leaves it in clear."""
    return READABLE in payload.metadata
