"""`transfers worker`: run a worker, the same process as `python worker.py`.

Named run_worker, not worker: `import worker` below is the top-level worker.py.
"""

from __future__ import annotations

import typer

from transfers.cli.common import StackOption, exits_without_teardown, settings_from


@exits_without_teardown
def worker_command(stack: StackOption = None) -> None:
    """Run transfer workflows and their ledger activities until Ctrl-C or SIGTERM."""
    import worker  # the SDK's worker machinery: loaded only by the command that runs it

    settings = settings_from(stack)
    worker.configure_logging()
    raise typer.Exit(worker.serve(settings))


def register(app: typer.Typer) -> None:
    """Add `transfers worker`."""
    app.command("worker")(worker_command)
