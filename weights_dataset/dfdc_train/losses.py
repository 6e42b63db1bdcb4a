"""Training losses on logits: binary cross-entropy, and focal loss for the hard examples.

Focal loss (Lin et al., 2017) scales each crop's BCE by (1 - p_t)^gamma, so crops the model
already gets right stop dominating once it has learnt the easy fakes; a run can start with BCE
and switch (``TrainConfig.focal_after``). Targets may be soft (mixup), which both losses accept. How the crops' losses
make the batch's (mean, class-balanced, hardest examples only) is ``reduce_loss``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .config import TrainConfig

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy per crop of P(fake) = sigmoid(logits) against ``targets`` in [0, 1]."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """BCE x (1 - p_t)^gamma per crop, p_t the probability given to the target (gamma 0 is BCE)."""
    probability = torch.sigmoid(logits)
    p_target = probability * targets + (1 - probability) * (1 - targets)
    return (1 - p_target) ** gamma * bce_loss(logits, targets)


def reduce_loss(per_crop: torch.Tensor, targets: torch.Tensor, balanced: bool = False, ohem: float = 0.0) -> torch.Tensor:
    """The batch's loss from per-crop losses: the mean, or (``balanced``) the mean of the real crops' and the fake crops'
    means; with ``ohem`` > 0 only that fraction of each class, its highest-loss crops, counts (at least one crop each).

    Both are the 1st place's choices: each class weighs the same whatever the batch's mix, and the easy crops that a
    model already gets right stop diluting the hard ones. Classes follow ``targets`` >= 0.5 (soft targets of mixup and
    label smoothing included).
    """
    if not balanced and ohem == 0:
        return per_crop.mean()
    parts = []
    for members in (targets < 0.5, targets >= 0.5):
        losses = per_crop[members]
        if len(losses) == 0:
            continue
        if ohem > 0:
            losses = losses.topk(max(1, round(ohem * len(losses)))).values
        parts.append(losses)
    if balanced:
        return torch.stack([part.mean() for part in parts]).mean()
    return torch.cat(parts).mean()


def loss_for_epoch(config: TrainConfig, epoch: int) -> tuple[str, Loss]:
    """The loss ``config`` asks for in ``epoch`` (0-based): its name and the function of (logits, targets) to the batch's loss.

    Label smoothing moves the targets first (0 -> s/2, 1 -> 1 - s/2), so a pretrained network is not pushed towards
    infinite logits by crops it already separates.
    """
    focal = config.loss == "focal" or (config.focal_after is not None and epoch >= config.focal_after)
    smoothing = config.label_smoothing

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        smoothed = targets * (1 - smoothing) + smoothing / 2
        per_crop = focal_loss(logits, smoothed, config.focal_gamma) if focal else bce_loss(logits, smoothed)
        return reduce_loss(per_crop, targets, config.balanced_loss, config.ohem)

    return ("focal" if focal else "bce"), loss
