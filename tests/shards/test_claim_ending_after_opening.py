"""A claim's ending is decided by how the source's marker was written, not by whether the
source exists when `end_claim` runs (found by the review of migration 0006): a refund marker
written before the source was opened keeps no error, so the claim records the ending even once
the source is open, and a later run of the request gets the first run's error back."""

from __future__ import annotations

import pytest

from shards.errors import AccountNotFound
from shards.fingerprints import fingerprint_of
from shards.ledger import Ledger
from shards.records import Ending
from tests.shards.support import NewId, id_on_other_shard, open_funded

AMOUNT = 100


async def test_an_ending_is_kept_when_the_source_opens_between_refund_and_end_claim(
    ledger: Ledger, new_id: NewId
) -> None:
    source = new_id("acc")
    target = await open_funded(ledger, id_on_other_shard(ledger.router, new_id, source), 0)
    transfer = new_id("t")
    digest = fingerprint_of("transfer", source, target, AMOUNT, "USD")
    await ledger.claim(transfer, digest)
    with pytest.raises(AccountNotFound):  # the first run: the source does not exist
        await ledger.debit(transfer, source, AMOUNT, "USD", digest)
    assert (await ledger.fence_credit(transfer, target, AMOUNT, "USD", digest)).marker
    assert (await ledger.refund(transfer, source, AMOUNT, "USD", digest)).marker  # no row

    await open_funded(ledger, source, 1_000)  # meanwhile, before the run's end_claim
    ending = Ending(transfer, digest, source, "AccountNotFound", f"account {source} missing")
    recorded = await ledger.end_claims([ending])

    # The first run reports FAILED AccountNotFound: a later run of the request must get that
    # error back from the claim (it gets nothing, and its debit answers AlreadyCompensated).
    assert recorded == [True]
    with pytest.raises(AccountNotFound):
        await ledger.claim(transfer, digest)
