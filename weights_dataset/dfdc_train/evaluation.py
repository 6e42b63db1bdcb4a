"""Scoring a split: P(fake) for each of its crops, then the competition metric per crop and video.

Crops go through the network exactly as in the kernel (``preprocess``, sigmoid), un-augmented. In
a distributed run each process scores every world_size-th crop and the results are gathered, so
all processes end with the same metrics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from dfdc_infer.models import ModelSpec, preprocess
from dfdc_infer.progress import ProgressLine

from .config import TrainConfig
from .data import SplitCrops
from .distributed import Distributed
from .metrics import score
from .splits import Split


@torch.no_grad()
def predict_crops(model: nn.Module, paths: list[str], crops_dir: Path, spec: ModelSpec, config: TrainConfig,
                  device: torch.device, context: Distributed) -> np.ndarray:
    """(len(paths),) float64 P(fake), in the order of ``paths``."""
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
        scores.append(torch.sigmoid(logits.float()).view(-1).cpu().numpy())
        progress.advance(len(images))
    model.train(was_training)
    probabilities = np.empty(len(paths), dtype=np.float64)
    for positions, values in context.gather((mine, np.concatenate(scores) if scores else np.zeros(0))):
        probabilities[positions] = values
    return probabilities


def evaluate(model: nn.Module, split: Split, crops_dir: Path, spec: ModelSpec, config: TrainConfig, device: torch.device,
             context: Distributed) -> dict[str, float | int]:
    """Logloss and AUC of ``split`` per crop and per video and the counts (``metrics.score``), clipped as the kernel clips."""
    probabilities = predict_crops(model, split.crops["path"].tolist(), crops_dir, spec, config, device, context)
    labels = (split.crops["label"] == "FAKE").to_numpy(dtype=np.float64)
    return score(split.crops["video"].to_numpy(), labels, probabilities, config.clip_min, config.clip_max)
