"""Training's checkpoints: the packaging format, plus a resume file beside each.

``NAME.pt`` is written by ``dfdc_infer.models.save_checkpoint``, the format ``build_submission.py``
packs, with the metrics and the training config in ``spec.meta``. ``NAME.resume.pt`` holds only
what continuing needs on top of the weights: optimiser, scheduler and gradient-scaler state, the
epoch, the history and the best score so far. Both are written to a temporary name and renamed,
so an interruption never leaves a half-written checkpoint behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dfdc_infer.models import ModelSpec, read_checkpoint, save_checkpoint

RESUME_SUFFIX = ".resume.pt"


def resume_path(checkpoint: Path) -> Path:
    """``out/last.pt`` -> ``out/last.resume.pt``."""
    return Path(checkpoint).with_suffix(RESUME_SUFFIX)


def save_model(path: Path, model: nn.Module, spec: ModelSpec) -> Path:
    """The packaging checkpoint, written atomically."""
    path = Path(path)
    temporary = path.with_name(path.name + ".tmp")
    save_checkpoint(temporary, model, spec)
    os.replace(temporary, path)
    return path


def save_training_state(path: Path, model: nn.Module, spec: ModelSpec, state: dict[str, Any]) -> Path:
    """``path`` (packaging format) and its resume file with ``state``."""
    save_model(path, model, spec)
    target = resume_path(path)
    temporary = target.with_name(target.name + ".tmp")
    torch.save(state, temporary)
    os.replace(temporary, target)
    return path


def load_training_state(path: Path) -> tuple[ModelSpec, dict[str, torch.Tensor], dict[str, Any]]:
    """The checkpoint's spec and weights and its resume state; a missing resume file is an error
    that says what to do (a packed or fp16 checkpoint cannot resume: it lost the optimiser)."""
    spec, weights = read_checkpoint(path)
    target = resume_path(path)
    if not target.is_file():
        raise FileNotFoundError(f"resume state not found: {target} (resume from the last.pt or best.pt a training run wrote)")
    return spec, weights, torch.load(target, map_location="cpu", weights_only=True)
