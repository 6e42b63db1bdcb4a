"""Scoring a split: P(fake) for each of its crops, the competition metric per crop and video, and the
generalisation table (per fake method, seen vs unseen identities).

Crops go through the network exactly as in the kernel (``preprocess``, sigmoid of the logit over
the model's temperature), un-augmented. In a distributed run each process scores every
world_size-th crop and the results are gathered, so all processes end with the same metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from dfdc_infer.models import ModelSpec, preprocess
from dfdc_infer.progress import ProgressLine

from .calibration import fit_temperature, probabilities, video_logloss
from .config import TrainConfig
from .data import SplitCrops
from .distributed import Distributed
from .metrics import clipped_logloss, per_video, roc_auc, score
from .splits import Split, column

SLICES_FILE, SLICES_PLOT = "evaluation.csv", "evaluation.png"


@torch.no_grad()
def predict_logits(model: nn.Module, paths: list[str], crops_dir: Path, spec: ModelSpec, config: TrainConfig,
                   device: torch.device, context: Distributed) -> np.ndarray:
    """(len(paths),) float64 logits for FAKE, in the order of ``paths``."""
    mine = list(range(context.rank, len(paths), context.world_size))
    loader = DataLoader(SplitCrops([paths[i] for i in mine], crops_dir, spec.input_size), batch_size=config.eval_batch_size,
                        num_workers=config.workers, pin_memory=device.type == "cuda")
    amp = config.amp and device.type == "cuda"
    was_training = model.training
    model.eval()
    scores = []
    progress = ProgressLine(len(mine), unit="crops", every_seconds=60)
    for images in loader:
        with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp):
            logits = model(preprocess(images.to(device, non_blocking=True), spec))
        scores.append(logits.float().view(-1).cpu().numpy())
        progress.advance(len(images))
    model.train(was_training)
    result = np.empty(len(paths), dtype=np.float64)
    for positions, values in context.gather((mine, np.concatenate(scores) if scores else np.zeros(0))):
        result[positions] = values
    return result


def evaluate(model: nn.Module, split: Split, crops_dir: Path, spec: ModelSpec, config: TrainConfig, device: torch.device,
             context: Distributed) -> dict[str, float | int]:
    """Logloss and AUC of ``split`` per crop and per video and the counts (``metrics.score``), clipped as the kernel clips;
    with ``config.calibrate``, also the fitted ``temperature`` (fitted to the balanced logloss for a ``balanced_loss`` run)
    and the per-video plain and balanced loglosses at it (``video_logloss_calibrated``, ``video_balanced_logloss_calibrated``)."""
    logits = predict_logits(model, split.crops["path"].tolist(), crops_dir, spec, config, device, context)
    videos, labels = split.crops["video"].to_numpy(), (split.crops["label"] == "FAKE").to_numpy(dtype=np.float64)
    metrics = score(videos, labels, probabilities(logits), config.clip_min, config.clip_max)
    if config.calibrate:
        temperature = fit_temperature(videos, labels, logits, config.clip_min, config.clip_max, balanced=config.balanced_loss)
        metrics["temperature"] = temperature
        for name, balanced in (("video_logloss_calibrated", False), ("video_balanced_logloss_calibrated", True)):
            metrics[name] = video_logloss(videos, labels, logits, temperature, config.clip_min, config.clip_max, balanced=balanced)
    return metrics


def slice_table(split: Split, logits: np.ndarray, temperature: float, seen_identities: set[str], seen_methods: set[str],
                config: TrainConfig) -> pd.DataFrame:
    """Per-video logloss and AUC of ``split`` on slices that show generalisation; one row per slice.

    Slices: all videos; videos of identities seen in training and of unseen ones; per fake method,
    its fakes with every REAL video of the split (marked seen or held out of training); and the
    hardest, unseen identities with only held-out methods' fakes. Columns: ``logloss`` and ``auc``
    (the kernel's mean rule, at ``temperature``), ``logloss_uncalibrated`` (temperature 1) and
    ``logloss_confident`` (the 1st place's rule, at ``temperature``).
    """
    crops = split.crops
    labels = (crops["label"] == "FAKE").to_numpy(dtype=np.float64)
    videos = crops["video"].to_numpy()
    identity, method = column(crops, "identity"), column(crops, "method")
    real = crops["label"] == "REAL"
    unseen = ~identity.isin(seen_identities)
    held_out = (~real) & ~method.isin(seen_methods)
    slices = {"all": pd.Series(True, index=crops.index)}
    if (identity != "").any():  # no identities (DFDC without a persons table): every video would count as unseen
        slices.update({"seen identities": ~unseen, "unseen identities": unseen})
    for name in sorted(set(method[~real]) - {""}):
        slices[f"method {name} ({'seen' if name in seen_methods else 'held out'})"] = real | (method == name)
    if (identity != "").any() and unseen.any() and held_out.any():
        slices["unseen identities, held-out methods"] = unseen & (real | held_out)
    rows = []
    for name, chosen in slices.items():
        mask = chosen.to_numpy()
        if not mask.any():
            continue
        row = {"slice": name}
        for column_name, temp, rule in (("", temperature, "mean"), ("_uncalibrated", 1.0, "mean"), ("_confident", temperature, "confident")):
            table = per_video(videos[mask], labels[mask], probabilities(logits[mask], temp), config.clip_min, config.clip_max, rule)
            if not column_name:
                row.update(videos=len(table), real=int((table["label"] == 0).sum()), fake=int((table["label"] == 1).sum()))
                row["auc"] = roc_auc(table["label"], table["probability"])
            row[f"logloss{column_name}"] = clipped_logloss(table["label"], table["probability"], config.clip_min, config.clip_max)
        rows.append(row)
    return pd.DataFrame(rows, columns=["slice", "videos", "real", "fake", "logloss", "auc", "logloss_uncalibrated", "logloss_confident"])


def write_slice_table(table: pd.DataFrame, out_dir: Path, title: str) -> tuple[Path, Path]:
    """``evaluation.csv`` and ``evaluation.png`` (logloss and AUC bars per slice) in ``out_dir``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    csv_path, png_path = Path(out_dir) / SLICES_FILE, Path(out_dir) / SLICES_PLOT
    table.to_csv(csv_path, index=False, float_format="%.4f")
    figure = Figure(figsize=(11, 0.45 * len(table) + 1.6), dpi=100)
    FigureCanvasAgg(figure)
    losses, aucs = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(table))[::-1]
    losses.barh(positions, table["logloss"], color="tab:blue")
    losses.axvline(np.log(2), color="grey", linestyle="--", label="constant 0.5")
    losses.set(yticks=positions, yticklabels=table["slice"], xlabel="per-video logloss (lower is better)")
    aucs.barh(positions, table["auc"].fillna(0), color="tab:green")
    aucs.axvline(0.5, color="grey", linestyle="--", label="chance")
    aucs.set(xlabel="per-video AUC (higher is better)", xlim=(0, 1))
    for axes in (losses, aucs):
        axes.legend(loc="lower right")
        axes.grid(alpha=0.3, axis="x")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(png_path)
    return csv_path, png_path
