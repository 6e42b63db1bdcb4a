"""The CSV contract (every row, in order, fallbacks) and the configuration's checks and flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from dfdc_infer.config import InferenceConfig, add_config_arguments, config_from_args
from dfdc_infer.submission import SubmissionError, read_sample_submission, write_submission

ROOT = Path(__file__).resolve().parents[1]
"""The repository, whose README.md and .ci/run the documentation tests read."""


def test_submission_keeps_sample_order_and_fills_every_row(tmp_path: Path) -> None:
    names = ["c.mp4", "a.mp4", "b.mp4"]
    table = write_submission(tmp_path / "out" / "submission.csv", names, {"a.mp4": 0.9, "c.mp4": 0.1, "zzz.mp4": 0.7})
    written = pd.read_csv(tmp_path / "out" / "submission.csv")
    assert written["filename"].tolist() == names
    assert written["label"].tolist() == [0.1, 0.9, 0.5]
    assert table.equals(written)
    assert not (tmp_path / "out" / "submission.csv.tmp").exists()


def test_read_sample_submission_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(SubmissionError, match="sample submission not found: .*missing.csv"):
        read_sample_submission(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,label\na.mp4,0.5\n")
    with pytest.raises(SubmissionError, match="bad.csv: no 'filename' column"):
        read_sample_submission(bad)
    duplicated = tmp_path / "dup.csv"
    duplicated.write_text("filename,label\na.mp4,0.5\nb.mp4,0.5\na.mp4,0.5\n")
    with pytest.raises(SubmissionError, match=r"duplicated filenames, e.g. \['a.mp4'\]"):
        read_sample_submission(duplicated)
    good = tmp_path / "good.csv"
    good.write_text("filename,label\nb.mp4,0.5\na.mp4,0.5\n")
    assert read_sample_submission(good) == ["b.mp4", "a.mp4"]


def test_config_defaults_are_the_competitions() -> None:
    config = InferenceConfig()
    assert (config.frame_step, config.crop_margin, config.clip_min, config.clip_max) == (10, 1.3, 0.01, 0.99)
    assert (config.reader, config.detector, config.fallback_label, config.all_faces) == ("auto", "mtcnn", 0.5, False)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"frame_step": 0}, "frame_step must be >= 1"),
        ({"detector_scale": 1.5}, "detector_scale must be in"),
        ({"crop_margin": 0.4}, r"crop_margin must be in \[0.5, 4\]"),
        ({"clip_min": 0.5, "clip_max": 0.4}, "clip_min < clip_max"),
        ({"batch_size": 0}, "batch sizes"),
        ({"video_timeout": 0}, "video_timeout must be > 0 seconds"),
        ({"colour": "red"}, "unknown InferenceConfig fields"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        InferenceConfig().updated(changes)


def test_flags_map_onto_the_config_and_unset_flags_keep_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(["--frame-step", "5", "--no-fp16", "--detector-thresholds", "0.5", "0.6", "0.7", "--all-faces"])
    config = config_from_args(args)
    assert config == InferenceConfig(frame_step=5, fp16=False, detector_thresholds=(0.5, 0.6, 0.7), all_faces=True)
    assert config_from_args(parser.parse_args([])) == InferenceConfig()
    assert InferenceConfig.from_dict(config.to_dict()) == config


def test_readme_documents_every_setting_flag() -> None:
    from dataclasses import fields

    readme = (ROOT / "README.md").read_text()
    undocumented = [item.name for item in fields(InferenceConfig) if f"`--{item.name.replace('_', '-')}" not in readme]
    assert undocumented == []


def test_ci_runs_the_readme_test_command() -> None:
    readme_commands = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("python3 -m venv")]
    assert len(readme_commands) == 2, "the README has exactly two set-up commands"
    assert readme_commands[1].endswith("python -m pytest -q tests")
    assert readme_commands[1] in (ROOT / ".ci" / "run").read_text()


def test_readme_stays_a_users_guide_and_links_the_journal() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 350, "experiments belong in docs/journal.md, not the README"
    assert "docs/journal.md" in readme and (ROOT / "docs" / "journal.md").is_file()
