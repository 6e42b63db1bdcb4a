"""Training and scoring on a folder of ready face crops (Kaggle's deepfake-faces layout), on a small made-up folder.

What it proves without the real data: the layout is read as a crop index, a fake always lands in its original's
split, every kind of bad row ends in a one-line error or a counted skip, ``evaluate`` writes the figures it
prints, and the inference side cuts faces with the framing those crops have (the ``deepfake-faces`` preset,
chosen from a checkpoint's meta).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdc_infer.config import InferenceConfig, add_config_arguments, chosen_preset, config_from_args, preset_config
from dfdc_infer.cropping import DEEPFAKE_FACES_FRAMING, crop_face, square_crop_box
from dfdc_infer.models import checkpoint_presets, init_checkpoint, read_checkpoint, save_checkpoint, load_model
from dfdc_train import evaluate as evaluate_command
from dfdc_train.config import TrainConfig
from dfdc_train.evaluate import figures
from dfdc_train.faces_folder import group_chunk, read_faces_folder
from dfdc_train.metrics import clipped_logloss
from dfdc_train.train import load_data, main as train_main

ORIGINALS = 12
FAKES_PER_ORIGINAL = 2


def make_folder(root: Path, rows: list[tuple[str, str, str]] | None = None) -> Path:
    """A deepfake-faces folder of small noisy face-like crops: ``ORIGINALS`` REAL videos, each with two fakes."""
    rng = np.random.default_rng(0)
    if rows is None:
        rows = []
        for number in range(ORIGINALS):
            original = f"real{number:02d}.mp4"
            rows.append((original, "REAL", ""))
            rows += [(f"fake{number:02d}{k}.mp4", "FAKE", original) for k in range(FAKES_PER_ORIGINAL)]
    (root / "faces_224").mkdir(parents=True)
    for name, label, _ in rows:
        image = rng.integers(0, 255, (224, 224, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "faces_224" / (Path(name).stem + ".jpg")), image)
    table = pd.DataFrame({"videoname": [r[0] for r in rows], "original_width": 150, "original_height": 150,
                          "label": [r[1] for r in rows], "original": [r[2] for r in rows]})
    table.to_csv(root / "metadata.csv", index=False)
    return root


def test_a_fake_is_always_in_its_originals_chunk_and_the_chunks_are_stable(tmp_path: Path) -> None:
    folder = read_faces_folder(make_folder(tmp_path / "faces"))
    crops = folder.crops
    assert len(crops) == ORIGINALS * (1 + FAKES_PER_ORIGINAL) and folder.skipped == {}
    chunk_of = dict(zip(crops["video"], crops["chunk"]))
    fakes = crops[crops["label"] == "FAKE"]
    assert all(chunk_of[original] == chunk for original, chunk in zip(fakes["original"], fakes["chunk"]))
    assert crops["chunk"].between(0, 49).all()
    assert group_chunk("aanvfngndg.mp4") == group_chunk("aanvfngndg.mp4") == 28  # crc32: the same on every machine and run
    assert crops["path"].iloc[0] == "faces_224/real00.jpg" and folder.settings["preset"] == "deepfake-faces"


def test_splits_by_original_keep_every_fake_with_its_source(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    chunks = sorted(set(read_faces_folder(root).crops["chunk"]))
    config = TrainConfig(train_chunks=",".join(map(str, chunks[:-2])), val_chunks=str(chunks[-2]), test_chunks=str(chunks[-1]))
    data = load_data(root, config)
    sides = {name: set(split.crops["video"]) for name, split in data.splits.items()}
    for name, videos in sides.items():
        for fake, original in data.splits[name].crops.loc[data.splits[name].crops["label"] == "FAKE", ["video", "original"]].to_numpy():
            assert original in videos, f"{fake} in {name} without its original {original}"
    assert data.pairing.fakes_without_original == 0 and len(data.pairing.usable("pairs")) == len(data.splits["train"].crops) // 3


def run_train(folder: Path, out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = train_main([str(folder), str(out), "--arch", "test_efficientnet", "--input-size", "32", "--epochs", "1", "--workers", "0",
                       "--threads", "1", "--train-chunks", "0-27", "--val-chunks", "28-49", "--test-chunks", ""])
    return code, capsys.readouterr().err


def test_missing_metadata_and_bad_labels_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = make_folder(tmp_path / "faces")
    table = pd.read_csv(root / "metadata.csv", keep_default_na=False)
    table.loc[4, "label"] = "MAYBE"
    table.to_csv(root / "metadata.csv", index=False)
    code, err = run_train(root, tmp_path / "run", capsys)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "1 rows have a label other than REAL/FAKE, e.g. line 6 (fake010.mp4: 'MAYBE')" in err

    (root / "metadata.csv").unlink()
    code, err = train_main([str(root), str(tmp_path / "run"), "--layout", "deepfake-faces"]), capsys.readouterr().err
    assert code == 2 and "metadata.csv not found: a deepfake-faces folder holds metadata.csv and faces_224/" in err
    code, err = train_main([str(root), str(tmp_path / "run")]), capsys.readouterr().err  # auto: not a faces folder any more
    assert code == 2 and err == f"error: {root / 'index.csv'} not found: run python -m dfdc_train.extract first\n"


def test_missing_and_broken_images_are_skipped_and_counted_and_orphan_fakes_stay(tmp_path: Path,
                                                                                  caplog: pytest.LogCaptureFixture) -> None:
    root = make_folder(tmp_path / "faces")
    (root / "faces_224" / "fake000.jpg").unlink()
    whole = (root / "faces_224" / "fake010.jpg").read_bytes()
    (root / "faces_224" / "fake010.jpg").write_bytes(whole[: len(whole) // 2])  # cut short, as an interrupted copy
    (root / "faces_224" / "fake020.jpg").write_text("not an image")
    (root / "faces_224" / "real03.jpg").unlink()  # its two fakes lose their original
    with caplog.at_level(logging.INFO):
        folder = read_faces_folder(root)
    assert folder.skipped == {"image missing": 2, "JPEG cut short": 1, "not a JPEG or PNG": 1}
    assert len(folder.crops) == ORIGINALS * 3 - 4
    assert "skipped 2 rows, image missing" in caplog.text and "2 FAKE crops whose original has no crop here" in caplog.text
    data = load_data(root, TrainConfig(train_chunks="0-27", val_chunks="28-49", test_chunks=""))
    assert data.pairing.fakes_without_original == 2


def test_repeated_names_and_fakes_without_an_original_name_are_errors(tmp_path: Path) -> None:
    rows = [("a.mp4", "REAL", ""), ("b.mp4", "FAKE", "a.mp4"), ("b.mp4", "FAKE", "a.mp4")]
    with pytest.raises(ValueError, match=r"video b.mp4 appears more than once \(1 repeated names\)"):
        read_faces_folder(make_folder(tmp_path / "one", rows))
    with pytest.raises(ValueError, match="1 FAKE rows name no original, e.g. c.mp4"):
        read_faces_folder(make_folder(tmp_path / "two", [("a.mp4", "REAL", ""), ("c.mp4", "FAKE", "")]))


def test_balanced_logloss_is_the_mean_of_the_two_classes() -> None:
    labels = np.array([0, 0, 1, 1, 1, 1, 1, 1])
    scores = np.array([0.2, 0.6, 0.9, 0.8, 0.7, 0.999, 0.4, 0.95])
    result = figures(labels, scores)
    real, fake = clipped_logloss(labels[:2], scores[:2]), clipped_logloss(labels[2:], scores[2:])
    assert result.balanced_logloss == pytest.approx((real + fake) / 2)
    assert result.logloss == pytest.approx((2 * real + 6 * fake) / 8)
    assert result.auc == pytest.approx(11 / 12) and (result.real, result.fake) == (2, 6)


def test_evaluate_writes_one_row_per_readable_crop_and_prints_its_figures(tmp_path: Path, checkpoint: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    root = make_folder(tmp_path / "faces")
    (root / "faces_224" / "fake051.jpg").write_bytes(b"\xff\xd8 broken inside \xff\xd9")  # whole by its markers, undecodable
    out = tmp_path / "scores.csv"
    assert evaluate_command.main([str(checkpoint), str(root), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["videoname", "label", "p_fake"] and len(scores) == ORIGINALS * 3 - 1
    assert "fake051.mp4" not in set(scores["videoname"]) and ", 1 unreadable skipped" in printed
    expected = figures((scores["label"] == "FAKE").to_numpy(), scores["p_fake"].to_numpy())
    assert f"AUC {expected.auc:.4f}, logloss {expected.logloss:.4f}" in printed
    assert f"balanced logloss {expected.balanced_logloss:.4f}" in printed
    assert evaluate_command.main([str(checkpoint), str(root), "--chunks", "99"]) == 2
    assert capsys.readouterr().err == f"error: {root}: no crops to score in chunks 99\n"


def test_the_deepfake_faces_geometry_frames_a_face_as_those_crops_do() -> None:
    box = np.array([800.0, 400.0, 891.0, 511.0, 0.99])  # 91 x 111: an MTCNN box is taller than wide
    left, top, right, bottom = square_crop_box(box, 1920, 1080, 0.90, DEEPFAKE_FACES_FRAMING["drop"])
    side = right - left
    assert side == bottom - top == round(111 * 0.90)
    assert (top + bottom) / 2 - (400 + 511) / 2 == pytest.approx(0.043 * side, abs=0.6)
    assert square_crop_box(box, 1920, 1080, 1.3) == square_crop_box(box, 1920, 1080, 1.3, 0.0)  # the seed's square is unchanged
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[top:bottom, left:right] = 255
    crop = crop_face(frame, box, 64, 0.90, "deepfake-faces")
    assert crop.shape == (64, 64, 3) and crop.min() == 255  # exactly that region, resized
    assert preset_config("deepfake-faces") == InferenceConfig(crop_geometry="deepfake-faces", crop_margin=0.90, flip_crops=True)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return parser.parse_args(argv)


def test_a_checkpoint_trained_on_deepfake_faces_brings_its_preset(tmp_path: Path) -> None:
    plain = init_checkpoint(tmp_path / "plain.pt", "test_efficientnet", 32)
    model, spec = load_model(plain)
    framed = save_checkpoint(tmp_path / "framed.pt", model, type(spec)(spec.arch, spec.input_size, spec.mean, spec.std,
                                                                         {**spec.meta, "preset": "deepfake-faces"}))
    assert checkpoint_presets([plain, framed]) == [None, "deepfake-faces"]
    assert config_from_args(parse([]), trained_for=lambda: checkpoint_presets([framed])) == preset_config("deepfake-faces")
    assert config_from_args(parse(["--crop-margin", "1.0"]), trained_for=lambda: ["deepfake-faces"]).crop_margin == 1.0
    assert chosen_preset(parse(["--preset", "seed"]), lambda: pytest.fail("--preset given: no checkpoint is read")) == "seed"
    assert chosen_preset(parse([]), lambda: [None]) == "seed"
    with pytest.raises(ValueError, match=r"trained for different presets \(deepfake-faces, dfdc-1st\): pass --preset NAME"):
        chosen_preset(parse([]), lambda: ["deepfake-faces", "dfdc-1st", None])
    assert read_checkpoint(framed)[0].meta["preset"] == "deepfake-faces"


def test_evaluate_flips_crops_as_the_checkpoints_preset_does_unless_told(tmp_path: Path, checkpoint: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    model, spec = load_model(checkpoint)
    framed = save_checkpoint(tmp_path / "framed.pt", model, type(spec)(spec.arch, spec.input_size, spec.mean, spec.std,
                                                                         {**spec.meta, "preset": "deepfake-faces"}))
    flips: list[bool] = []
    monkeypatch.setattr(evaluate_command, "evaluate_folder", lambda *args: flips.append(args[-1]) or pytest.fail("stop"))
    root = make_folder(tmp_path / "faces")
    for argv in ([checkpoint, root], [framed, root], [framed, root, "--no-flip-crops"], [checkpoint, root, "--flip-crops"]):
        with pytest.raises(pytest.fail.Exception):
            evaluate_command.main([str(arg) for arg in argv])
    assert flips == [False, True, False, True]
