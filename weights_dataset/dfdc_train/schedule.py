"""Optimiser, one-cycle learning rate, and gradual unfreezing.

One-cycle (Smith, 2018; ``torch.optim.lr_scheduler.OneCycleLR``) warms the learning rate up to
``TrainConfig.lr`` and anneals it to nearly zero over the whole run, stepped once per batch.
Gradual unfreezing trains the classifier head alone first and then opens the network block by block
from the top down; it pays off with pretrained bodies (``--pretrained``, what Kaggle solutions
fine-tuned). Discriminative learning rates give the pretrained body a lower peak rate than the new head.
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


def set_trainable(model: nn.Module, epoch: int, blocks_per_epoch: int, freeze_epochs: int = 0) -> str:
    """Freeze what ``freeze_epochs`` (the classifier alone trains) and then gradual unfreezing keep frozen in ``epoch``;
    returns a description for the log.

    Call after ``model.train()``: frozen layers are also put in eval mode, so their BatchNorm statistics stay as they
    are (a pretrained body's ImageNet statistics) instead of drifting under a "frozen" label.
    """
    if epoch < freeze_epochs:
        model.requires_grad_(False)
        model.eval()
        model.get_classifier().requires_grad_(True).train()
        return f"the classifier only (body frozen for {freeze_epochs} epochs)"
    epoch -= freeze_epochs
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


def parameter_groups(model: nn.Module) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """The body's parameters and the classifier's (the one layer a fine-tuned network always learns from scratch)."""
    head = {id(parameter) for parameter in model.get_classifier().parameters()}
    parameters = list(model.parameters())
    return [p for p in parameters if id(p) not in head], [p for p in parameters if id(p) in head]


def build_optimizer(model: nn.Module, config: TrainConfig, extra: nn.Module | None = None) -> torch.optim.Optimizer:
    """AdamW over every parameter, the body at ``body_lr`` x the head's rate; frozen ones get no gradient, which AdamW skips.
    ``extra`` (a training-only head, new like the classifier) learns at the head's rate."""
    body, head = parameter_groups(model)
    head += list(extra.parameters()) if extra is not None else []
    return torch.optim.AdamW([{"params": body, "lr": config.lr * config.body_lr}, {"params": head, "lr": config.lr}],
                             lr=config.lr, weight_decay=config.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int) -> torch.optim.lr_scheduler.OneCycleLR:
    """One cycle over ``total_steps`` optimiser steps, each group peaking at its own rate (body ``lr x body_lr``, head ``lr``)."""
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[group["lr"] for group in optimizer.param_groups],
                                               total_steps=total_steps, pct_start=config.pct_start)
