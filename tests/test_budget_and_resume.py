"""The 9-hour guard (driven by a fake clock, not real hours) and resuming an interrupted run."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer import run as run_module
from dfdc_infer.budget import BudgetGuard
from dfdc_infer.config import InferenceConfig
from dfdc_infer.face_detection import create_detector
from dfdc_infer.models import Ensemble, init_checkpoint
from dfdc_infer.pipeline import VideoScorer
from dfdc_infer.run import run_submission


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class TimedDetector:
    """The real detector, plus fake time: each call costs ``seconds_per_frame`` per frame."""

    def __init__(self, detector, clock: FakeClock, seconds_per_frame: float = 0.0, fail_after: int | None = None) -> None:
        self.detector, self.clock, self.seconds_per_frame, self.fail_after = detector, clock, seconds_per_frame, fail_after
        self.calls = 0

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt  # the run is killed here
        self.clock.now += self.seconds_per_frame * len(frames)
        return self.detector.detect(frames)


def test_guard_says_ok_slow_and_stop_from_the_projected_finish() -> None:
    clock = FakeClock()
    guard = BudgetGuard(budget_seconds=100, margin_seconds=10, min_videos=2, clock=clock)
    clock.now = 10
    assert guard.check(done=1, remaining=9) == "ok", "too few videos measured to judge"
    assert guard.check(done=2, remaining=8) == "ok"  # 5 s/video: 10 + 40 <= 90
    clock.now = 20
    assert guard.check(done=2, remaining=8) == "slow"  # 10 s/video: 20 + 80 > 90
    guard.restart_rate(done=2, in_flight=1)  # one video was already decoded under the old setting
    clock.now = 30
    assert guard.check(done=3, remaining=7) == "ok", "the video in flight is let through unmeasured"
    clock.now = 34
    assert guard.check(done=5, remaining=5) == "ok"  # 2 s/video since the cut took effect: 34 + 10 <= 90
    clock.now = 90
    assert guard.check(done=5, remaining=5) == "stop"


@pytest.fixture(scope="module")
def many_videos(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """24 videos: the sample videos with faces, linked under several names each."""
    folder = tmp_path_factory.mktemp("many")
    sources = sorted((sample_data / "test_videos").glob("*.mp4"))
    names = []
    for index in range(24):
        name = f"v{index:02d}.mp4"
        (folder / name).symlink_to(sources[index % len(sources)])
        names.append(name)
    return folder, names


def test_slow_run_cuts_frames_then_models_then_falls_back_in_time(
    many_videos: tuple[Path, list[str]], checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder, names = many_videos
    clock = FakeClock()
    # 15 frames per video, each detected (fake time is charged per detected frame); haar: quick
    config = InferenceConfig(frame_step=2, batch_size=16, min_frames_per_video=4, detector="haar", detect_every=1)
    second = init_checkpoint(tmp_path / "second.pt", "tf_efficientnet_b0", input_size=96, seed=5)
    ensemble = Ensemble.load([checkpoint, second], torch.device("cpu"))
    detector = TimedDetector(create_detector(config), clock, seconds_per_frame=0.5)  # 7.5 s per full video
    # judged after 2 videos per setting: one more video is detected ahead while the guard waits to judge a cut
    guard = BudgetGuard(budget_seconds=100, margin_seconds=10, min_videos=2, clock=clock)
    scorer = VideoScorer(config, detector, ensemble, guard)
    with caplog.at_level(logging.WARNING):
        results = list(scorer.score(folder, names))

    assert sorted(result.filename for result in results) == names, "every video gets exactly one result"
    decisions = [r.getMessage() for r in caplog.records if r.getMessage().startswith("budget:") and "finish at" not in r.getMessage()]
    assert decisions[0] == "budget: sampling 7 frames per video instead of 15"
    assert decisions[1] == "budget: sampling 4 frames per video instead of 7"
    assert decisions[2].startswith("budget: dropping the slowest model, tf_efficientnet_b0@")
    assert decisions[3].startswith("budget: out of time, ") and decisions[-1].endswith("videos get 0.50 without being scored")
    assert len(scorer.state.snapshot().ensemble.models) == 1 and len(ensemble.models) == 2, "the run's models; the loaded ensemble is left whole"
    late = [result for result in results if result.status == "out_of_time"]
    assert late and all(result.label == 0.5 for result in late)
    assert scorer.stats.counts["out_of_time"] == len(late)
    assert clock.now <= 90 + 7.5, "the deadline is overrun by at most one video"


def test_fast_run_is_left_alone(many_videos: tuple[Path, list[str]], checkpoint: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder, names = many_videos
    clock = FakeClock()
    config = InferenceConfig()
    scorer = VideoScorer(config, TimedDetector(create_detector(config), clock, 0.01), Ensemble.load([checkpoint], torch.device("cpu")),
                         BudgetGuard(budget_seconds=9 * 3600, margin_seconds=1800, clock=clock))
    with caplog.at_level(logging.WARNING):
        results = list(scorer.score(folder, names[:8]))
    assert not any("budget:" in record.getMessage() for record in caplog.records)
    assert [r.status for r in results].count("out_of_time") == 0 and len(results) == 8


def test_interrupted_run_resumes_and_gives_the_same_csv(
    sample_data: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    # detect_every=1: one detector call per video, so calls count the videos detected
    config = InferenceConfig(batch_size=1, prefetch_videos=1, decode_workers=1, detector="haar", detect_every=1)
    run_submission(config, videos, sample, [checkpoint], tmp_path / "reference.csv")

    out = tmp_path / "submission.csv"
    detectors: list[TimedDetector] = []

    def detector_factory(fail_after: int | None):
        def make(config, weights_dir=None):
            detectors.append(TimedDetector(create_detector(config, weights_dir), FakeClock(), fail_after=fail_after))
            return detectors[-1]
        return make

    monkeypatch.setattr(run_module, "create_detector", detector_factory(fail_after=3))
    with pytest.raises(KeyboardInterrupt):
        run_submission(config, videos, sample, [checkpoint], out)
    interrupted = pd.read_csv(out)
    assert len(interrupted) == 8, "even a killed run leaves a complete CSV (fallback labels for the rest)"
    progress_lines = (tmp_path / "submission.csv.progress").read_text().splitlines()
    assert progress_lines[0].startswith("# run ") and len(progress_lines) == 1 + 3

    with open(tmp_path / "submission.csv.progress", "a") as handle:
        handle.write("torn-line-without-an-end")  # a crash in the middle of a write
    monkeypatch.setattr(run_module, "create_detector", detector_factory(fail_after=None))
    with caplog.at_level(logging.INFO):
        run_submission(config, videos, sample, [checkpoint], out)
    assert "resuming: 3 of 8 videos already done" in caplog.text
    assert detectors[-1].calls == 8 - 3, "only the videos not yet done are detected again"
    assert out.read_bytes() == (tmp_path / "reference.csv").read_bytes()


def test_progress_of_another_run_is_ignored(sample_data: Path, checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    out = tmp_path / "submission.csv"
    run_submission(InferenceConfig(), videos, sample, [checkpoint], out)
    with caplog.at_level(logging.WARNING):
        stats = run_submission(InferenceConfig(frame_step=15), videos, sample, [checkpoint], out)
    assert "belongs to another run" in caplog.text
    assert stats.counts["scored"] == 7, "everything was scored again with the new settings"
    shutil.copyfile(out, tmp_path / "copy.csv")
    assert len(pd.read_csv(tmp_path / "copy.csv")) == 8
