"""The step engine: how one saga step runs as one short local transaction on one shard.

One pipeline, one module a stage (`shards.ledger` calls it; nothing here is public API):

    reads.py         the accounts, the transfer's earlier entries and its hold, in one round trip
      -> account_state.py   an account as the step sees it (balance, held, version, status)
    decisions.py     pure `plan_*` functions: a Replay, a Change to write, or a business error
      -> changes.py         what a step decided, as data
    writes.py        account rows and entries in one guarded statement
    hold_writes.py   the holds table: place, post, void, sweep the lapsed
      -> hold_expiry.py     the one rule of when a hold lapses: the shard's clock
    runner.py        read -> decide -> write -> commit, retried on a lost compare-and-set
      -> openings.py        a marker on an account not opened yet: taken under its opening lock

Batched steps (Ledger.debit_batch, ...) run the same `plan_*` over many transfers, one transaction
per shard: batches.py (group, decide in order, retry), batch_reads.py, batch_writes.py.

The values a step makes (its context, the accounts' states, entries, writes, results) are
NamedTuples, not frozen dataclasses: a frozen dataclass sets each field through
object.__setattr__, four times the cost, and a batched step makes a dozen of them per transfer
(a third of `decide_batch`'s time; BENCHMARKS.md, "Batches").
"""
