"""The embedded dev stack behind `transfers dev`: Temporal dev server, PostgreSQL shards, worker."""
