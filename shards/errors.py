"""Every error of transfers, one tree: catch `TransfersError` to catch them all.

    TransfersError                    exit code 1 unless a branch below says otherwise
    ├── BusinessError                 refused for a reason retrying cannot change (non-retryable)
    │   ├── InvalidInput              malformed request, nothing was read or written: exit code 2
    │   │   ├── InvalidAmount         not an integer in 1 .. 2**63-1 minor units, or would overflow
    │   │   ├── InvalidAccountId      not 1-64 chars of [A-Za-z0-9_.:-]
    │   │   ├── InvalidTransferId     same rule as account ids
    │   │   ├── InvalidCurrency       not three capital letters
    │   │   ├── InvalidTtl            hold time-to-live out of range
    │   │   ├── InvalidCursor         a statement cursor that no statement page returned
    │   │   ├── SameAccount           a transfer from an account to itself
    │   │   ├── ConfigError           a malformed setting (environment, .env, SHARD_DSNS)
    │   │   └── StackFileError        a `transfers dev` stack.json missing, unreadable or foreign
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
    │   ├── HoldNotActive             captured or released already, or never placed
    │   ├── TransferNotFound          no workflow for this transfer id (never submitted, or
    │   │                             forgotten after retention)
    │   ├── UnknownTransfer           a transfer without our search attributes (a foreign client's)
    │   ├── AlreadyFinished           cancelling a transfer that has ended
    │   ├── RefundNotStuck            no refund waits for an operator: nothing to retry or resolve
    │   └── Cancelled                 a transfer cancelled before its money moved (as recorded on
    │                                 its claim, see `recorded_error`)
    └── InfrastructureError           a server could not answer now (retryable)
        ├── ShardUnavailable          connection refused or lost, or no pooled connection free
        ├── SerializationFailure      the database aborted the transaction to keep it serializable
        ├── LockTimeout               a row lock was not granted within lock_timeout
        ├── VersionConflict           optimistic retries exhausted on a hot row
        ├── TemporalUnavailable       the Temporal server could not be reached
        └── PayloadKeyError           a payload encrypted with a key that PAYLOAD_KEYS lacks

Each error gives its code one way: `code`, the class name, is the stable name used as Temporal
`ApplicationError.type` and as "type" in `--json` (a contract: never rename a class here), and
`exit_code` is the CLI's exit status (1 refused or unreachable, 2 bad input). The tree lives on the
lowest floor so that every layer raises from it; transfers.client re-exports the API's own
(`TransfersError`, `TransferNotFound`, `RefundNotStuck`, `TemporalUnavailable`).
`BUSINESS_ERRORS` names those that cross Temporal from an activity and are never retried; its set
is part of the workflows' retry policies, so replay needs it unchanged.
"""

from __future__ import annotations


class TransfersError(Exception):
    """Root of the tree: `except TransfersError` catches every error of transfers."""

    exit_code = 1  # the CLI's exit status: the operation was refused or could not be done

    @property
    def code(self) -> str:
        """The stable name of the error: its class name (`ApplicationError.type`, `--json`)."""
        return type(self).__name__


class BusinessError(TransfersError):
    """A refusal that retrying cannot change."""


class InvalidInput(BusinessError):
    """The request itself is malformed; nothing was read or written."""

    exit_code = 2


class InvalidAmount(InvalidInput):
    """Not an integer in 1 .. 2**63-1 minor units, or a sum that would overflow."""


class InvalidAccountId(InvalidInput):
    """Not 1-64 characters of [A-Za-z0-9_.:-]."""


class InvalidTransferId(InvalidInput):
    """Not 1-64 characters of [A-Za-z0-9_.:-] (the account ids' rule)."""


class InvalidCurrency(InvalidInput):
    """Not three capital letters, or a currency that is not supported."""


class InvalidTtl(InvalidInput):
    """A hold's time-to-live out of range."""


class InvalidCursor(InvalidInput):
    """A statement cursor that no statement page returned."""


class SameAccount(InvalidInput):
    """A transfer from an account to itself."""


class ConfigError(InvalidInput):
    """A malformed setting: the environment, .env or SHARD_DSNS."""


class StackFileError(InvalidInput):
    """A `transfers dev` stack.json that is missing, unreadable, invalid or from another host."""


class InsufficientFunds(BusinessError):
    """The available balance (balance minus active holds) is below the amount."""


class AccountNotFound(BusinessError):
    """No account with this id on its shard."""


class AccountNotOpen(BusinessError):
    """The account is frozen or closed."""


class AccountAlreadyExists(BusinessError):
    """The account was opened before with another currency."""


class AccountNotEmpty(BusinessError):
    """Closing an account that still holds money."""


class CurrencyMismatch(BusinessError):
    """The transfer's currency is not the account's."""


class IdempotencyConflict(BusinessError):
    """A transfer id, or a step (transfer_id, kind), used before with other fields."""


class AlreadyCompensated(IdempotencyConflict):
    """The step's compensation was recorded first: too late to apply the step."""


class RouteChanged(BusinessError):
    """A same-shard transfer's accounts no longer share a shard."""


class HoldExpired(BusinessError):
    """The hold is past its expires_at by the database clock."""


class HoldNotActive(BusinessError):
    """The hold was captured or released already, or never placed."""


class TransferNotFound(BusinessError):
    """No workflow for this transfer id (never submitted, or forgotten after retention)."""


class UnknownTransfer(BusinessError):
    """A transfer without our search attributes (started by a foreign client): no amount to show."""


class AlreadyFinished(BusinessError):
    """Cancelling a transfer that has ended: nothing to cancel."""


class RefundNotStuck(BusinessError):
    """The transfer's refund is not waiting for an operator: nothing to retry or resolve."""


class Cancelled(BusinessError):
    """A transfer cancelled before its money moved: the error type its workflow ends with, found
    again on its claim by a later run (see `recorded_error`)."""


class InfrastructureError(TransfersError):
    """A server could not answer now; the same call may succeed later."""


class ShardUnavailable(InfrastructureError):
    """The shard refused or lost the connection, or its pool had no connection free."""


class SerializationFailure(InfrastructureError):
    """The database aborted the transaction to keep it serializable."""


class LockTimeout(InfrastructureError):
    """A row lock was not granted within lock_timeout."""


class VersionConflict(InfrastructureError):
    """Optimistic retries exhausted on a hot row."""


class TemporalUnavailable(InfrastructureError):
    """The Temporal server could not be reached."""


class PayloadKeyError(InfrastructureError):
    """An encrypted payload that the keys at hand cannot decrypt (transfers.payload_codec)."""


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


def recorded_error(code: str, message: str) -> BusinessError:
    """The business error whose `code` and message were recorded (on a claim, see
    shards.claims), rebuilt from this tree: BusinessError itself for a code it lacks."""
    found = _BUSINESS_CODES.get(code, BusinessError)
    return found(message)


def _business_codes(root: type[BusinessError]) -> dict[str, type[BusinessError]]:
    codes = {root.__name__: root}
    for sub in root.__subclasses__():
        codes |= _business_codes(sub)
    return codes


_BUSINESS_CODES = _business_codes(BusinessError)
