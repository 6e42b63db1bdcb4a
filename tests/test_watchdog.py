"""The per-video watchdog: a reader or detector that never returns costs one video, never the run."""

from __future__ import annotations

import csv
import json
import logging
import shutil
import threading
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pytest

from dfdc_infer.config import InferenceConfig
from dfdc_infer.face_detection import DETECTORS
from dfdc_infer.run import run_submission
from dfdc_infer.video_reading import READERS, FrameSampling, OpenCVReader, SampledFrames, choose_reader, read_video
from dfdc_infer.watchdog import DaemonPool, VideoTimeout, WorkClock, call_with_timeout, wait_for
from dfdc_sample.generate import generate_dataset, write_video
from dfdc_tools.dry_run import DEMO_CHECKPOINT
from dfdc_train.config import ExtractConfig
from dfdc_train.crop_index import read_index
from dfdc_train.extract import extract

TIMEOUT = 2.0
"""Short for the test, yet far above what a good video takes here: OpenCV decodes 3 frames, the stand-in detector
answers at once and the demo model (MobileNetV3-small at 96 px) classifies 3 crops in about 10 ms."""

RELEASE = threading.Event()
"""Set after each test: the stuck calls then return, so no thread outlives the test module."""
STUCK_FILES: set[str] = set()
HANG_WIDTH = 320
"""The stuck detector hangs on frames of this width (it sees frames, not file names)."""


class StuckReader:
    """OpenCV's reader, except that it never returns on the files named in ``STUCK_FILES``."""

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        if path.name in STUCK_FILES:
            RELEASE.wait()
        return OpenCVReader().read(path, sampling)


class CentreDetector:
    """One face box in the middle of every frame, instantly; hangs on frames ``HANG_WIDTH`` wide."""

    def __init__(self, config: InferenceConfig, weights_dir: Path | None = None) -> None:
        pass

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        height, width = frames.shape[1:3]
        if width == HANG_WIDTH:
            RELEASE.wait()
        box = np.array([[width * 0.35, height * 0.25, width * 0.65, height * 0.75, 0.99]], dtype=np.float32)
        return [box.copy() for _ in frames]


