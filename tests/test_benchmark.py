"""The timing benchmark writes a complete report and chart (figures themselves are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from dfdc_sample.benchmark import main


def test_benchmark_reports_every_stage_ratio_projection_and_memory(sample_data: Path, checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench"
    code = main(["--videos", str(sample_data / "test_videos"), "--count", "3", "--checkpoint", str(checkpoint),
                 "--repeats", "1", "--memory", "2,4", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["seconds_per_video"]) == {"ffmpeg_decode_floor", "opencv_grab_retrieve", "decode_decord", "detect", "classify"}
    assert all(value > 0 for value in report["seconds_per_video"].values())
    assert report["videos"]["count"] == 3 and report["ensemble"] == ["tf_efficientnet_b0@128"]
    assert report["ratios"]["end_to_end_over_our_decode"] == report["end_to_end_seconds_per_video"] / report["seconds_per_video"]["decode_decord"]
    projection = report["projection"]
    assert projection["hours"] == report["end_to_end_seconds_per_video"] * 4000 / 3600
    assert projection["budget_hours"] == 8.5 and projection["fits"] == (projection["hours"] <= 8.5)
    assert set(report["peak_memory_mb"]) == {"2", "4"} and all(mb > 100 for mb in report["peak_memory_mb"].values())
    assert report["decode_seconds_per_video_by_reader"]["decord"] == report["seconds_per_video"]["decode_decord"]
    assert set(report["decode_seconds_per_video_by_reader"]) == {"decord", "opencv"}, "nvdec needs CUDA"
    assert report["gpu_idle_share"] is None, "no GPU here: no idle share to report"
    assert (out / "stages.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_benchmark_on_an_empty_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["--videos", str(tmp_path / "empty"), "--memory", "", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no .mp4 files in {tmp_path / 'empty'}"
