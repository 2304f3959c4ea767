"""The e2e bench's PNG: end-to-end latency percentiles against the offered load (open loop)."""

from __future__ import annotations

from pathlib import Path

from transfers.devtools.bench.e2e import E2EReport

INSTALL_HINT = "pip install 'transfers[bench]' (matplotlib) for the plot"


def plot_available() -> bool:
    try:
        import matplotlib  # noqa: F401 (an optional extra)
    except ImportError:
        return False
    return True


def plot_latency(report: E2EReport, path: Path) -> Path:
    """Write the plot of `report`'s open-loop runs to `path`; matplotlib must be installed."""
    import matplotlib  # an optional extra, loaded when a plot is asked for

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    runs = sorted(
        (result for result in report.scenarios if result.offered_per_s is not None),
        key=lambda result: result.offered_per_s or 0.0,
    )
    offered = [run.offered_per_s or 0.0 for run in runs]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=120)
    for label, values in (
        ("p50", [run.measurement.p50_ms for run in runs]),
        ("p95", [run.measurement.p95_ms for run in runs]),
        ("p99", [run.measurement.p99_ms for run in runs]),
    ):
        axes.plot(offered, values, marker="o", label=label)
    uniform = report.closed("uniform", "pessimistic")
    if uniform is not None:
        axes.axvline(
            uniform.measurement.per_s,
            color="grey",
            linestyle="--",
            label=f"closed-loop max {uniform.measurement.per_s:.0f}/s",
        )
    axes.set_xlabel("offered load (transfers/s)")
    axes.set_ylabel("end-to-end latency (ms)")
    axes.set_yscale("log")
    axes.set_title("transfers bench e2e: latency against offered load (uniform, pessimistic)")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
