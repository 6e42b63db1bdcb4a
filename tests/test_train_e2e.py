"""End to end on generated data: extract, train (it learns), pack, run the kernel; resume; two processes; bad input.

The CI variant of the proof: timm's tiny EfficientNet (``test_efficientnet``, 0.1 M parameters) at
64 px for about a minute of CPU, on videos of nine identities, trained on six of them with one fake
method held out. Every quality assertion is on people the model never trained on: the validation
person (and the kernel on new videos of that person) and the two test people (the evaluation
table). Training is deterministic (seeds, ``--threads 1``, OpenCV on one thread, ``--workers 0``,
batch order a function of the seed): the figures are bit-identical from run to run whatever the
machine's load, so a margin measured once holds on every run of the same software.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.config import InferenceConfig
from dfdc_infer.models import load_model, read_checkpoint
from dfdc_sample.generate import generate_dataset
from dfdc_train.config import ExtractConfig, TrainConfig
from dfdc_train.crop_index import read_index
from dfdc_train.extract import extract
from dfdc_train.metrics import clipped_logloss, roc_auc
from dfdc_train.sampling import build_pairing
from dfdc_train.train import main, train

REPO = Path(__file__).resolve().parents[1]
SPLIT = ["--train-chunks", "0-2", "--val-chunks", "3", "--test-chunks", ""]
SMALL = ["--arch", "test_efficientnet", "--input-size", "64", "--originals-per-batch", "8", "--workers", "0", "--threads", "1"]
UNSEEN_VAL, UNSEEN_TEST, HELD_OUT_METHOD = "t1-6", ["hopper", "t1-4"], "part-warp"
BY_IDENTITY = ["--train-chunks", "0-3", "--val-chunks", "", "--test-chunks", "", "--val-identities", UNSEEN_VAL,
               "--test-identities", ",".join(UNSEEN_TEST), "--test-methods", HELD_OUT_METHOD]
IDENTITIES = ["astronaut", "hanks", "hopper", *(f"t1-{k}" for k in range(1, 7))]
"""The nine faces these figures were measured with; later photo sources add people, and would deal the videos anew."""
EPOCHS = 60
SEEN_METHODS = ["boundary", "face-swap", "reencode", "self-blend"]
# Measured (deterministic: one thread, fixed seeds, so every run on a machine gives the same figures): validation (t1-6)
# AUC 0.895, logloss 0.489 (chosen and calibrated on it, so flattering); the packed kernel on 48 new videos of the test people
# (hopper, t1-4: never used for training, selection or calibration) faked by the trained methods: AUC 0.668, logloss 0.612;
# its test split (those people, every method): AUC 0.664.
# With the held-out method too, or on 24 videos, the kernel's AUC ranged 0.50-0.67 over generation seeds: the tiny net
# generalises to new people only a little, so the bounds say "better than chance and than a constant 0.5", with margins.
VAL_AUC, VAL_LOGLOSS, TEST_AUC, KERNEL_AUC, KERNEL_LOGLOSS = 0.75, 0.6, 0.55, 0.55, 0.69


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """240 generated videos (120 REAL of the nine ``IDENTITIES``, 120 FAKE by five methods) in 4 chunks, 5 faces each extracted at 96 px."""
    data = generate_dataset(tmp_path_factory.mktemp("train") / "data", layout="train", chunks=4, videos=240, frames=25, seed=3,
                            identities=IDENTITIES)
    out = tmp_path_factory.mktemp("crops")
    summary = extract(data, out, ExtractConfig(crop_size=96, inference=InferenceConfig(frame_step=5)))
    assert (summary.extracted, summary.no_face, summary.failures) == (240, 1, {})
    return out


def training_originals(crops: Path) -> int:
    """REAL videos of chunks 0-2 that have a face and a fake to pair with."""
    table = read_index(crops)[0]
    return len(build_pairing(table[table["chunk"] <= 2].reset_index(drop=True)).usable("pairs"))


@pytest.fixture(scope="module")
def trained(crops: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    # On-the-fly fakes by every method but the held-out one: new manipulations every step instead of
    # the few fake videos, which the tiny net memorises together with the faces.
    assert main([str(crops), str(out), *BY_IDENTITY, *SMALL, "--epochs", str(EPOCHS), "--lr", "3e-3", "--sampler", "synthetic"]) == 0
    return out


def test_training_learns_and_writes_history_plot_and_checkpoints(trained: Path) -> None:
    history = pd.read_csv(trained / "history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert history["train_logloss"].iloc[-4:].mean() < history["train_logloss"].iloc[0] - 0.1  # it fits the training pairs
    best = history.loc[history["val_video_logloss_calibrated"].idxmin()]
    assert best["val_video_auc"] > VAL_AUC and best["val_video_logloss_calibrated"] < VAL_LOGLOSS  # fakes of a person it never trained on
    assert (trained / "curves.png").read_bytes()[:4] == b"\x89PNG"
    spec, _ = read_checkpoint(trained / "best.pt")
    assert spec.meta["epoch"] == best["epoch"] and spec.meta["temperature"] == best["val_temperature"]
    assert spec.meta["metrics"]["val_video_logloss_calibrated"] == pytest.approx(best["val_video_logloss_calibrated"])
    assert spec.meta["identities_seen"] == ["astronaut", "hanks", "t1-1", "t1-2", "t1-3", "t1-5"]
    assert spec.meta["methods_seen"] == ["boundary", "face-swap", "reencode", "self-blend"]
    assert 1 <= spec.meta["temperature"] <= 8
    assert spec.meta["metrics"]["val_video_logloss_calibrated"] <= spec.meta["metrics"]["val_video_logloss_uncalibrated"]
    slices = pd.read_csv(trained / "evaluation.csv").set_index("slice")  # the test split: two people never seen
    assert slices.loc["unseen identities", "videos"] == slices.loc["all", "videos"] and (trained / "evaluation.png").is_file()
    assert f"method {HELD_OUT_METHOD} (held out)" in slices.index and "method face-swap (seen)" in slices.index
    unseen = slices.loc["unseen identities"]
    assert unseen["auc"] > TEST_AUC and unseen["logloss"] <= unseen["logloss_uncalibrated"]  # calibration never sharpens
    assert spec.meta["train_config"] == TrainConfig.from_dict(spec.meta["train_config"]).to_dict()
    assert spec.meta["train_config"]["arch"] == "test_efficientnet" and spec.meta["extraction"]["crop_size"] == 96
    assert (spec.arch, spec.input_size) == ("test_efficientnet", 64)
    assert (trained / "last.resume.pt").is_file() and read_checkpoint(trained / "last.pt")[0].meta["epoch"] == EPOCHS


def test_packed_model_scores_held_out_videos_in_the_kernel(trained: Path, tmp_path: Path) -> None:
    import decord
    import timm

    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:", "-d", str(wheels),
                    f"timm=={timm.__version__}", f"decord=={decord.__version__}"], check=True, timeout=300)
    build = subprocess.run([sys.executable, str(REPO / "build_submission.py"), "--checkpoint", str(trained / "best.pt"),
                            "--out", str(tmp_path / "build"), "--wheels", str(wheels), "--frame-step", "5",
                            "--fp32"],  # the tiny test network moves ~1e-3 in fp16, just over the build's tolerance
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    held_out = generate_dataset(tmp_path / "held_out", videos=48, frames=25, seed=13, identities=UNSEEN_TEST,
                                methods=SEEN_METHODS)  # people never trained on, selected on or calibrated on
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    kernel = subprocess.run(
        [sys.executable, str(tmp_path / "build" / "kernel" / "dfdc_kernel.py"), "--dataset", str(tmp_path / "build" / "weights_dataset"),
         "--videos", str(held_out / "test_videos"), "--sample-submission", str(held_out / "sample_submission.csv"),
         "--out", str(tmp_path / "submission.csv")], env=environment, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert kernel.returncode == 0, kernel.stderr[-3000:]
    submission = pd.read_csv(tmp_path / "submission.csv")
    truth = json.loads((held_out / "metadata.json").read_text())
    fake = np.array([truth[name]["label"] == "FAKE" for name in submission["filename"]])
    assert len(submission) == 48 and submission["label"].between(0.01, 0.99).all()
    logloss, auc = clipped_logloss(fake, submission["label"]), roc_auc(fake, submission["label"])
    assert auc > KERNEL_AUC and logloss < KERNEL_LOGLOSS


def test_a_paused_run_resumes_exactly(crops: Path, tmp_path: Path) -> None:
    config = TrainConfig(arch="test_efficientnet", input_size=32, epochs=3, train_chunks="0-2", val_chunks="3", test_chunks="",
                         originals_per_batch=16, workers=0, mixup_prob=0.5, merge_prob=0.5)
    whole = train(crops, tmp_path / "whole", config)
    paused = train(crops, tmp_path / "paused", config, stop_after=2)
    assert len(paused) == 2 and read_checkpoint(tmp_path / "paused" / "last.pt")[0].meta["epoch"] == 2
    resumed = train(crops, tmp_path / "paused", config, resume=tmp_path / "paused" / "last.pt")
    assert [row["val_crop_logloss"] for row in resumed] == pytest.approx([row["val_crop_logloss"] for row in whole], abs=1e-6)
    torch.testing.assert_close(load_model(tmp_path / "paused" / "last.pt")[0].state_dict(),
                               load_model(tmp_path / "whole" / "last.pt")[0].state_dict())
    steps = len(resumed) * math.ceil(training_originals(crops) / 16)
    with pytest.raises(ValueError, match=f"schedule of {steps} steps, this run has {steps // 3 * 4}"):
        train(crops, tmp_path / "other", replace(config, epochs=4), resume=tmp_path / "paused" / "last.pt")


def test_two_processes_with_torchrun_gloo_unfreezing_and_focal_loss(crops: Path, tmp_path: Path) -> None:
    out = tmp_path / "ddp"
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             "-m", "dfdc_train.train", str(crops), str(out), *SPLIT, *SMALL, "--epochs", "2", "--sampler", "all-fakes",
                             "--unfreeze-blocks-per-epoch", "2", "--focal-after", "1"],
                            capture_output=True, text=True, timeout=300, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    per_process = math.ceil(math.ceil(training_originals(crops) / 8) / 2)
    assert f"on cpu x2: 2 epochs of {per_process} batches per process" in result.stderr
    assert "INFO [rank 1]" not in result.stderr  # one process reports
    assert "[rank 0] epoch 1/2: bce loss, training head + top 0 of" in result.stderr  # the DDP wrapper follows the unfreezing
    assert "[rank 0] epoch 2/2: focal loss, training head + top 2 of" in result.stderr
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]
    assert load_model(out / "best.pt")[1].meta["train_config"]["epochs"] == 2


def test_training_cli_refuses_bad_input_in_one_line(crops: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    def error(*args: str) -> str:
        assert main([*args]) == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in lines[0]
        return lines[0]

    assert error(str(tmp_path), str(tmp_path / "o")) == f"error: {tmp_path / 'index.csv'} not found: run python -m dfdc_train.extract first"
    assert error(str(crops), str(tmp_path / "o"), "--train-chunks", "0-2", "--val-chunks", "7", "--test-chunks", "") == (
        "error: the val split (chunks 7) has no face crops; extracted chunks: 0-3; set --val-chunks")
    assert error(str(crops), str(tmp_path / "o"), *SPLIT, "--arch", "no_such_net") == (
        "error: unknown timm architecture 'no_such_net' (e.g. tf_efficientnet_b0 ... tf_efficientnet_b7)")
    assert error(str(crops), str(tmp_path / "o"), "--resume", str(tmp_path / "gone.pt")) == f"error: checkpoint not found: {tmp_path / 'gone.pt'}"
    assert error(str(crops), str(tmp_path / "o"), *SPLIT, "--flip-prob", "2") == "error: must be in [0, 1]: flip_prob=2.0"
    assert error(str(crops), str(tmp_path / "o"), *SPLIT, "--synthetic-box-scale", "0") == (
        "error: synthetic_box_scale must be in [0.25, 2], got 0.0")
    assert error(str(crops), str(tmp_path / "o"), *SPLIT, "--test-identities", "nobody") == (
        "error: --val-identities/--test-identities: unknown identity nobody; the crop index has astronaut, hanks, hopper, t1-1, t1-2, "
        "t1-3, t1-4, t1-5, t1-6")
    assert error(str(crops), str(tmp_path / "o"), *SPLIT, "--sampler", "synthetic", "--test-methods", "boundary", "--synthetic-methods",
                 "boundary") == "error: --synthetic-methods boundary would train on methods held out by --val-methods/--test-methods"


def test_fine_tuning_options_resume_exactly_average_the_weights_and_log_to_tensorboard(crops: Path, tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = TrainConfig(arch="test_efficientnet", input_size=32, epochs=3, train_chunks="0-2", val_chunks="3", test_chunks="",
                         originals_per_batch=16, workers=0, ema_decay=0.9, grad_clip=1.0, label_smoothing=0.01, balanced_loss=True,
                         ohem=0.5, freeze_epochs=1, body_lr=0.1)
    whole = train(crops, tmp_path / "whole", replace(config, tensorboard=str(tmp_path / "board")))
    train(crops, tmp_path / "paused", config, stop_after=2)
    resumed = train(crops, tmp_path / "paused", config, resume=tmp_path / "paused" / "last.pt")
    assert [row["val_crop_logloss"] for row in resumed] == pytest.approx([row["val_crop_logloss"] for row in whole], abs=1e-6)
    chosen = min(whole, key=lambda row: row["val_video_balanced_logloss_calibrated"])["epoch"]  # balanced loss: balanced pick
    assert read_checkpoint(tmp_path / "whole" / "best.pt")[0].meta["epoch"] == chosen
    averaged = load_model(tmp_path / "whole" / "last.pt")[0].state_dict()
    torch.testing.assert_close(load_model(tmp_path / "paused" / "last.pt")[0].state_dict(), averaged)
    trained_weights = torch.load(tmp_path / "whole" / "last.resume.pt", weights_only=True)["trained_weights"]
    assert not torch.equal(trained_weights["conv_stem.weight"], averaged["conv_stem.weight"])  # the checkpoint holds the average
    assert [row["lr_body"] / row["lr"] for row in whole] == pytest.approx([0.1] * 3)
    board = EventAccumulator(str(tmp_path / "board")).Reload()
    assert {"lr", "lr/body", "train/logloss", "val/video_logloss", "val/video_auc"} <= set(board.Tags()["scalars"])
    assert [event.step for event in board.Scalars("val/video_auc")] == [1, 2, 3]
    assert [event.value for event in board.Scalars("val/video_auc")] == pytest.approx([row["val_video_auc"] for row in whole])


def test_early_stopping_counts_epochs_since_the_best_and_finishes_the_run(crops: Path, tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dfdc_train import train as training

    config = TrainConfig(early_stopping=2, calibrate=False)
    rows = [{"val_video_logloss": value} for value in (0.6, 0.5, 0.55, 0.52)]
    assert [training.stopped_early(rows[:n], config) for n in range(5)] == [False, False, False, False, True]
    assert not training.stopped_early(rows, replace(config, early_stopping=0))
    monkeypatch.setattr(training, "stopped_early", lambda history, config: len(history) >= 2)
    history = train(crops, tmp_path / "run", TrainConfig(arch="test_efficientnet", input_size=32, epochs=5, train_chunks="0-2",
                                                         val_chunks="3", test_chunks="", originals_per_batch=16, workers=0))
    assert len(history) == 2 and (tmp_path / "run" / "evaluation.csv").is_file()  # finished: scored and calibrated
    assert "temperature" in read_checkpoint(tmp_path / "run" / "best.pt")[0].meta


def test_the_mask_loss_trains_a_head_that_resumes_exactly_and_never_reaches_the_checkpoint(crops: Path, tmp_path: Path) -> None:
    config = TrainConfig(arch="test_efficientnet", input_size=64, epochs=2, train_chunks="0-2", val_chunks="3", test_chunks="",
                         originals_per_batch=16, workers=0, mask_loss_weight=1.0, lr=3e-3)
    history = train(crops, tmp_path / "run", config)
    losses = [row["train_mask_loss"] for row in history]
    assert losses[1] < losses[0] < math.log(2)  # zero head: every cell starts at BCE ln 2, and learns where the fakes changed
    assert all(0.5 < row["train_mask_fakes_with_target"] <= 1 for row in history)  # extraction cuts a fake at its original's pixels
    train(crops, tmp_path / "paused", config, stop_after=1)
    resumed = train(crops, tmp_path / "paused", config, resume=tmp_path / "paused" / "last.pt")
    assert [row["val_crop_logloss"] for row in resumed] == pytest.approx([row["val_crop_logloss"] for row in history], abs=1e-6)
    assert "mask_head" in torch.load(tmp_path / "run" / "last.resume.pt", weights_only=True)
    with pytest.raises(ValueError, match="trained with --mask-loss-weight: resume with the same settings"):
        train(crops, tmp_path / "paused", replace(config, mask_loss_weight=0.0), resume=tmp_path / "paused" / "last.pt")
    plain = train(crops, tmp_path / "plain", replace(config, mask_loss_weight=0.0), stop_after=1)
    assert "train_mask_loss" not in plain[0]
    with pytest.raises(ValueError, match="trained without --mask-loss-weight: resume with the same settings"):
        train(crops, tmp_path / "plain", config, resume=tmp_path / "plain" / "last.pt")
    assert list(load_model(tmp_path / "run" / "best.pt")[0].state_dict()) == list(load_model(tmp_path / "plain" / "best.pt")[0].state_dict())
