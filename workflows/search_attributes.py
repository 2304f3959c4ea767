"""Typed search attributes that make transfers findable in the Web UI and `transfers list`."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

TRANSFER_STATUS = SearchAttributeKey.for_keyword("TransferStatus")
SOURCE_ACCOUNT_ID = SearchAttributeKey.for_keyword("SourceAccountId")
TARGET_ACCOUNT_ID = SearchAttributeKey.for_keyword("TargetAccountId")
AMOUNT = SearchAttributeKey.for_int("Amount")
CURRENCY = SearchAttributeKey.for_keyword("Currency")
# true while the refund waits for an operator (step refund-stuck): `transfers list --stuck`
REFUND_IS_STUCK = SearchAttributeKey.for_bool("RefundStuck")
# a batch's id, on its TransferBatchWorkflow (with the batch's total as Amount and Currency when
# it moves one currency): `BatchId = '...'` in the Web UI, `transfers list --batches`
BATCH_ID = SearchAttributeKey.for_keyword("BatchId")

# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` wants them
REGISTRATION: dict[str, str] = {
    TRANSFER_STATUS.name: "Keyword",
    SOURCE_ACCOUNT_ID.name: "Keyword",
    TARGET_ACCOUNT_ID.name: "Keyword",
    AMOUNT.name: "Int",
    CURRENCY.name: "Keyword",
    REFUND_IS_STUCK.name: "Bool",
    BATCH_ID.name: "Keyword",
}
