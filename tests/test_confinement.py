"""Inputs stay in their folders: sample-submission names in the videos folder, manifest entries and wheels in the dataset."""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import dfdc_infer
import dfdc_infer.manifest
from dfdc_infer.config import InferenceConfig
from dfdc_infer.kaggle_env import DatasetError, install_missing_wheels
from dfdc_infer.manifest import MANIFEST_NAME, PRODUCT, read_manifest, verify_manifest
from dfdc_infer.run import run_submission
from dfdc_infer.submission import outside_videos_folder

REPO = Path(__file__).resolve().parents[1]
ODD_NAMES = ["a,b.mp4", 'say "hi".mp4', "it's.mp4", "tab\there.mp4", "vidéo-日本.mp4", "x" * 196 + ".mp4", "-leading-dash.mp4"]
"""Awkward but legitimate file names: scored, and written back to the CSV exactly as given."""
SPECIAL = ["fifo.mp4", "folder.mp4", "loop.mp4", "zero.mp4", "urandom.mp4", "link-to-fifo.mp4"]
"""Things in the folder that are not regular files: never opened, 'not found on disk'."""


@pytest.mark.parametrize("name, outside", [
    ("../outside.mp4", True), ("./../test_videos/../outside.mp4", True), ("/abs/outside.mp4", True), ("sub/x.mp4", True),
    ("..\\outside.mp4", True), ("C:outside.mp4", True), ("c:\\v\\x.mp4", True), ("..", True),
    ("..foo.mp4", False), ("a..b.mp4", False), ("x.mp4", False), ("-x.mp4", False), (".hidden.mp4", False),
])
def test_a_name_is_a_file_of_the_folder_not_a_path(name: str, outside: bool) -> None:
    assert outside_videos_folder(name) is outside


@pytest.fixture(scope="module")
def folder(sample_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], str]:
    """(videos folder, sample-submission names, a video with a face) with every kind of name in it."""
    root = tmp_path_factory.mktemp("confined")
    videos = root / "test_videos"
    videos.mkdir()
    faces = json.loads((sample_data / "faces.json").read_text())
    face_video = sorted(name for name, frames in faces.items() if any(frames))[0]
    source = sample_data / "test_videos" / face_video
    shutil.copy(source, root / "outside.mp4")  # a valid face video next to the folder, not in it
    shutil.copy(source, videos / "good.mp4")
    for name in ODD_NAMES:
        shutil.copy(source, videos / name)
    linked = root / "elsewhere"
    linked.mkdir()
    shutil.copy(source, linked / "linked-target.mp4")
    (videos / "linked.mp4").symlink_to(linked / "linked-target.mp4")  # a user's linked dataset: followed
    os.mkfifo(videos / "fifo.mp4")
    (videos / "folder.mp4").mkdir()
    (videos / "loop.mp4").symlink_to(videos / "loop.mp4")
    (videos / "zero.mp4").symlink_to("/dev/zero")
    (videos / "urandom.mp4").symlink_to("/dev/urandom")
    (videos / "link-to-fifo.mp4").symlink_to(videos / "fifo.mp4")
    outside = ["../outside.mp4", str(root / "outside.mp4"), "./../test_videos/../outside.mp4"]
    names = ["good.mp4", *outside, *SPECIAL, "linked.mp4", *ODD_NAMES]
    return videos, names, face_video


