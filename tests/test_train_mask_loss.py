"""The mask loss: targets from pixel-aligned pairs only, a head on the last feature map that leaves the logits alone, and
a loss that rewards pointing at the change."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from dfdc_infer.models import create_network
from dfdc_train.mask_loss import UNKNOWN, MaskHead, WithMaskHead, batch_targets, change_target, mask_loss


def pair() -> tuple[np.ndarray, np.ndarray]:
    """A textured 64 px crop (mid-grey on average) and its fake: the same pixels but a black 16 px square (rows and columns 24-40)."""
    real = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 1.0)
    fake = real.copy()
    fake[24:40, 24:40] = 0
    return real, fake


def test_a_target_marks_the_changed_square_of_an_aligned_pair_and_nothing_else() -> None:
    real, fake = pair()
    target = change_target(real, fake, 16)
    assert target.shape == (16, 16) and target.dtype == np.float32
    assert target[7:9, 7:9].min() == pytest.approx(1.0)  # 4 px per cell: the square is cells 6-9
    assert target[:5].max() == 0 and target[:, 11:].max() == 0


def test_pairs_cut_apart_or_barely_changed_give_no_target() -> None:
    real, fake = pair()
    assert change_target(real, np.roll(fake, 3, axis=1), 16) is None  # framed apart: the border differs everywhere
    noise = np.random.default_rng(1).integers(-3, 4, real.shape)
    assert change_target(real, np.clip(real + noise, 0, 255).astype(np.uint8), 16) is None  # codec noise only
    assert change_target(real, fake[:32], 16) is None  # two shapes


def test_batch_targets_are_zero_for_reals_and_unknown_without_a_usable_real() -> None:
    real, fake = pair()
    targets = batch_targets([real, fake, fake, real], [0.0, 1.0, 1.0, 0.0], [0, 0, None, 3], [True, True, True, False], 16)
    assert targets.shape == (4, 1, 16, 16)
    assert targets[0].max() == 0
    np.testing.assert_array_equal(targets[1, 0].numpy(), change_target(real, fake, 16))
    assert (targets[2] == UNKNOWN).all()  # a fake without a real in its group
    assert (targets[3] == UNKNOWN).all()  # a crop changed after pairing (merged)
    merged_real = batch_targets([real, fake], [0.0, 1.0], [0, 0], [False, True], 16)
    assert (merged_real == UNKNOWN).all()  # a fake whose real was merged has nothing to compare with


def test_the_mask_head_reads_the_last_feature_map_and_leaves_the_logits_alone() -> None:
    torch.manual_seed(0)
    model = create_network("test_efficientnet").eval()
    head = MaskHead(model.num_features)
    wrapped = WithMaskHead(model, head)
    images = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        logits, cells = wrapped(images)
        torch.testing.assert_close(logits, model(images))
    assert cells.shape == (2, 1, 2, 2)  # one cell per 32 px of input
    assert cells.abs().max() == 0  # a zero head: every cell starts at P = 0.5, like the classifier
    assert {id(p) for p in wrapped.parameters()} == {id(p) for p in [*model.parameters(), *head.parameters()]}


def test_the_mask_loss_rewards_pointing_at_the_change_and_skips_crops_without_a_target() -> None:
    targets = torch.full((2, 1, 8, 8), UNKNOWN)
    targets[0] = 0.0
    targets[0, 0, :4, :4] = 1.0
    pointing = torch.full((2, 1, 4, 4), -6.0)
    pointing[0, 0, :2, :2] = 6.0
    assert mask_loss(pointing, targets) < 0.01 < 5 < mask_loss(-pointing, targets)
    other = pointing.clone()
    other[1] = 100.0  # the crop without a target counts for nothing
    assert mask_loss(other, targets) == mask_loss(pointing, targets)
    cells = torch.zeros(2, 1, 4, 4, requires_grad=True)
    none = mask_loss(cells, torch.full((2, 1, 8, 8), UNKNOWN))
    assert none.item() == 0 and none.requires_grad
