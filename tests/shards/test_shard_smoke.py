"""Quick end-to-end check of the fixture wiring; the real suites live beside it."""

from collections.abc import Callable

from shards.ledger import Ledger


async def test_deposit_then_debit_moves_money(ledger: Ledger, new_id: Callable[[str], str]) -> None:
    account = new_id("acc")
    await ledger.open_account(account, "USD")
    await ledger.deposit(new_id("dep"), account, 500)
    result = await ledger.debit(new_id("t"), account, 120, "USD")
    assert result.balance_after == 380
    view = await ledger.get_account(account)
    assert (view.balance, view.available, view.version) == (380, 380, 3)
