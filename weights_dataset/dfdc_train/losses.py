"""Training losses on logits: binary cross-entropy, and focal loss for the hard examples.

Focal loss (Lin et al., 2017) scales each crop's BCE by (1 - p_t)^gamma, so crops the model
already gets right stop dominating once it has learnt the easy fakes; a run can start with BCE
and switch (``TrainConfig.focal_after``). Targets may be soft (mixup), which both losses accept.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from .config import TrainConfig

Loss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy of P(fake) = sigmoid(logits) against ``targets`` in [0, 1]."""
    return F.binary_cross_entropy_with_logits(logits, targets)


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean of BCE x (1 - p_t)^gamma, p_t the probability given to the target (gamma 0 is BCE)."""
    per_crop = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    probability = torch.sigmoid(logits)
    p_target = probability * targets + (1 - probability) * (1 - targets)
    return ((1 - p_target) ** gamma * per_crop).mean()


def loss_for_epoch(config: TrainConfig, epoch: int) -> tuple[str, Loss]:
    """The loss ``config`` asks for in ``epoch`` (0-based): its name and the function."""
    if config.loss == "focal" or (config.focal_after is not None and epoch >= config.focal_after):
        return "focal", lambda logits, targets: focal_loss(logits, targets, config.focal_gamma)
    return "bce", bce_loss
