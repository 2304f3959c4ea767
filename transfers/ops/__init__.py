"""What a deployed worker runs beside its activities: metrics, health, tracing, the tuned worker.

Also the codec server an operator runs for the Web UI. Imports the product edge (settings),
never the dev tooling.
"""
