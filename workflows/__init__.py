"""The Temporal workflows: a transfer as a saga of shard steps, and a pending transfer's hold."""