@pytest.fixture(autouse=True)
def stuck_backends(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(READERS, "stuck-test", StuckReader)
    monkeypatch.setitem(DETECTORS, "centre-test", CentreDetector)
    RELEASE.clear()
    yield
    RELEASE.set()
    STUCK_FILES.clear()


@pytest.fixture(scope="module")
def videos(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample videos, five copies of one under stuck names, and one half as wide (the detector's hang)."""
    folder = tmp_path_factory.mktemp("watchdog") / "videos"
    shutil.copytree(sample_data / "test_videos", folder)
    first = sorted(folder.glob("*.mp4"))[0]
    for number in range(1, 5):
        shutil.copy(first, folder / f"stuck{number}.mp4")
    frames = read_video(first, InferenceConfig(frame_step=1, reader="opencv")).frames
    write_video(folder / "hang.mp4", np.stack([frame[::2, ::2] for frame in frames]))
    return folder


def run(videos: Path, names: list[str], tmp_path: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Score ``names`` with the stuck reader and the centre detector: (submission, status per name)."""
    sample = tmp_path / "sample_submission.csv"
    pd.DataFrame({"filename": names, "label": 0.5}).to_csv(sample, index=False)
    config = InferenceConfig(reader="stuck-test", detector="centre-test", video_timeout=TIMEOUT, batch_size=4)
    out = tmp_path / "submission.csv"
    run_submission(config, videos, sample, [DEMO_CHECKPOINT], out)
    with open(f"{out}.progress", newline="") as handle:
        statuses = {row[0]: row[2] for row in csv.reader(handle.read().splitlines()[1:])}
    return pd.read_csv(out), statuses


def good_names(videos: Path) -> list[str]:
    return sorted(path.name for path in videos.glob("*.mp4") if not path.name.startswith(("stuck", "hang")))


def test_a_reader_that_never_returns_costs_one_video(videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    STUCK_FILES.add("stuck1.mp4")
    good = good_names(videos)
    names = [*good[:3], "stuck1.mp4", *good[3:]]
    with caplog.at_level(logging.WARNING):
        written, statuses = run(videos, names, tmp_path)
    assert written["filename"].tolist() == names
    assert statuses == {**dict.fromkeys(good, "scored"), "stuck1.mp4": "timeout"}
    assert written.set_index("filename").loc["stuck1.mp4", "label"] == 0.5
    assert f"stuck1.mp4: timeout (decoding ran past {TIMEOUT:g} s) -> 0.50" in caplog.text
    assert "watchdog:" not in caplog.text, "one timeout does not switch the reader"


def test_a_detector_that_never_returns_costs_one_video(videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good = good_names(videos)
    names = [good[0], "hang.mp4", *good[1:]]
    with caplog.at_level(logging.WARNING):
        written, statuses = run(videos, names, tmp_path)
    assert written["filename"].tolist() == names
    assert statuses == {**dict.fromkeys(good, "scored"), "hang.mp4": "timeout"}
    assert f"hang.mp4: timeout (detection ran past {TIMEOUT:g} s) -> 0.50" in caplog.text


def test_three_timeouts_of_a_reader_move_the_run_to_the_next_one(videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    STUCK_FILES.update({"stuck1.mp4", "stuck2.mp4", "stuck3.mp4", "stuck4.mp4"})
    good = good_names(videos)
    names = ["stuck1.mp4", "stuck2.mp4", good[0], "stuck3.mp4", good[1], "stuck4.mp4", *good[2:]]
    with caplog.at_level(logging.WARNING):
        written, statuses = run(videos, names, tmp_path)
    assert written["filename"].tolist() == names
    after = choose_reader("pyav", "auto")
    assert f"watchdog: 3 videos timed out decoding with stuck-test; the rest of the run decodes with {after}" in caplog.text
    # stuck4 hangs only in the stuck reader: read by the next one, it is scored
    assert statuses == {**dict.fromkeys(good, "scored"), "stuck4.mp4": "scored", **dict.fromkeys(names[:2] + names[3:4], "timeout")}


def test_an_extraction_gives_up_on_a_stuck_reader_and_a_stuck_detector_and_a_rerun_retries_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = generate_dataset(tmp_path / "data", layout="train", videos=5, frames=20, seed=5)
    chunk = root / "dfdc_train_part_0"
    entries = json.loads((chunk / "metadata.json").read_text())
    fakes = {name: entry["original"] for name, entry in entries.items() if entry["label"] == "FAKE"}
    (stuck_fake, stuck), (hang, _) = sorted(fakes.items())  # a fake's original whose reader never returns, another fake
    STUCK_FILES.add(stuck)
    frames = read_video(chunk / hang, InferenceConfig(frame_step=1, reader="opencv")).frames
    write_video(chunk / hang, np.stack([frame[::2, ::2] for frame in frames]))  # its own boxes, on which the detector hangs
    config = ExtractConfig(crop_size=64, image_format="png",
                           inference=InferenceConfig(reader="stuck-test", detector="centre-test", video_timeout=TIMEOUT))
    with caplog.at_level(logging.INFO):
        summary = extract(root, tmp_path / "out", config)
    assert sorted(summary.timed_out) == sorted([f"dfdc_train_part_0/{stuck}", f"dfdc_train_part_0/{hang}"])
    assert f"dfdc_train_part_0/{stuck}: timeout (decoding ran past {TIMEOUT:g} s); not recorded, a rerun retries it" in caplog.messages
    assert f"dfdc_train_part_0/{hang}: timeout (detection ran past {TIMEOUT:g} s); not recorded, a rerun retries it" in caplog.messages
    assert summary.extracted == len(entries) - 2 and summary.own_boxes["original timed out"] == 1
    assert sorted(read_index(tmp_path / "out")[1]["video"]) == sorted(set(entries) - {stuck, hang}), "neither is recorded as done"
    assert read_index(tmp_path / "out")[1].set_index("video").loc[stuck_fake, "boxes_note"] == f"original timed out: {stuck}"
    assert "missing on disk 0, timed out 2" in summary.report()

    STUCK_FILES.clear()  # the reader reads it now; the detector still hangs on the other
    again = extract(root, tmp_path / "out", config)
    assert (again.extracted, again.already_done, again.timed_out) == (1, len(entries) - 2, [f"dfdc_train_part_0/{hang}"])
    assert stuck in set(read_index(tmp_path / "out")[1]["video"])


def test_waiting_counts_work_not_time_in_the_queue() -> None:
    """A video decoded long ago and waiting for the detect thread has spent only its decode time."""
    clock = WorkClock(decode_started=100.0, decode_ended=101.0)
    assert clock.spent(now=500.0) == 1.0 and clock.stage() == "decoding"
    clock.detect_started = 499.0
    assert clock.spent(now=500.0) == 2.0 and clock.stage() == "detection"
    assert WorkClock().spent(now=500.0) == 0.0, "queued, not started: no time spent"


def test_a_stuck_call_is_abandoned_and_the_pool_stays_usable() -> None:
    pool = DaemonPool(1, "test")
    stuck = pool.submit(RELEASE.wait)
    queued = pool.submit(lambda: "never run")
    clock = WorkClock(decode_started=0.0)  # started long ago: already past any timeout
    with pytest.raises(VideoTimeout, match="decoding ran past 1 s"):
        wait_for(stuck, clock, 1.0)
    pool.abandon()
    assert queued.cancelled()
    assert DaemonPool(1, "test").submit(lambda: 42).result(timeout=10) == 42
    with pytest.raises(VideoTimeout, match="classification ran past 0.1 s"):
        call_with_timeout(RELEASE.wait, 0.1)
    assert call_with_timeout(sum, 10.0, [1, 2]) == 3
