"""transfers: cross-shard money transfers as Temporal sagas over PostgreSQL shards.

The package is the product edge: the Python API (`transfers.client`), its settings, the Temporal
connection and payload codec, and the CLI (`transfers.cli`). Two subpackages hold the rest:
`transfers.ops` (what a deployed worker runs beside its activities) and `transfers.devtools`
(the embedded stack, bench and chaos).
"""
