"""The per-epoch table: printed after every epoch, saved as ``history.csv``, drawn as ``curves.png``.

The plot uses matplotlib's object API with the Agg canvas (no pyplot, no display, no global
figure state), so it works on headless training machines and inside tests.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

HISTORY_FILE, CURVES_FILE = "history.csv", "curves.png"
CHANCE_LOGLOSS = math.log(2)


def format_table(rows: list[dict[str, Any]], header: bool = True) -> str:
    """Epoch rows as fixed-width text (right-aligned, each column as wide as its name, at least 8),
    so a header printed once lines up with rows printed one per epoch."""
    names = list(rows[0])
    lines = [" ".join(name.rjust(max(len(name), 8)) for name in names)] if header else []
    lines += [" ".join(_cell(name, row[name]).rjust(max(len(name), 8)) for name in names) for row in rows]
    return "\n".join(lines)


def _cell(name: str, value: Any) -> str:
    if name in ("lr", "lr_body"):
        return f"{value:.2e}"
    if name == "seconds":
        return f"{value:.0f}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_history(rows: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """Write ``history.csv`` and ``curves.png`` into ``out_dir``; returns both paths."""
    out_dir = Path(out_dir)
    table = pd.DataFrame(rows)
    csv_path = out_dir / HISTORY_FILE
    table.to_csv(csv_path, index=False)
    png_path = out_dir / CURVES_FILE
    plot_curves(table, png_path)
    return csv_path, png_path


def plot_curves(table: pd.DataFrame, path: Path) -> None:
    """Logloss (left, with the 0.693 of a constant 0.5) and AUC (right) against the epoch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    losses, aucs = figure.subplots(1, 2)
    epochs = table["epoch"]
    for column, label in (("train_logloss", "train (augmented)"), ("val_crop_logloss", "val per crop"), ("val_video_logloss", "val per video"),
                          ("val_video_logloss_calibrated", "val per video, calibrated")):
        if column in table:
            losses.plot(epochs, table[column], marker="o", label=label)
    losses.axhline(CHANCE_LOGLOSS, color="grey", linestyle="--", label="constant 0.5")
    losses.set(xlabel="epoch", ylabel="clipped logloss", title="logloss (lower is better)")
    for column, label in (("val_crop_auc", "val per crop"), ("val_video_auc", "val per video")):
        aucs.plot(epochs, table[column], marker="o", label=label)
    aucs.axhline(0.5, color="grey", linestyle="--", label="chance")
    aucs.set(xlabel="epoch", ylabel="AUC", title="AUC (higher is better)", ylim=(0, 1))
    for axes in (losses, aucs):
        axes.legend()
        axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
