"""PNG figures of how well a workspace remembers (matplotlib, headless)."""

from __future__ import annotations

import io
from pathlib import Path

from agent_il.engine.metrics import AccuracyMatrix
from agent_il.storage import atomic


def accuracy_figure(matrix: AccuracyMatrix, names: dict[int, str], path: Path) -> None:
    """Heatmap of the accuracy matrix beside the average accuracy after each learn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    grid = np.array([[np.nan if v is None else v for v in row] for row in matrix.grid()], dtype=float)
    labels = [names.get(t, str(t)) for t in matrix.tasks]
    after = [names.get(a, str(a)) for a, _ in matrix.rows]
    fig, (heat, curve) = plt.subplots(1, 2, figsize=(12, 5), gridspec_kw={"width_ratios": [1.2, 1]})
    image = heat.imshow(grid, vmin=0, vmax=100, cmap="viridis")
    heat.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    heat.set_yticks(range(len(after)), after)
    heat.set_xlabel("evaluated on task (held-out slice)")
    heat.set_ylabel("after learning task")
    heat.set_title("Accuracy matrix (%)")
    if grid.size <= 400:
        for (i, j), v in np.ndenumerate(grid):
            if not np.isnan(v):
                heat.text(j, i, f"{v:.0f}", ha="center", va="center", color="white" if v < 60 else "black", fontsize=8)
    fig.colorbar(image, ax=heat, fraction=0.046)
    steps = range(1, len(matrix.rows) + 1)
    curve.plot(steps, [np.nanmean(r) for r in grid], marker="o", label="average over seen tasks")
    if len(matrix.tasks):
        curve.plot(steps, grid[:, 0], marker=".", linestyle="--", label=f"first task ({labels[0]})")
    curve.set_ylim(0, 101)
    curve.set_xticks(list(steps), after, rotation=45, ha="right")
    curve.set_ylabel("accuracy (%)")
    curve.set_title("Accuracy after each learn")
    curve.grid(alpha=0.3)
    curve.legend(loc="lower left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


def curves_figure(curves: dict[str, list[float]], title: str, path: Path) -> None:
    """Accuracy on all classes seen so far after each task, one line per strategy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel("tasks learned")
    ax.set_ylabel("accuracy on all seen classes (%)")
    ax.set_ylim(0, 101)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
