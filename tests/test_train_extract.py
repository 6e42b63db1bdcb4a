"""Face extraction: crops identical to the kernel's, the index, resuming, sharding, deleting, bad input."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dfdc_infer.config import InferenceConfig
from dfdc_infer.cropping import crop_face, select_faces
from dfdc_infer.face_detection import create_detector
from dfdc_infer.video_reading import read_video
from dfdc_sample.generate import generate_dataset
from dfdc_train.config import ExtractConfig
from dfdc_train.crop_index import CROP_COLUMNS, DoneList, read_index
from dfdc_train.extract import extract, main

CONFIG = ExtractConfig(crop_size=64, image_format="png", inference=InferenceConfig(frame_step=10))


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 videos of 20 frames in 2 chunks (2 sampled frames each); one REAL has no face, one has two."""
    return generate_dataset(tmp_path_factory.mktemp("train") / "data", layout="train", chunks=2, videos=8, frames=20, seed=5)


@pytest.fixture
def root(pristine: Path, tmp_path: Path) -> Path:
    """A private copy each test may break."""
    return Path(shutil.copytree(pristine, tmp_path / "data"))


@pytest.fixture(scope="module")
def extracted(pristine: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("crops")
    extract(pristine, out, CONFIG)
    return out


def metadata(root: Path, chunk: int) -> dict:
    return json.loads((root / f"dfdc_train_part_{chunk}" / "metadata.json").read_text())


def test_index_has_a_row_per_crop_with_labels_boxes_and_files(pristine: Path, extracted: Path) -> None:
    crops, videos = read_index(extracted)
    assert list(crops.columns) == CROP_COLUMNS
    every = {**metadata(pristine, 0), **metadata(pristine, 1)}
    assert sorted(videos["video"]) == sorted(every)
    assert videos.set_index("video")["status"].value_counts().to_dict() == {"ok": 7, "no_face": 1}
    assert set(crops["frame"]) == {0, 10} and set(crops["face"]) == {0}  # largest face only, like the kernel
    for row in crops.itertuples():
        assert row.label == every[row.video]["label"] and row.original == every[row.video]["original"]
        assert row.path == f"crops/dfdc_train_part_{row.chunk}/{Path(row.video).stem}/{row.frame:05d}_0.png"
        assert (extracted / row.path).is_file()
        assert row.x1 < row.x2 and row.y1 < row.y2 and 0.9 < row.score <= 1
        assert row.crop_x2 - row.crop_x1 == row.crop_y2 - row.crop_y1  # square
    assert (videos.set_index("video")["crops"] == crops.groupby("video").size().reindex(videos["video"], fill_value=0).to_numpy()).all()


def test_crops_are_the_kernels_crops(pristine: Path, extracted: Path) -> None:
    crops, _ = read_index(extracted)
    row = crops.iloc[0]
    video = pristine / f"dfdc_train_part_{row['chunk']}" / row["video"]
    sample = read_video(video, CONFIG.inference)
    found = create_detector(CONFIG.inference).detect(sample.frames)
    position = list(sample.indices).index(row["frame"])
    expected = crop_face(sample.frames[position], select_faces(found[position])[0], 64, 1.3)
    saved = cv2.cvtColor(cv2.imread(str(extracted / row["path"])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(saved, expected)


def test_a_second_run_skips_everything_and_a_torn_record_is_redone(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = extract(root, out, CONFIG)
    assert (first.extracted, first.already_done, first.crops) == (8, 0, 14)
    again = extract(root, out, CONFIG)
    assert (again.extracted, again.already_done, again.crops) == (0, 8, 0)
    done = out / "progress" / "dfdc_train_part_1.jsonl"
    lines = done.read_text().splitlines()
    done.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])  # a crash in the middle of the last write
    last = json.loads(lines[-1])["video"]
    repaired = extract(root, out, CONFIG)
    assert (repaired.extracted, repaired.already_done) == (1, 7)
    assert set(DoneList(out, "dfdc_train_part_1").load()) == set(metadata(root, 1))
    assert done.read_text().splitlines()[-1].startswith(f'{{"video": "{last}"')
    assert len(read_index(out)[1]) == 8


def test_shard_takes_chunks_by_number_modulo_n(root: Path, tmp_path: Path) -> None:
    summary = extract(root, tmp_path / "out", replace(CONFIG, shard=(1, 2)))
    assert summary.extracted == len(metadata(root, 1))
    assert set(read_index(tmp_path / "out")[1]["chunk"]) == {1}


def test_delete_videos_removes_a_chunks_videos_once_extracted(root: Path, tmp_path: Path) -> None:
    summary = extract(root, tmp_path / "out", replace(CONFIG, delete_videos=True, chunks="0"))
    assert summary.deleted == len(metadata(root, 0)) and not list((root / "dfdc_train_part_0").glob("*.mp4"))
    assert list((root / "dfdc_train_part_1").glob("*.mp4"))  # other chunks untouched
    rerun = extract(root, tmp_path / "out", replace(CONFIG, chunks="0"))
    assert (rerun.extracted, rerun.already_done, rerun.missing) == (0, len(metadata(root, 0)), [])


def test_missing_and_corrupt_videos_are_skipped_logged_and_counted(root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    entries = metadata(root, 0)
    entries["ghost.mp4"] = {"label": "REAL", "split": "train", "original": None}
    entries["broken.mp4"] = {"label": "REAL", "split": "train", "original": None}
    (root / "dfdc_train_part_0" / "metadata.json").write_text(json.dumps(entries))
    (root / "dfdc_train_part_0" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    with caplog.at_level(logging.WARNING):
        summary = extract(root, tmp_path / "out", CONFIG)
    assert summary.missing == ["dfdc_train_part_0/ghost.mp4"]
    [(reason, count)] = summary.failures.items()
    assert count == 1 and reason.startswith("unreadable (decord:") and "opencv:" in reason
    messages = [record.getMessage() for record in caplog.records]
    assert "dfdc_train_part_0/ghost.mp4: listed in metadata.json but not on disk; skipped (a rerun retries it)" in messages
    assert any(m.startswith("dfdc_train_part_0/broken.mp4: unreadable (decord:") and m.endswith("recorded as failed") for m in messages)
    report = summary.report()
    assert "failed 1, missing on disk 1" in report and "ghost.mp4" in report and "failed x1: unreadable" in report
    videos = read_index(tmp_path / "out")[1].set_index("video")
    assert videos.loc["broken.mp4", "status"] == "failed" and "ghost.mp4" not in videos.index
    assert extract(root, tmp_path / "out", CONFIG).missing == ["dfdc_train_part_0/ghost.mp4"]  # retried, the broken one is not


def test_cli_summary_and_one_line_errors(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    assert main([str(root), str(out), "--frame-step", "10", "--crop-size", "64", "--chunks", "1"]) == 0
    assert capsys.readouterr().out.startswith(f"extracted {len(metadata(root, 1))} videos -> ")
    assert (out / "crops" / "dfdc_train_part_1").is_dir() and not (out / "crops" / "dfdc_train_part_0").exists()

    def error(*args: str) -> str:
        assert main([*args]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Traceback" not in err[0]
        return err[0]

    assert error(str(root), str(out), "--frame-step", "10", "--crop-size", "96") == (
        f"error: {out} holds crops made with other settings (crop_size 64 -> 96); use a new output folder")
    assert error(str(root), str(out), "--shard", "2/2") == "error: bad shard '2/2': expected k/N with 0 <= k < N, e.g. 0/4"
    assert error(str(root), str(out), "--chunks", "0-5") == f"error: chunks 2-5 asked for but not in {root}"
    assert error(str(tmp_path / "nowhere"), str(out)) == f"error: dataset folder not found: {tmp_path / 'nowhere'}"
    (root / "dfdc_train_part_1" / "metadata.json").unlink()
    assert error(str(root), str(tmp_path / "other")) == (
        f"error: {root / 'dfdc_train_part_1' / 'metadata.json'} not found: every DFDC chunk folder needs its metadata.json")
    assert not (tmp_path / "other").exists()  # refused before any work


def test_metadata_with_a_bad_label_or_a_fake_without_original_is_refused(root: Path, tmp_path: Path) -> None:
    path = root / "dfdc_train_part_0" / "metadata.json"
    path.write_text(json.dumps({"a.mp4": {"label": "fake"}}))
    with pytest.raises(ValueError, match="a.mp4 has label 'fake', expected REAL or FAKE"):
        extract(root, tmp_path / "out", CONFIG)
    path.write_text(json.dumps({"a.mp4": {"label": "FAKE", "original": None}}))
    with pytest.raises(ValueError, match="FAKE video a.mp4 names no original"):
        extract(root, tmp_path / "out", CONFIG)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="metadata.json: not valid JSON"):
        extract(root, tmp_path / "out", CONFIG)


def test_index_tables_are_plain_csv(extracted: Path) -> None:
    table = pd.read_csv(extracted / "index.csv")
    assert len(table) == 14 and table["path"].str.endswith(".png").all()
    assert json.loads((extracted / "extract.json").read_text())["crop_margin"] == 1.3
