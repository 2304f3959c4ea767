"""The activities: each shard step that a workflow asks for, its refusals made final."""
