"""End to end: every row, in order, real scores, and a documented fallback for every bad input."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.aggregation import video_probability
from dfdc_infer.config import InferenceConfig
from dfdc_infer.cropping import crop_frames
from dfdc_infer.face_detection import create_detector
from dfdc_infer.face_tracking import FaceTracker
from dfdc_infer.models import Ensemble
from dfdc_infer.run import run_submission
from dfdc_infer.video_reading import read_video
from dfdc_sample.generate import write_video

from conftest import portrait_frames


def no_face_videos(data: Path) -> set[str]:
    faces = json.loads((data / "faces.json").read_text())
    return {name for name, frames in faces.items() if not any(frames)}


def test_submission_has_every_row_in_order_with_real_scores(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "submission.csv"
    stats = run_submission(InferenceConfig(), sample_data / "test_videos", sample_data / "sample_submission.csv", [checkpoint], out)
    sample = pd.read_csv(sample_data / "sample_submission.csv")
    written = pd.read_csv(out)
    assert written["filename"].tolist() == sample["filename"].tolist()
    assert written["label"].between(0.01, 0.99).all()
    no_face = no_face_videos(sample_data)
    assert len(no_face) == 1
    assert stats.counts == {"scored": 7, "no_face": 1, "failed": 0, "missing": 0, "out_of_time": 0, "outside": 0, "timeout": 0}
    assert written.set_index("filename").loc[list(no_face), "label"].tolist() == [0.5]

    # A scored label is exactly the aggregate of real forward passes on that video's crops.
    name = next(n for n in written["filename"] if n not in no_face)
    config = InferenceConfig()
    sample_frames = read_video(sample_data / "test_videos" / name, config)
    ensemble = Ensemble.load([checkpoint], torch.device("cpu"))
    faces = FaceTracker(create_detector(config), config.detect_every).detect(sample_frames.frames, sample_frames.indices)
    crops, _ = crop_frames(sample_frames.frames, faces, ensemble.crop_size)
    expected = video_probability(ensemble.predict(crops))
    assert written.set_index("filename").loc[name, "label"] == pytest.approx(expected, abs=1e-6)


def test_batching_across_videos_does_not_change_labels(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Pooling crops of several videos into one batch must give the same labels as one by one."""
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    run_submission(InferenceConfig(batch_size=1, prefetch_videos=1, decode_workers=1), videos, sample, [checkpoint], tmp_path / "a.csv")
    run_submission(InferenceConfig(batch_size=64), videos, sample, [checkpoint], tmp_path / "b.csv")
    one, pooled = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert one["filename"].tolist() == pooled["filename"].tolist()
    np.testing.assert_allclose(one["label"], pooled["label"], atol=1e-5)


@pytest.fixture(scope="module")
def bad_inputs(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos plus every kind of bad input, and a sample submission naming them all."""
    root = tmp_path_factory.mktemp("bad")
    videos = root / "test_videos"
    shutil.copytree(sample_data / "test_videos", videos)
    good = sorted(path.name for path in videos.glob("*.mp4"))
    face_video = next(name for name in good if name not in no_face_videos(sample_data))
    whole = (videos / face_video).read_bytes()
    (videos / "zero_bytes.mp4").write_bytes(b"")
    (videos / "truncated.mp4").write_bytes(whole[: len(whole) * 9 // 10])  # the first keyframe is most of the file
    (videos / "text.mp4").write_text("not a video at all\n")
    first_frame = read_video(videos / face_video, InferenceConfig(frame_step=1000)).frames
    write_video(videos / "one_frame.mp4", first_frame)
    write_video(videos / "portrait.mp4", portrait_frames())
    names = ["zero_bytes.mp4", "truncated.mp4", "text.mp4", "one_frame.mp4", "portrait.mp4", "missing.mp4"] + good
    pd.DataFrame({"filename": names, "label": 0.5}).to_csv(root / "sample_submission.csv", index=False)
    return root


def test_every_bad_input_gets_a_row_and_a_logged_reason(
    bad_inputs: Path, checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "submission.csv"
    with caplog.at_level(logging.WARNING):
        stats = run_submission(InferenceConfig(), bad_inputs / "test_videos", bad_inputs / "sample_submission.csv", [checkpoint], out)
    written = pd.read_csv(out).set_index("filename")
    expected_order = pd.read_csv(bad_inputs / "sample_submission.csv")["filename"].tolist()
    assert written.index.tolist() == expected_order
    for name in ("zero_bytes.mp4", "text.mp4", "missing.mp4"):
        assert written.loc[name, "label"] == 0.5
    log = "\n".join(record.getMessage() for record in caplog.records)
    assert "zero_bytes.mp4: cannot decode (pyav: Invalid data found when processing input; decord:" in log
    assert "opencv: cannot open the file" in log
    assert "text.mp4: cannot decode" in log
    assert "missing.mp4: not found on disk -> 0.50" in log
    assert "truncated.mp4" not in log, "PyAV decodes what is there before the cut, as OpenCV does"
    # the truncated file still has decodable frames with a face, the 1-frame and portrait videos too
    for name in ("truncated.mp4", "one_frame.mp4", "portrait.mp4"):
        assert written.loc[name, "label"] != 0.5, f"{name} should have been scored"
    assert stats.counts == {"scored": 10, "no_face": 1, "failed": 2, "missing": 1, "out_of_time": 0, "outside": 0, "timeout": 0}


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dfdc_infer", *args], capture_output=True, text=True, timeout=300)


def test_cli_missing_sample_submission_is_one_line_and_exit_2(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    result = run_cli("predict", "--videos", str(sample_data / "test_videos"), "--sample-submission", str(tmp_path / "nope.csv"),
                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: sample submission not found: {tmp_path / 'nope.csv'}"
    assert "Traceback" not in result.stderr + result.stdout


def test_cli_missing_checkpoint_is_one_line_and_exit_2(sample_data: Path, tmp_path: Path) -> None:
    result = run_cli("predict", "--videos", str(sample_data / "test_videos"), "--sample-submission",
                     str(sample_data / "sample_submission.csv"), "--checkpoint", str(tmp_path / "gone.pt"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: checkpoint not found: {tmp_path / 'gone.pt'}"
    assert "Traceback" not in result.stderr


def test_cli_scores_a_folder_with_two_models(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.csv"
    result = run_cli("predict", "--videos", str(sample_data / "test_videos"), "--sample-submission",
                     str(sample_data / "sample_submission.csv"), "--checkpoint", str(checkpoint), "--checkpoint", str(checkpoint),
                     "--out", str(out), "--reader", "opencv", "--frames-per-video", "2")
    assert result.returncode == 0, result.stderr
    assert "8 videos in" in result.stderr and "scored 7, no face 1, failed 0, missing 0" in result.stderr
    assert len(pd.read_csv(out)) == 8
