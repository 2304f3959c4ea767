"""The digest of a request that every entry carries: one transfer id, one request."""

from __future__ import annotations

import hashlib


def fingerprint_of(kind: str, *fields: object) -> str:
    """`kind` (transfer, pending, deposit, ...) and the fields that decide what moves.

    Fields are joined with a separator that no identifier may contain, so ("a", "b:c") and
    ("a:b", "c") differ.
    """
    text = "\x1f".join([kind, *(str(field) for field in fields)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]
