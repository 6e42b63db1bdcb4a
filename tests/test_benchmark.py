"""The timing benchmark writes a complete report and chart (figures themselves are not asserted)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dfdc_infer.pipeline import Span
from dfdc_tools.benchmark_inference import busy_share, main


def test_benchmark_reports_every_stage_goal_ratio_projection_and_memory(
    sample_data: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "bench"
    code = main(["--videos", str(sample_data / "test_videos"), "--count", "3", "--checkpoint", str(checkpoint),
                 "--repeats", "1", "--e2e-videos", "5", "--memory", "2,4", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    seconds = report["seconds_per_video"]
    assert set(seconds) == {"ffmpeg_decode_floor", "opencv_grab_retrieve", "decode_pyav", "detect", "classify"}
    assert all(value > 0 for value in seconds.values())
    assert report["videos"]["count"] == 3 and report["videos"]["end_to_end_count"] == 5
    assert report["ensemble"] == ["tf_efficientnet_b0@128"]
    by_reader = report["decode_seconds_per_video_by_reader"]
    cuda = torch.cuda.is_available()
    cpu_readers = {"decord", "opencv", "pyav"}
    assert cpu_readers <= set(by_reader) <= cpu_readers | ({"nvdec"} if cuda else set()), "nvdec runs only with CUDA"
    assert report["readers"]["default_cpu"] == "pyav"
    assert report["readers"]["used"] == ("nvdec" if "nvdec" in by_reader else "pyav"), "auto: the GPU decoder where it runs"
    assert by_reader[report["readers"]["fastest"]] == min(by_reader.values())

    e2e = report["end_to_end_seconds_per_video"]
    assert set(report["end_to_end_seconds_per_video_by_detection"]) == {"configured", "detect_every_frame"}
    assert report["end_to_end_seconds_per_video_by_detection"]["configured"] == e2e
    ratios, goals = report["ratios"], report["goals"]
    assert ratios["end_to_end_over_decode_plus_classify"] == pytest.approx(e2e / (min(by_reader.values()) + seconds["classify"]))
    assert ratios["default_cpu_reader_over_opencv_loop"] == pytest.approx(by_reader["pyav"] / by_reader["opencv"])
    assert {name: goal["target"] for name, goal in goals.items()} == {
        "end_to_end_over_decode_plus_classify": 1.2, "default_cpu_reader_over_opencv_loop": 1.0}
    assert all(goal["met"] == (goal["ratio"] <= goal["target"]) for goal in goals.values())
    assert 0 < report["detected_frame_share"] <= 1
    assert {stage for stage, _, _ in report["timeline"]} == {"decode", "detect", "crop", "classify"}
    assert all(0 <= start <= end for _, start, end in report["timeline"])

    projection = report["projection"]
    assert projection["hours"] == e2e * 4000 / 3600
    assert projection["budget_hours"] == 8.5 and projection["fits"] == (projection["hours"] <= 8.5)
    assert set(report["peak_memory_mb"]) == {"2", "4"} and all(mb > 100 for mb in report["peak_memory_mb"].values())
    if cuda:
        assert 0 <= report["gpu_idle_share"] <= 1
    else:
        assert report["gpu_idle_share"] is None, "no GPU: no idle share to report"
    assert (out / "stages.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "goal end_to_end_over_decode_plus_classify: " in printed and "goal default_cpu_reader_over_opencv_loop: " in printed


def test_busy_share_is_the_union_of_the_stages_spans() -> None:
    timeline = [Span("detect", 0.0, 2.0), Span("classify", 1.0, 3.0), Span("decode", 3.0, 9.0), Span("detect", 5.0, 6.0)]
    assert busy_share(timeline, ("detect", "classify"), 10.0) == pytest.approx(0.4), "0-3 s and 5-6 s"
    assert busy_share([], ("detect",), 10.0) == 0.0


def test_benchmark_on_an_empty_folder_is_a_clear_error(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["--videos", str(tmp_path / "empty"), "--memory", "", "--out", str(tmp_path / "b")]) == 2
    assert capsys.readouterr().err.strip() == f"error: no .mp4 files in {tmp_path / 'empty'}"