def test_names_outside_the_folder_special_files_and_odd_names(folder: tuple[Path, list[str], str], checkpoint: Path, tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    videos, names, _ = folder
    sample = tmp_path / "sample_submission.csv"
    pd.DataFrame({"filename": names, "label": 0.5}).to_csv(sample, index=False)
    out = tmp_path / "submission.csv"
    with caplog.at_level(logging.WARNING):
        stats = run_submission(InferenceConfig(frame_step=15), videos, sample, [checkpoint], out)
    written = pd.read_csv(out, keep_default_na=False)
    assert written["filename"].tolist() == names, "every name written back intact, in order"
    with open(f"{out}.progress", newline="") as handle:
        statuses = {row[0]: row[2] for row in csv.reader(handle.read().splitlines()[1:])}
    outside = names[1:4]
    assert {name: statuses[name] for name in outside} == dict.fromkeys(outside, "outside")
    assert {name: statuses[name] for name in SPECIAL} == dict.fromkeys(SPECIAL, "missing")
    legitimate = ["good.mp4", "linked.mp4", *ODD_NAMES]
    assert {name: statuses[name] for name in legitimate} == dict.fromkeys(legitimate, "scored")
    labels = written.set_index("filename")["label"]
    assert (labels[outside] == 0.5).all() and (labels[SPECIAL] == 0.5).all()
    assert labels["linked.mp4"] == labels["good.mp4"] == labels[ODD_NAMES[0]], "same video, same score"
    for name in outside:
        assert f"{name}: outside the videos folder, not read -> 0.50" in caplog.text
    for name in SPECIAL:
        assert f"{name}: not found on disk -> 0.50" in caplog.text
    assert stats.counts["outside"] == 3 and stats.counts["missing"] == len(SPECIAL)


def fake_dataset(root: Path, files: dict[str, dict], **extra: object) -> Path:
    """A dataset folder whose manifest lists ``files`` (and ``extra`` keys), with dfdc_infer beside it for the kernel."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copytree(Path(dfdc_infer.__file__).parent, root / "dfdc_infer", ignore=shutil.ignore_patterns("__pycache__"))
    (root / MANIFEST_NAME).write_text(json.dumps({"product": PRODUCT, "files": files, **extra}))
    return root


@pytest.mark.parametrize("entry", ["../outside.bin", "/etc/hostname", "sub/../../outside.bin", "link-out/x.bin", "C:\\x.bin"])
def test_a_manifest_whose_entries_leave_the_dataset_is_refused_before_any_is_read(
    entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "outside.bin").write_bytes(b"secret")
    dataset = fake_dataset(tmp_path / "dataset", {"inside.bin": {"bytes": 1, "sha256": "0"}, entry: {"bytes": 6, "sha256": "0"}})
    (dataset / "inside.bin").write_bytes(b"x")
    (dataset / "link-out").symlink_to(tmp_path)
    opened: list[Path] = []
    monkeypatch.setattr(dfdc_infer.manifest, "sha256_file", lambda path: opened.append(path) or "0")
    with pytest.raises(ValueError, match=r"refused, entries leave the dataset folder: " + repr(entry).replace("\\", "\\\\")):
        verify_manifest(dataset)
    assert opened == [], "nothing is hashed (read) once one entry leaves"


def test_models_detector_and_wheels_must_stay_inside_too(tmp_path: Path) -> None:
    extras = ({"ensemble": [{"file": "../model.pt"}]}, {"detector": {"weights_dir": "/tmp"}}, {"wheels": {"timm": "../timm.whl"}})
    for number, extra in enumerate(extras):
        dataset = fake_dataset(tmp_path / f"dataset{number}", {}, **extra)
        with pytest.raises(ValueError, match="entries leave the dataset folder"):
            read_manifest(dataset)


def test_wheels_install_only_from_the_datasets_own_wheels_folder(tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "other").mkdir()
    for wheel in ("other/timm-1.0-py3-none-any.whl", "wheels/../other/timm-1.0-py3-none-any.whl", "wheels/sub/timm.whl", "timm.whl"):
        with pytest.raises(DatasetError, match="refused: the manifest's wheels must be files of the dataset's wheels/"):
            install_missing_wheels(tmp_path, {"wheels": {"numpy": "wheels/ok.whl", "dfdc_no_such_module": wheel}})


def test_the_kernel_refuses_a_manifest_leaving_its_folder_in_one_line(tmp_path: Path) -> None:
    dataset = fake_dataset(tmp_path / "dataset", {"../../etc/passwd": {"bytes": 1, "sha256": "0"}})
    result = subprocess.run(
        [sys.executable, str(REPO / "kernel" / "dfdc_kernel.py"), "--dataset", str(dataset), "--videos", str(tmp_path),
         "--sample-submission", str(tmp_path / "s.csv"), "--out", str(tmp_path / "out.csv")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={key: value for key, value in os.environ.items() if key != "PYTHONPATH"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {dataset / MANIFEST_NAME}: refused, entries leave the dataset folder: '../../etc/passwd'")
    assert "Traceback" not in result.stderr
