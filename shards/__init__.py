"""The shard layer: accounts, entries and holds on PostgreSQL shards, a step a transaction."""
