"""``--report``: one entry per video, every picture there, every fallback reason; nothing kept without it."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import cv2
import pandas as pd
import pytest

from dfdc_infer.config import InferenceConfig
from dfdc_infer.face_detection import create_detector
from dfdc_infer.models import Ensemble
from dfdc_infer.pipeline import VideoScorer
from dfdc_infer.run import run_submission
from dfdc_infer.report import ReportError


class Page(HTMLParser):
    """The entries (``section.video``) of the report: heading text, status line, image sources."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict] = []
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "section" and "video" in (attributes.get("class") or ""):
            self.entries.append({"class": attributes["class"], "title": "", "status": "", "images": []})
        elif self.entries and tag == "img":
            self.entries[-1]["images"].append(attributes["src"])
        elif self.entries and tag in ("h2", "p"):
            self._field = "title" if tag == "h2" else "status"

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h2", "p"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field and self.entries:
            self.entries[-1][self._field] += data


@pytest.fixture(scope="module")
def reported(sample_data: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], pd.DataFrame]:
    """A run with --report over the sample videos plus a missing, an undecodable and an outside name."""
    root = tmp_path_factory.mktemp("report")
    videos = root / "videos"
    shutil.copytree(sample_data / "test_videos", videos)
    (videos / "text.mp4").write_text("not a video\n")
    names = [*pd.read_csv(sample_data / "sample_submission.csv")["filename"], "missing.mp4", "text.mp4", "../escape.mp4"]
    sample = root / "sample_submission.csv"
    pd.DataFrame({"filename": names, "label": 0.5}).to_csv(sample, index=False)
    run_submission(InferenceConfig(), videos, sample, [checkpoint], root / "submission.csv", report=root / "report")
    return root / "report", names, pd.read_csv(root / "submission.csv")


def test_the_page_has_every_video_its_pictures_and_its_fallback_reasons(reported: tuple[Path, list[str], pd.DataFrame],
                                                                        sample_data: Path) -> None:
    folder, names, submission = reported
    page = Page()
    page.feed((folder / "index.html").read_text())
    titles = [entry["title"] for entry in page.entries]
    assert sorted(re.sub(r"^\S+ ", "", title) for title in titles) == sorted(names), "one entry per video of the sample submission"
    shown = [float(title.split()[0]) for title in titles]
    assert shown == sorted(shown, reverse=True), "highest label first"
    assert shown == sorted(round(label, 3) for label in submission["label"])[::-1]
    by_name = {re.sub(r"^\S+ ", "", entry["title"]): entry for entry in page.entries}
    assert by_name["missing.mp4"]["status"] == "fallback missing: file not found"
    assert by_name["../escape.mp4"]["status"] == "fallback outside: outside the videos folder"
    assert by_name["text.mp4"]["status"].startswith("fallback failed: pyav:")
    no_face = [name for name, frames in json.loads((sample_data / "faces.json").read_text()).items() if not any(frames)]
    assert by_name[no_face[0]]["status"] == "fallback no_face: no face detected"
    scored = [entry for entry in page.entries if "scored" in entry["class"].split()]
    assert len(scored) == 7 and all(entry["status"].startswith("scored: 3 frames") for entry in scored)
    for entry in page.entries:
        for source in entry["images"]:
            image = cv2.imread(str(folder / source))
            assert image is not None and image.shape[1] == 1200, f"{source} does not resolve to the contact sheet"
    assert all(len(entry["images"]) == 1 for entry in scored) and len(by_name[no_face[0]]["images"]) == 1
    assert by_name["missing.mp4"]["images"] == [] and by_name["text.mp4"]["images"] == []
    html = (folder / "index.html").read_text()
    assert "<style>" in html and "http" not in html, "inline CSS, nothing fetched from anywhere"
    assert html.count("<td>tf_efficientnet_b0@128</td>") == 7, "the per-model result of every scored video"


def test_no_report_keeps_nothing(sample_data: Path, checkpoint: Path) -> None:
    import torch

    config = InferenceConfig()
    scorer = VideoScorer(config, create_detector(config), Ensemble.load([checkpoint], torch.device("cpu")))
    results = list(scorer.score(sample_data / "test_videos", pd.read_csv(sample_data / "sample_submission.csv")["filename"]))
    assert len(results) == 8 and scorer.evidence is None


def test_an_unwritable_report_folder_is_one_line_before_scoring(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ReportError, match=f"cannot write the report folder {blocker / 'report'}"):
        run_submission(InferenceConfig(), sample_data / "test_videos", sample_data / "sample_submission.csv", [checkpoint],
                       tmp_path / "s.csv", report=blocker / "report")
    result = subprocess.run(
        [sys.executable, "-m", "dfdc_infer", "predict", "--videos", str(sample_data / "test_videos"), "--sample-submission",
         str(sample_data / "sample_submission.csv"), "--checkpoint", str(checkpoint), "--out", str(tmp_path / "s.csv"),
         "--report", str(blocker / "report")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: cannot write the report folder {blocker / 'report'}: Not a directory"]
    assert not (tmp_path / "s.csv").exists(), "refused before any video was scored"


def test_a_resumed_run_still_lists_every_video(reported: tuple[Path, list[str], pd.DataFrame], checkpoint: Path) -> None:
    folder, names, _ = reported
    root = folder.parent
    run_submission(InferenceConfig(), root / "videos", root / "sample_submission.csv", [checkpoint], root / "submission.csv",
                   report=root / "again")
    page = Page()
    page.feed((root / "again" / "index.html").read_text())
    statuses = {re.sub(r"^\S+ ", "", entry["title"]): entry["status"] for entry in page.entries}
    assert sorted(statuses) == sorted(names)
    assert statuses["missing.mp4"] == "missing, resumed from the progress file (no picture: done by an earlier run)"
    assert statuses["../escape.mp4"].startswith("outside, resumed")
