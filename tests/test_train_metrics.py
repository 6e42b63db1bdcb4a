"""Metrics, losses, schedule and unfreezing, the epoch table and plot, checkpoints in the packaging format."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.aggregation import video_probability
from dfdc_infer.models import ModelSpec, load_model
from dfdc_train.calibration import fit_temperature, probabilities, video_logloss
from dfdc_train.checkpoints import load_training_state, resume_path, save_training_state
from dfdc_train.config import TrainConfig
from dfdc_train.evaluation import slice_table, write_slice_table
from dfdc_train.history import format_table, write_history
from dfdc_train.losses import bce_loss, focal_loss, loss_for_epoch, reduce_loss
from dfdc_train.metrics import clipped_logloss, per_video, roc_auc, score
from dfdc_train.schedule import build_optimizer, build_scheduler, layer_groups, set_trainable
from dfdc_train.splits import Split
from dfdc_train.train import build_model


def test_clipped_logloss_is_the_competition_metric() -> None:
    assert clipped_logloss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    assert clipped_logloss([1], [0.0]) == pytest.approx(-math.log(0.01))  # a sure mistake costs 4.6, not infinity
    assert clipped_logloss([1, 0], [1.0, 0.0]) == pytest.approx(-math.log(0.99))
    assert clipped_logloss([0.25], [0.25], 0, 1) == pytest.approx(-(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))
    with pytest.raises(ValueError, match="no labels"):
        clipped_logloss([], [])


def test_rank_auc_matches_counting_pairs() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 40)
    scores = rng.integers(0, 6, 40) / 5  # many ties
    pairs = [(s_pos > s_neg) + 0.5 * (s_pos == s_neg) for s_pos, s_neg in itertools.product(scores[labels == 1], scores[labels == 0])]
    assert roc_auc(labels, scores) == pytest.approx(np.mean(pairs))
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0 and roc_auc([0, 1], [0.9, 0.1]) == 0.0
    assert math.isnan(roc_auc([1, 1], [0.2, 0.3]))


def test_per_video_scores_use_the_kernels_aggregation() -> None:
    videos = np.array(["b.mp4", "a.mp4", "b.mp4", "a.mp4", "a.mp4"])
    probabilities = np.array([0.995, 0.2, 0.999, 0.4, 0.3])
    table = per_video(videos, np.array([1, 0, 1, 0, 0]), probabilities)
    assert table["video"].tolist() == ["a.mp4", "b.mp4"]
    assert table["probability"].tolist() == [video_probability(np.array([[0.2, 0.4, 0.3]])), video_probability(np.array([[0.995, 0.999]]))]
    assert table["probability"].tolist() == pytest.approx([0.3, 0.99])  # mean, then the kernel's clip
    result = score(videos, np.array([1, 0, 1, 0, 0]), probabilities)
    assert (result["crops"], result["videos"], result["video_auc"]) == (5, 2, 1.0)
    assert result["video_logloss"] == pytest.approx(-(math.log(0.7) + math.log(0.99)) / 2)
    unbalanced = score(np.array(["r", "f1", "f2", "f3"]), np.array([0, 1, 1, 1]), np.array([0.5, 0.9, 0.9, 0.9]))
    assert unbalanced["video_logloss"] == pytest.approx((math.log(2) - 3 * math.log(0.9)) / 4)
    assert unbalanced["video_balanced_logloss"] == pytest.approx((math.log(2) - math.log(0.9)) / 2)  # one real weighs as all fakes


def test_focal_loss_down_weights_easy_crops_and_equals_bce_at_gamma_zero() -> None:
    logits, targets = torch.tensor([4.0, -0.2]), torch.tensor([1.0, 1.0])
    assert focal_loss(logits, targets, 0.0).tolist() == pytest.approx(bce_loss(logits, targets).tolist())
    easy, hard = (focal_loss(logits[i:i + 1], targets[i:i + 1], 2.0) / bce_loss(logits[i:i + 1], targets[i:i + 1]) for i in (0, 1))
    assert easy < 0.001 < 0.2 < hard
    config = TrainConfig(focal_after=2)
    assert [loss_for_epoch(config, epoch)[0] for epoch in range(4)] == ["bce", "bce", "focal", "focal"]
    assert loss_for_epoch(TrainConfig(loss="focal"), 0)[0] == "focal"


def test_build_model_starts_at_one_half_with_the_archs_normalisation() -> None:
    model, spec = build_model(TrainConfig(arch="test_efficientnet", input_size=48))
    assert (spec.arch, spec.input_size, spec.mean) == ("test_efficientnet", 48, (0.485, 0.456, 0.406))
    assert torch.sigmoid(model.eval()(torch.randn(2, 3, 48, 48))).tolist() == [[0.5], [0.5]]
    with pytest.raises(ValueError, match="unknown timm architecture 'efficientnet_b99'"):
        build_model(TrainConfig(arch="efficientnet_b99"))


def test_highpass_stem_starts_half_the_first_filters_as_zero_sum_residuals() -> None:
    random_model, _ = build_model(TrainConfig(arch="test_efficientnet"))
    model, spec = build_model(TrainConfig(arch="test_efficientnet", stem="highpass"))
    conv = model.conv_stem
    half = conv.out_channels // 2
    sums = conv.weight.sum(dim=(1, 2, 3))
    torch.testing.assert_close(sums[:half], torch.zeros(half), atol=1e-6, rtol=0)  # blind to flat colour: only edges and seams pass
    flat = torch.full((1, 3, 16, 16), 0.7)
    assert torch.nn.functional.conv2d(flat, conv.weight[:half], padding=1)[..., 2:-2, 2:-2].abs().max() < 1e-5
    torch.testing.assert_close(conv.weight[half:], random_model.conv_stem.weight[half:])  # the rest as timm starts them
    assert conv.weight.requires_grad and spec.arch == "test_efficientnet"  # trained on, and loads in the kernel as any other
    with pytest.raises(ValueError, match=r"stem one of \(.random., .highpass.\)"):
        TrainConfig(stem="sobel")


def test_gradual_unfreezing_opens_the_head_then_blocks_from_the_top() -> None:
    model, _ = build_model(TrainConfig(arch="test_efficientnet"))
    groups = layer_groups(model)
    blocks = len(model.blocks)

    def trainable(group: list[torch.nn.Module]) -> bool:
        return all(p.requires_grad for module in group for p in module.parameters())

    model.train()
    assert set_trainable(model, 0, 1) == f"head + top 0 of {blocks} blocks"
    assert [trainable(group) for group in groups] == [True] + [False] * (blocks + 1)
    assert not model.blocks[-1].training and model.get_classifier().training  # frozen BatchNorm keeps its statistics
    model.train()
    assert set_trainable(model, 1, 2) == f"head + top 2 of {blocks} blocks"
    assert groups[1][0] is model.blocks[-1] and [trainable(group) for group in groups[:4]] == [True, True, True, False]
    model.train()
    assert set_trainable(model, 99, 1) == "all layers" and all(p.requires_grad for p in model.parameters())
    with pytest.raises(ValueError, match="needs a timm model with .blocks"):
        layer_groups(torch.nn.Linear(2, 1))


def test_one_cycle_warms_up_then_anneals_with_the_body_at_its_fraction_of_the_heads_rate() -> None:
    model, _ = build_model(TrainConfig(arch="test_efficientnet"))
    config = TrainConfig(lr=0.01, pct_start=0.3, body_lr=0.1)
    optimizer = build_optimizer(model, config)
    body, head = optimizer.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in model.get_classifier().parameters()}
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))
    scheduler = build_scheduler(optimizer, config, total_steps=10)
    rates = [scheduler.get_last_lr()]
    for _ in range(9):
        optimizer.step()
        scheduler.step()
        rates.append(scheduler.get_last_lr())
    head_rates = [rate[1] for rate in rates]
    peak = int(np.argmax(head_rates))
    assert head_rates[0] == pytest.approx(0.01 / 25) and max(head_rates) == pytest.approx(0.01, rel=0.05) and 1 <= peak <= 3
    assert head_rates[-1] < 1e-6 and all(a >= b for a, b in zip(head_rates[peak:], head_rates[peak + 1:]))
    assert all(body_rate == pytest.approx(0.1 * head_rate) for body_rate, head_rate in rates)


def test_freeze_epochs_train_the_classifier_alone_with_frozen_batchnorm_then_gradual_unfreezing_starts() -> None:
    model, _ = build_model(TrainConfig(arch="test_efficientnet"))
    model.train()
    assert set_trainable(model, 1, 0, freeze_epochs=2) == "the classifier only (body frozen for 2 epochs)"
    assert [name for name, p in model.named_parameters() if p.requires_grad] == ["classifier.weight", "classifier.bias"]
    assert not model.bn1.training and not model.blocks[-1].training and model.get_classifier().training
    model.train()
    assert set_trainable(model, 2, 1, freeze_epochs=2) == f"head + top 0 of {len(model.blocks)} blocks"
    model.train()
    assert set_trainable(model, 2, 0, freeze_epochs=2) == "all layers" and all(p.requires_grad for p in model.parameters())


def test_label_smoothing_class_balance_and_ohem_shape_the_batch_loss() -> None:
    logits, targets = torch.tensor([3.0, -1.0, 0.0, -4.0, 2.0]), torch.tensor([1.0, 1.0, 0.0, 0.0, 0.0])
    per_crop = bce_loss(logits, targets)
    assert reduce_loss(per_crop, targets).item() == pytest.approx(per_crop.mean().item())
    real, fake = per_crop[2:].mean(), per_crop[:2].mean()
    assert reduce_loss(per_crop, targets, balanced=True).item() == pytest.approx(((real + fake) / 2).item())
    # OHEM 0.5: the harder half of each class (1 of 2 fakes: logit -1; 2 of 3 reals, rounded: logits 2 and 0)
    hardest = torch.stack([per_crop[1], per_crop[4], per_crop[2]])
    assert reduce_loss(per_crop, targets, ohem=0.5).item() == pytest.approx(hardest.mean().item())
    assert reduce_loss(per_crop, targets, balanced=True, ohem=0.5).item() == pytest.approx(
        ((per_crop[1] + (per_crop[4] + per_crop[2]) / 2) / 2).item())
    _, smoothed = loss_for_epoch(TrainConfig(label_smoothing=0.1), 0)
    expected = bce_loss(logits, targets * 0.9 + 0.05).mean()
    assert smoothed(logits, targets).item() == pytest.approx(expected.item())
    assert smoothed(logits, targets).item() > loss_for_epoch(TrainConfig(), 0)[1](logits, targets).item()


def test_history_table_csv_and_png(tmp_path: Path) -> None:
    rows = [{"epoch": e, "loss": "bce", "lr": 1e-3, "train_loss": 0.7 - e / 10, "train_logloss": 0.7 - e / 10, "val_crop_logloss": 0.69,
             "val_crop_auc": 0.5 + e / 10, "val_video_logloss": 0.68 - e / 20, "val_video_auc": 0.6, "seconds": 12.3} for e in (1, 2)]
    csv_path, png_path = write_history(rows, tmp_path)
    written = pd.read_csv(csv_path)
    assert list(written.columns) == list(rows[0]) and written["val_video_logloss"].tolist() == pytest.approx([0.63, 0.58])
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png_path.stat().st_size > 10_000
    table = format_table(rows).splitlines()
    assert table[0].split()[:4] == ["epoch", "loss", "lr", "train_loss"] and table[1].split()[2:4] == ["1.00e-03", "0.6000"]
    assert len({len(line) for line in table}) == 1 and format_table(rows[1:], header=False) == table[2]  # columns line up


def test_checkpoint_is_the_packaging_format_with_a_resume_file(tmp_path: Path) -> None:
    model, spec = build_model(TrainConfig(arch="test_efficientnet", input_size=48))
    meta = {"trained": True, "metrics": {"val_video_logloss": 0.42}, "train_config": TrainConfig().to_dict()}
    path = save_training_state(tmp_path / "last.pt", model, ModelSpec(spec.arch, 48, spec.mean, spec.std, meta), {"epoch": 3})
    assert resume_path(path) == tmp_path / "last.resume.pt" and not list(tmp_path.glob("*.tmp"))
    loaded, loaded_spec = load_model(path)  # what build_submission.py and the kernel call
    assert loaded_spec.meta["metrics"] == {"val_video_logloss": 0.42} and loaded_spec.input_size == 48
    torch.testing.assert_close(loaded.state_dict(), model.state_dict())
    assert load_training_state(path)[2] == {"epoch": 3}
    resume_path(path).unlink()
    with pytest.raises(FileNotFoundError, match="resume state not found: .*last.resume.pt"):
        load_training_state(path)


def test_temperature_fit_recovers_an_overconfident_models_scale() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0.0, 1.0], 200)
    calibrated = 2 * (rng.normal(0, 1, 400) + np.where(labels == 1, 1.0, -1.0))  # N(+-1, 1): the log-likelihood ratio is 2x
    videos = np.arange(400).astype(str)  # one crop per video
    overconfident = 4 * calibrated
    temperature = fit_temperature(videos, labels, overconfident)
    assert 3.0 < temperature < 5.5
    assert fit_temperature(videos, labels, calibrated / 3) == 1.0  # an underconfident model is never sharpened
    before, after = (video_logloss(videos, labels, overconfident, t, 0.01, 0.99) for t in (1.0, temperature))
    assert after < before - 0.1
    assert roc_auc(labels, probabilities(overconfident, temperature)) == pytest.approx(roc_auc(labels, overconfident))  # ranking kept


def test_balanced_temperature_fit_weighs_the_rare_class_like_the_common_one() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat([0.0, 1.0], [100, 500])  # DFDC's share of fakes
    videos = np.arange(600).astype(str)
    logits = 6 * (rng.normal(0, 1, 600) + np.where(labels == 1, 0.5, -0.5))  # overconfident, reals ranked worse
    plain, balanced = fit_temperature(videos, labels, logits), fit_temperature(videos, labels, logits, balanced=True)
    assert plain != balanced
    losses = {t: video_logloss(videos, labels, logits, t, 0.01, 0.99, balanced=True) for t in (plain, balanced)}
    assert losses[balanced] < losses[plain], "the balanced fit is the better one on the figure it was fitted for"
    halves = [clipped_logloss(labels[labels == c], probabilities(logits[labels == c], balanced)) for c in (0, 1)]
    assert losses[balanced] == pytest.approx(np.mean(halves))


def test_a_balanced_loss_run_is_selected_by_its_calibrated_balanced_logloss() -> None:
    from dfdc_train.train import best_epoch, selection_metric

    history = [{"val_video_logloss_calibrated": 0.49, "val_video_balanced_logloss_calibrated": 0.63},
               {"val_video_logloss_calibrated": 0.58, "val_video_balanced_logloss_calibrated": 0.55}]
    assert selection_metric(TrainConfig()) == "val_video_logloss_calibrated"
    assert best_epoch(history, TrainConfig()) == (0, "val_video_logloss_calibrated")
    balanced = TrainConfig(balanced_loss=True)
    assert selection_metric(balanced) == "val_video_balanced_logloss_calibrated" and best_epoch(history, balanced)[0] == 1
    assert selection_metric(TrainConfig(balanced_loss=True, calibrate=False)) == "val_video_balanced_logloss"
    older = [{"val_video_logloss_calibrated": row["val_video_logloss_calibrated"]} for row in history]
    assert best_epoch(older, balanced) == (0, "val_video_logloss_calibrated"), "an older history resumes on its old metric"


def test_slice_table_separates_methods_and_seen_from_unseen_identities(tmp_path: Path) -> None:
    rows = [("r1", "REAL", "ann", ""), ("f1", "FAKE", "ann", "self-blend"), ("r2", "REAL", "bob", ""), ("f2", "FAKE", "bob", "part-warp"),
            ("r3", "REAL", "cid", ""), ("f3", "FAKE", "cid", "self-blend")]
    crops = pd.DataFrame([{"video": v, "label": label, "identity": who, "method": how, "path": f"{v}.jpg"} for v, label, who, how in rows
                          for _ in range(2)])
    logits = np.repeat([-2.0, 2.0, -1.0, 0.5, -2.0, -0.5], 2)
    split = Split("test", frozenset(), crops, crops.drop_duplicates("video"))
    table = slice_table(split, logits, 1.0, {"ann"}, {"self-blend"}, TrainConfig()).set_index("slice")
    assert list(table.index) == ["all", "seen identities", "unseen identities", "method part-warp (held out)", "method self-blend (seen)",
                                 "unseen identities, held-out methods"]
    assert table.loc["seen identities", ["videos", "real", "fake", "auc"]].tolist() == [2, 1, 1, 1.0]
    assert table.loc["unseen identities", ["videos", "real", "fake"]].tolist() == [4, 2, 2]
    assert table.loc["unseen identities", "auc"] == pytest.approx(1.0)  # fakes 0.5, -0.5 above reals -1, -2
    assert table.loc["method part-warp (held out)", ["real", "fake"]].tolist() == [3, 1]
    assert table.loc["unseen identities, held-out methods", ["real", "fake"]].tolist() == [2, 1]
    expected = clipped_logloss([0, 1], [1 / (1 + math.exp(2)), 1 / (1 + math.exp(-2))])
    assert table.loc["seen identities", "logloss"] == pytest.approx(expected)
    csv_path, png_path = write_slice_table(table.reset_index(), tmp_path, "test")
    assert pd.read_csv(csv_path)["slice"].iloc[0] == "all" and png_path.read_bytes()[:4] == b"\x89PNG"
    anonymous = Split("test", frozenset(), crops.drop(columns="identity"), crops.drop_duplicates("video"))
    without = slice_table(anonymous, logits, 1.0, set(), {"self-blend"}, TrainConfig())["slice"].tolist()
    assert without == ["all", "method part-warp (held out)", "method self-blend (seen)"], "no identities: no seen/unseen slices"
