"""``--min-fake-change``: fakes that are near copies of their original leave the training split, and nothing else does."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdc_train.config import TrainConfig
from dfdc_train.faces_folder import read_faces_folder
from dfdc_train.train import load_data
from dfdc_train.unchanged_fakes import fake_changes

ORIGINALS = 12


def make_folder(root: Path) -> Path:
    """A deepfake-faces folder: each original has a copy of itself (``copyNN``), a fake with a black square over 1/16 of
    the crop (``squareNN``) and a copy framed 4 px apart (``apartNN``, as a fake cut at its own detection's box)."""
    rng = np.random.default_rng(0)
    (root / "faces_224").mkdir(parents=True)
    rows = []
    for number in range(ORIGINALS):
        real = cv2.resize(rng.integers(0, 256, (28, 28, 3), dtype=np.uint8), (224, 224), interpolation=cv2.INTER_NEAREST)
        square = real.copy()
        square[84:140, 84:140] = 0
        apart = np.roll(real, 4, axis=1)  # the same face, framed half a block apart
        original = f"real{number:02d}.mp4"
        for name, label, image in ((original, "REAL", real), (f"copy{number:02d}.mp4", "FAKE", real),
                                   (f"square{number:02d}.mp4", "FAKE", square), (f"apart{number:02d}.mp4", "FAKE", apart)):
            cv2.imwrite(str(root / "faces_224" / f"{Path(name).stem}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
            rows.append((name, label, "" if label == "REAL" else original))
    pd.DataFrame({"videoname": [r[0] for r in rows], "original_width": 150, "original_height": 150,
                  "label": [r[1] for r in rows], "original": [r[2] for r in rows]}).to_csv(root / "metadata.csv", index=False)
    return root


def test_each_fake_is_measured_against_its_original_or_marked_unmeasurable(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    changes = fake_changes(read_faces_folder(root).crops, root, threads=2)
    assert len(changes) == 3 * ORIGINALS
    for number in range(ORIGINALS):
        assert changes[f"copy{number:02d}.mp4"] == 0.0
        assert changes[f"square{number:02d}.mp4"] == pytest.approx(1 / 16, abs=0.01)  # the square, give or take the blur
        assert changes[f"apart{number:02d}.mp4"] is None


def test_only_the_training_splits_near_copies_are_left_out(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_folder(tmp_path / "faces")
    chunks = sorted(set(read_faces_folder(root).crops["chunk"]))
    split = {"train_chunks": ",".join(map(str, chunks[:-2])), "val_chunks": str(chunks[-2]), "test_chunks": str(chunks[-1])}
    before = load_data(root, TrainConfig(**split))
    with caplog.at_level(logging.INFO):
        after = load_data(root, TrainConfig(**split, min_fake_change=0.005))
    train_before, train_after = set(before.splits["train"].crops["video"]), set(after.splits["train"].crops["video"])
    assert train_before - train_after == {video for video in train_before if video.startswith("copy")} != set()
    assert not any(video.startswith("copy") for video in after.splits["train"].videos["video"])
    for name in ("val", "test"):  # held-out figures stay comparable with every other run's
        assert set(after.splits[name].crops["video"]) == set(before.splits[name].crops["video"])
    originals = len(train_before) // 4
    assert sum(len(original.fakes) for original in after.pairing.originals) == 2 * originals
    assert (f"train split: left out {originals} of {3 * originals} paired fakes that change under 0.005 of their crop "
            f"(--min-fake-change); {originals} fakes not cut at their original's pixels cannot be measured and stay") in caplog.text


def test_the_threshold_is_a_fraction() -> None:
    with pytest.raises(ValueError, match="min_fake_change=1.5"):
        TrainConfig(min_fake_change=1.5)
