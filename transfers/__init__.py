"""transfers: cross-shard money transfers as Temporal sagas over PostgreSQL shards."""
