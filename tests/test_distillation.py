"""``--teacher-scores``: a teacher's P(fake) mixes into the training crops' targets, and nowhere else."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdc_infer.manifest import sha256_file
from dfdc_infer.models import read_checkpoint
from dfdc_train.config import TrainConfig
from dfdc_train.data import TrainBatches
from dfdc_train.distillation import read_teacher_scores
from dfdc_train.faces_folder import read_faces_folder
from dfdc_train.layout import DataError
from dfdc_train.sampling import Group, Item
from dfdc_train.train import load_data, train

ORIGINALS = 12
PLAIN = TrainConfig(flip_prob=0, brightness_prob=0, zoom_prob=0, crappify_prob=0, jpeg_prob=0)


def make_folder(root: Path) -> Path:
    """A deepfake-faces folder: each original ``realNN`` with two fakes, ``fakeNN`` and ``otherNN``."""
    rng = np.random.default_rng(0)
    (root / "faces_224").mkdir(parents=True)
    rows = []
    for number in range(ORIGINALS):
        original = f"real{number:02d}.mp4"
        for name, label in ((original, "REAL"), (f"fake{number:02d}.mp4", "FAKE"), (f"other{number:02d}.mp4", "FAKE")):
            image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            cv2.imwrite(str(root / "faces_224" / f"{Path(name).stem}.jpg"), image)
            rows.append((name, label, "" if label == "REAL" else original))
    pd.DataFrame({"videoname": [r[0] for r in rows], "original_width": 150, "original_height": 150,
                  "label": [r[1] for r in rows], "original": [r[2] for r in rows]}).to_csv(root / "metadata.csv", index=False)
    return root


def teacher_file(root: Path, path: Path, skip: str = "other") -> Path:
    """Scores in ``evaluate``'s format for every crop but those whose name starts with ``skip``: P(fake) 0.2 for a
    real, 0.7 for a fake."""
    crops = read_faces_folder(root).crops
    kept = crops[~crops["video"].str.startswith(skip)]
    pd.DataFrame({"videoname": kept["video"], "label": kept["label"],
                  "p_fake": np.where(kept["label"] == "FAKE", 0.7, 0.2)}).to_csv(path, index=False)
    return path


def split_config(root: Path, **settings: object) -> TrainConfig:
    chunks = sorted(set(read_faces_folder(root).crops["chunk"]))
    return replace(PLAIN, train_chunks=",".join(map(str, chunks[:-2])), val_chunks=str(chunks[-2]), test_chunks=str(chunks[-1]),
                   **settings)


def test_training_crops_mix_the_teacher_into_their_label_and_held_out_crops_do_not(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_folder(tmp_path / "faces")
    scores = teacher_file(root, tmp_path / "scores.csv")
    with caplog.at_level(logging.INFO):
        data = load_data(root, split_config(root, teacher_scores=str(scores), teacher_weight=0.4))
    train = data.splits["train"].crops.set_index("video")
    for video, target in train["target"].items():
        expected = 1.0 if video.startswith("other") else 0.6 + 0.4 * 0.7 if video.startswith("fake") else 0.4 * 0.2
        assert target == pytest.approx(expected)
    for name in ("val", "test"):  # held-out figures stay comparable with every other run's
        assert "target" not in data.splits[name].crops.columns
    originals = len(train) // 3
    assert (f"train split: {2 * originals} of {3 * originals} crops train on (1 - 0.4) x label + 0.4 x the teacher's P(fake) "
            f"from {scores} (--teacher-scores); {originals} the file does not score keep their label") in caplog.text


def test_a_batch_carries_the_soft_targets_and_an_on_the_fly_fake_its_label(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    data = load_data(root, split_config(root, teacher_scores=str(teacher_file(root, tmp_path / "scores.csv"))))
    crops = data.splits["train"].crops
    rows = {video: row for row, video in enumerate(crops["video"])}
    real, fake = rows["real00.mp4"], rows["fake00.mp4"]
    group = Group((Item(real, 0.0), Item(fake, 1.0), Item(real, 1.0, "self-blend")), seed=0)
    _, targets = TrainBatches([(group,)], crops, root, PLAIN, 1.3, 32)[0]
    assert targets.tolist() == pytest.approx([0.4 * 0.2, 0.6 + 0.4 * 0.7, 1.0])
    plain = load_data(root, split_config(root))
    _, hard = TrainBatches([(group,)], plain.splits["train"].crops, root, PLAIN, 1.3, 32)[0]
    assert hard.tolist() == [0.0, 1.0, 1.0]


def test_scores_of_another_folder_are_refused(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    scores = teacher_file(root, tmp_path / "scores.csv")
    table = pd.read_csv(scores)
    table.loc[table["videoname"] == "fake03.mp4", "label"] = "REAL"
    table.to_csv(tmp_path / "swapped.csv", index=False)
    with pytest.raises(DataError, match="1 videos have another label there than in the folder .first: fake03.mp4."):
        load_data(root, split_config(root, teacher_scores=str(tmp_path / "swapped.csv")))
    table.assign(videoname="x" + table["videoname"]).to_csv(tmp_path / "elsewhere.csv", index=False)
    with pytest.raises(DataError, match="none of the .* train crops is scored there"):
        load_data(root, split_config(root, teacher_scores=str(tmp_path / "elsewhere.csv")))


@pytest.mark.parametrize(("text", "message"), [
    ("videoname,score\na.mp4,0.5\n", r"missing columns \['label', 'p_fake'\]"),
    ("videoname,label,p_fake\na.mp4,FAKE,1.5\n", r"p_fake must be a probability in \[0, 1\]"),
    ("videoname,label,p_fake\na.mp4,FAKE,\n", r"p_fake must be a probability in \[0, 1\]"),
    ("videoname,label,p_fake\na.mp4,FAKE,0.4\na.mp4,REAL,0.3\n", "one video has rows with two labels"),
])
def test_a_bad_scores_file_is_a_one_line_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "scores.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=message):
        read_teacher_scores(path)
    with pytest.raises(DataError, match="cannot read it"):
        read_teacher_scores(tmp_path / "missing.csv")


def test_rows_of_one_video_are_averaged(tmp_path: Path) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("videoname,label,p_fake\na.mp4,FAKE,0.4\na.mp4,FAKE,0.8\nb.mp4,REAL,0.1\n")
    scores = read_teacher_scores(path)
    assert scores.loc["a.mp4", "p_fake"] == pytest.approx(0.6)
    assert scores.loc["b.mp4", "label"] == "REAL"


def test_the_teachers_share_keeps_every_target_on_its_labels_side() -> None:
    with pytest.raises(ValueError, match="teacher_weight must be in \\[0, 0.5\\)"):
        TrainConfig(teacher_weight=0.5)


def test_a_distilled_run_records_its_teachers_file_and_resumes_only_on_the_same_bytes(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    scores = teacher_file(root, tmp_path / "scores.csv")
    config = split_config(root, teacher_scores=str(scores), arch="test_efficientnet", input_size=32, epochs=2,
                          originals_per_batch=4, workers=0, threads=1)
    out = tmp_path / "run"
    train(root, out, config, stop_after=1)
    trained_on = sha256_file(scores)
    assert read_checkpoint(out / "last.pt")[0].meta["teacher_scores_sha256"] == trained_on
    table = pd.read_csv(scores)
    table.assign(p_fake=table["p_fake"] / 2).to_csv(scores, index=False)  # another teacher's scores under the same name
    with pytest.raises(ValueError, match=f"last.pt was trained on --teacher-scores with sha256 {trained_on[:12]}, this run has a "
                       f"file with sha256 {sha256_file(scores)[:12]}: resume with the same scores file"):
        train(root, out, config, resume=out / "last.pt")
    with pytest.raises(ValueError, match=r"this run has none: resume with the same scores file"):
        train(root, out, replace(config, teacher_scores=""), resume=out / "last.pt")
    plain = tmp_path / "plain"
    train(root, plain, replace(config, teacher_scores=""), stop_after=1)
    with pytest.raises(ValueError, match=r"plain.last.pt was trained without --teacher-scores: resume with the same settings"):
        train(root, plain, config, resume=plain / "last.pt")
    table.to_csv(scores, index=False)  # the original bytes again
    assert sha256_file(scores) == trained_on
    assert len(train(root, out, config, resume=out / "last.pt")) == 2
