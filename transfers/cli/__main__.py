"""`python -m transfers.cli`: the same as the `transfers` script."""

from transfers.cli import main

main()
