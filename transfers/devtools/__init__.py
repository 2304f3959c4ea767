"""Dev tooling: the embedded stack (`transfers dev`), embedded PostgreSQL, bench and chaos.

Nothing of a deployed worker imports this package; the image installs none of its extras.
"""
