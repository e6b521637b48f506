"""Learning-rate and loss curves of a run, drawn from its MLflow metric history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def curves_figure(histories: Mapping[str, list[Any]], ylabel: str) -> Any:
    """One line per metric (a list of MLflow ``Metric``) against the global step."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 3.5), dpi=100)
    ax = fig.add_subplot()
    for key, history in histories.items():
        points = sorted((m.step, m.value) for m in history)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    if ylabel.startswith("learning"):
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def log_curves(client: Any, run_id: str) -> None:
    """Log ``figures/learning_rate.png`` and ``figures/loss.png`` (the whole run, resumes included)."""
    from satcnn.tasks import figures

    keys = sorted(client.get_run(run_id).data.metrics)
    groups = {
        "learning_rate": [k for k in keys if k.startswith("lr-")],
        "loss": [k for k in keys if k.endswith("_loss") and not k.startswith("test_")],
    }
    for name, metrics in groups.items():
        histories = {k: client.get_metric_history(run_id, k) for k in metrics}
        histories = {k: h for k, h in histories.items() if h}
        if not histories:
            continue
        fig = curves_figure(histories, name.replace("_", " "))
        client.log_figure(run_id, fig, f"figures/{name}.png")
        figures.close(fig)
