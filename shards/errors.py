"""Every error the shard layer raises, split by what a caller should do about it.

    TransfersError
    ├── BusinessError                 refused for a reason retrying cannot change (non-retryable)
    │   ├── InvalidInput              malformed request, nothing was read or written
    │   │   ├── InvalidAmount         not an integer in 1 .. 2**63-1 minor units, or would overflow
    │   │   ├── InvalidAccountId      not 1-64 chars of [A-Za-z0-9_.:-]
    │   │   ├── InvalidTransferId     same rule as account ids
    │   │   ├── InvalidCurrency       not three capital letters
    │   │   ├── InvalidTtl            hold time-to-live out of range
    │   │   ├── InvalidCursor         a statement cursor that no statement page returned
    │   │   └── SameAccount           a transfer from an account to itself
    │   ├── InsufficientFunds         available (balance - active holds) below the amount
    │   ├── AccountNotFound
    │   ├── AccountNotOpen            frozen or closed
    │   ├── AccountAlreadyExists      opened before with another currency
    │   ├── AccountNotEmpty           closing an account that still holds money
    │   ├── CurrencyMismatch
    │   ├── IdempotencyConflict       (transfer_id, kind) applied before with other fields
    │   │   └── AlreadyCompensated    the step's compensation was recorded first: too late to apply
    │   ├── RouteChanged              a same-shard transfer's accounts no longer share a shard
    │   ├── HoldExpired               past expires_at by the database clock
    │   └── HoldNotActive             captured or released already, or never placed
    └── InfrastructureError           the shard could not answer now (retryable)
        ├── ShardUnavailable          connection refused or lost, or no pooled connection free
        ├── SerializationFailure      the database aborted the transaction to keep it serializable
        ├── LockTimeout               a row lock was not granted within lock_timeout
        └── VersionConflict           optimistic retries exhausted on a hot row

`code` (the class name) is the stable name used as Temporal `ApplicationError.type` and in `--json`.
"""

from __future__ import annotations


class TransfersError(Exception):
    """Root of the hierarchy."""

    @property
    def code(self) -> str:
        return type(self).__name__


class BusinessError(TransfersError):
    """A refusal that retrying cannot change."""


class InvalidInput(BusinessError):
    """The request itself is malformed."""


class InvalidAmount(InvalidInput):
    pass


class InvalidAccountId(InvalidInput):
    pass


class InvalidTransferId(InvalidInput):
    pass


class InvalidCurrency(InvalidInput):
    pass


class InvalidTtl(InvalidInput):
    pass


class InvalidCursor(InvalidInput):
    pass


class SameAccount(InvalidInput):
    pass


class InsufficientFunds(BusinessError):
    pass


class AccountNotFound(BusinessError):
    pass


class AccountNotOpen(BusinessError):
    pass


class AccountAlreadyExists(BusinessError):
    pass


class AccountNotEmpty(BusinessError):
    pass


class CurrencyMismatch(BusinessError):
    pass


class IdempotencyConflict(BusinessError):
    pass


class AlreadyCompensated(IdempotencyConflict):
    pass


class RouteChanged(BusinessError):
    pass


class HoldExpired(BusinessError):
    pass


class HoldNotActive(BusinessError):
    pass


class InfrastructureError(TransfersError):
    """The shard could not answer now; the same call may succeed later."""


class ShardUnavailable(InfrastructureError):
    pass


class SerializationFailure(InfrastructureError):
    pass


class LockTimeout(InfrastructureError):
    pass


class VersionConflict(InfrastructureError):
    pass


BUSINESS_ERRORS: dict[str, type[BusinessError]] = {
    cls.__name__: cls
    for cls in (
        InvalidInput,
        InvalidAmount,
        InvalidAccountId,
        InvalidTransferId,
        InvalidCurrency,
        InvalidTtl,
        InvalidCursor,
        SameAccount,
        InsufficientFunds,
        AccountNotFound,
        AccountNotOpen,
        AccountAlreadyExists,
        AccountNotEmpty,
        CurrencyMismatch,
        IdempotencyConflict,
        AlreadyCompensated,
        RouteChanged,
        HoldExpired,
        HoldNotActive,
    )
}
