"""Optimiser, one-cycle learning rate, and gradual unfreezing.

One-cycle (Smith, 2018; ``torch.optim.lr_scheduler.OneCycleLR``) warms the learning rate up to
``TrainConfig.lr`` and anneals it to nearly zero over the whole run, stepped once per batch.
Gradual unfreezing trains the classifier head alone first and then opens the network block by block
from the top down; it pays off with pretrained bodies (what Kaggle solutions fine-tuned) and is
off by default here, where networks start from random weights.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrainConfig


def layer_groups(model: nn.Module) -> list[list[nn.Module]]:
    """A timm EfficientNet's layers from the top down: head, its blocks (last first), stem."""
    blocks = getattr(model, "blocks", None)
    if not isinstance(blocks, nn.Sequential):
        raise ValueError(f"gradual unfreezing needs a timm model with .blocks (the EfficientNet family); {type(model).__name__} has none")
    head = [module for module in (getattr(model, "conv_head", None), getattr(model, "bn2", None), model.get_classifier())
            if isinstance(module, nn.Module)]
    stem = [module for module in (getattr(model, "conv_stem", None), getattr(model, "bn1", None)) if isinstance(module, nn.Module)]
    return [head, *[[block] for block in reversed(blocks)], stem]


def set_trainable(model: nn.Module, epoch: int, blocks_per_epoch: int) -> str:
    """Freeze what gradual unfreezing keeps frozen in ``epoch``; returns a description for the log.

    Call after ``model.train()``: frozen layers are also put in eval mode, so their BatchNorm
    statistics stay as they are instead of drifting under a "frozen" label.
    """
    if blocks_per_epoch == 0:
        model.requires_grad_(True)
        return "all layers"
    groups = layer_groups(model)
    open_groups = min(1 + epoch * blocks_per_epoch, len(groups))
    model.requires_grad_(False)
    for position, group in enumerate(groups):
        for module in group:
            if position < open_groups:
                module.requires_grad_(True)
            else:
                module.eval()
    if open_groups == len(groups):
        return "all layers"
    return f"head + top {open_groups - 1} of {len(groups) - 2} blocks"


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over every parameter; frozen ones get no gradient, which AdamW skips."""
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One cycle over ``total_steps`` optimiser steps, peaking at ``config.lr``."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps, pct_start=config.pct_start)
