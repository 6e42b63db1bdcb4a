"""On real deepfakes (``../shared/real``; research-use data, never committed): the DFDC crops and the FF++ videos.

Skipped with a reason where the folder is absent (a user's fresh clone); CI always has it. What it proves:
the 24,003 real DFDC crops read as a crop set whose splits never separate a fake from its original; the
committed starter detector separates real from fake on crops of originals it never trained on (its test
pseudo-chunks); ``evaluate`` prints the figures of the scores it writes; and every FaceForensics++ video,
from other cameras, codecs and fake methods than DFDC's, gets a face and a score end to end.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dfdc_infer.cli import main as infer_main
from dfdc_infer.models import read_checkpoint
from dfdc_tools.starter_model import STARTER_CHECKPOINT
from dfdc_train import evaluate as evaluate_command
from dfdc_train.config import TrainConfig
from dfdc_train.evaluate import evaluate_folder, figures
from dfdc_train.train import load_data

REAL = Path(__file__).resolve().parents[2] / "shared" / "real"
FACES, FFPP = REAL / "dfdc-faces", REAL / "ffpp-c40"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"{REAL} (the real DFDC and FF++ data) is absent here")


def test_the_real_dfdc_crops_split_by_original_80_10_10() -> None:
    data = load_data(FACES, TrainConfig())
    counts = {name: len(split.crops) for name, split in data.splits.items()}
    assert sum(counts.values()) == 24003
    assert 0.76 < counts["train"] / 24003 < 0.84 and 0.07 < counts["val"] / 24003 < 0.13 and 0.07 < counts["test"] / 24003 < 0.13
    split_of = {video: name for name, split in data.splits.items() for video in split.crops["video"]}
    fakes = pd.concat(split.crops for split in data.splits.values()).query("label == 'FAKE'")
    assert all(split_of[fake] == split_of[original] for fake, original in zip(fakes["video"], fakes["original"]))
    assert data.pairing.fakes_without_original == 0 and len(data.pairing.usable("pairs")) > 3000


def starter_test_chunks() -> str:
    return read_checkpoint(STARTER_CHECKPOINT)[0].meta["train_config"]["test_chunks"]


def test_the_starter_checkpoint_records_its_data_recipe_and_preset() -> None:
    spec, _ = read_checkpoint(STARTER_CHECKPOINT)
    assert STARTER_CHECKPOINT.stat().st_size < 10 * 2**20
    assert spec.meta["preset"] == "deepfake-faces" and spec.meta["pretrained"]["source"] == "efficientnet-lite0"
    assert spec.meta["extraction"]["layout"] == "deepfake-faces" and spec.meta["extraction"]["crops"] == 24003
    assert spec.meta["train_config"]["test_chunks"] == "45-49"


def test_the_starter_detector_separates_real_from_fake_on_originals_it_never_saw(tmp_path: Path,
                                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """400 crops of the held-out test pseudo-chunks: far above chance (AUC 0.5, balanced logloss 0.693)."""
    out = tmp_path / "scores.csv"
    assert evaluate_command.main([str(STARTER_CHECKPOINT), str(FACES), "--chunks", starter_test_chunks(), "--limit", "400",
                                  "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    scores = pd.read_csv(out)
    result = figures((scores["label"] == "FAKE").to_numpy(), scores["p_fake"].to_numpy())
    assert len(scores) == 400 and f"AUC {result.auc:.4f}" in printed and f"balanced logloss {result.balanced_logloss:.4f}" in printed
    assert result.auc > 0.85 and result.balanced_logloss < 0.5


def test_evaluate_scores_a_fixed_subset_the_same_every_time() -> None:
    first, result = evaluate_folder([STARTER_CHECKPOINT], FACES, "45", limit=48, seed=3)
    again, _ = evaluate_folder([STARTER_CHECKPOINT], FACES, "45", limit=48, seed=3)
    assert list(first["videoname"]) == list(again["videoname"]) and (first["p_fake"] == again["p_fake"]).all()
    assert result.crops == 48 and result.real + result.fake == 48


def test_every_ffpp_video_gets_a_face_and_a_score(tmp_path: Path) -> None:
    """The starter's own preset (from its meta), default frame sampling: a face found in each of the 35 videos."""
    out = tmp_path / "submission.csv"
    assert infer_main(["predict", "--videos", str(FFPP / "test_videos"), "--sample-submission", str(FFPP / "sample_submission.csv"),
                       "--checkpoint", str(STARTER_CHECKPOINT), "--out", str(out), "--device", "cpu"]) == 0
    submission = pd.read_csv(out)
    expected = pd.read_csv(FFPP / "sample_submission.csv")["filename"]
    assert list(submission["filename"]) == list(expected) and len(submission) == 35
    progress = pd.read_csv(f"{out}.progress", skiprows=1, names=["filename", "label", "status"])  # line 1: the run's fingerprint
    assert len(progress) == 35 and set(progress["status"]) == {"scored"}, progress[progress["status"] != "scored"]
    assert submission["label"].between(0.01, 0.99).all() and submission["label"].nunique() > 10
