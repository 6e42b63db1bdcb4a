"""GPU acceptance suite: every CUDA path for real, on generated 1080p, 300-frame videos.

    python -m pytest -m gpu tests        # on any machine with CUDA (see README, "GPU acceptance suite")

The rest of the test suite checks the GPU code paths with CPU stand-ins; this file runs them on the
device: the nvdec reader (its decoder reuse, parallel sessions and its self-check against decord),
MTCNN and face tracking on CUDA frames, the fp16 ensemble, the whole pipeline, and a short
benchmark whose report gives videos per second and the share of time the GPU sits idle (it prints
them; speed targets are the benchmark's to judge, not a test's). Without CUDA every test here
skips. A machine with CUDA but without PyNvVideoCodec fails the nvdec tests, on purpose: this suite
is what says the GPU path works.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.config import InferenceConfig
from dfdc_infer.cropping import crop_frames
from dfdc_infer.face_detection import create_detector
from dfdc_infer.face_tracking import FaceTracker, box_iou
from dfdc_infer.models import Ensemble
from dfdc_infer.run import run_submission
from dfdc_infer.video_reading import FrameSampling, choose_reader, create_reader, frames_to_numpy, gpu_reader_mismatch
from dfdc_sample.benchmark import main as benchmark
from dfdc_sample.generate import generate_dataset

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (GPU acceptance suite)")]

CONFIG = InferenceConfig(frames_per_video=32)
"""The throughput goal's setting: 32 frames sampled from each 300-frame video."""


@pytest.fixture(scope="module")
def hd_videos(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> Path:
    """4 generated DFDC-like videos, 1920x1080, 300 frames: one without a face, one with two."""
    return generate_dataset(tmp_path_factory.mktemp("hd") / "data", videos=4, width=1920, height=1080, frames=300, seed=5,
                            identities=pinned_identities)


def face_videos(data: Path) -> list[Path]:
    faces = json.loads((data / "faces.json").read_text())
    return [data / "test_videos" / name for name, frames in sorted(faces.items()) if any(frames)]


def test_nvdec_is_chosen_and_passes_its_self_check_against_decord(hd_videos: Path) -> None:
    choose_reader.cache_clear()
    assert choose_reader("auto") == "nvdec", "CUDA is here, so auto must decode on the GPU (is PyNvVideoCodec installed?)"
    path = face_videos(hd_videos)[0]
    sample = create_reader("nvdec").read(path, FrameSampling.of(CONFIG))
    assert sample.frames.is_cuda and sample.frames.dtype == torch.uint8
    assert tuple(sample.frames.shape) == (32, 1080, 1920, 3) and sample.total_frames == 300
    cpu = create_reader("pyav").read(path, FrameSampling.of(CONFIG))
    assert np.array_equal(sample.indices, cpu.indices)
    assert np.abs(frames_to_numpy(sample.frames).astype(np.int16) - cpu.frames).mean() < 10, "YUV->RGB matrices may differ a little"
    assert gpu_reader_mismatch(path, CONFIG) is None


def test_nvdec_reuses_its_decoder_and_parallel_sessions_give_the_same_frames(hd_videos: Path) -> None:
    paths = sorted((hd_videos / "test_videos").glob("*.mp4"))
    reader, sampling = create_reader("nvdec"), FrameSampling.of(CONFIG)
    one_by_one = [reader.read(path, sampling).frames for path in paths]  # one thread, one decoder reconfigured
    again = reader.read(paths[0], sampling).frames
    assert torch.equal(again, one_by_one[0]), "a reused decoder gives the same frames"
    with ThreadPoolExecutor(len(paths)) as pool:  # one NVDEC session per thread
        parallel = list(pool.map(lambda path: reader.read(path, sampling).frames, paths))
    assert all(torch.equal(a, b) for a, b in zip(parallel, one_by_one))


def test_mtcnn_and_face_tracking_on_cuda_find_what_they_find_on_the_cpu(hd_videos: Path) -> None:
    path = face_videos(hd_videos)[0]
    frames = create_reader("nvdec").read(path, FrameSampling.of(CONFIG))
    on_gpu, on_cpu = create_detector(InferenceConfig(device="cuda")), create_detector(InferenceConfig(device="cpu"))
    gpu_boxes, cpu_boxes = on_gpu.detect(frames.frames), on_cpu.detect(frames_to_numpy(frames.frames))
    assert [len(found) for found in gpu_boxes] == [len(found) for found in cpu_boxes]
    assert sum(len(found) for found in gpu_boxes) >= len(gpu_boxes), "a face in every frame"
    for mine, theirs in zip(gpu_boxes, cpu_boxes):
        assert np.abs(mine[:, :4] - theirs[:, :4]).max() < 4.0
    tracker = FaceTracker(on_gpu, CONFIG.detect_every)
    tracked = tracker.detect(frames.frames, frames.indices)
    assert tracker.detected_frames < len(frames.indices), "O-Net confirmation ran on CUDA frames and carried faces"
    for mine, full in zip(tracked, gpu_boxes):
        assert len(mine) >= min(len(full), 1), "no face lost"
        if len(mine):
            assert box_iou(mine[:, :4], full[:, :4]).max(axis=1).min() >= 0.8, "carried boxes sit where detection puts them"


def test_fp16_ensemble_on_cuda_matches_fp32_on_the_cpu(hd_videos: Path, checkpoint: Path) -> None:
    sample = create_reader("pyav").read(face_videos(hd_videos)[0], FrameSampling.of(CONFIG))
    gpu = Ensemble.load([checkpoint], torch.device("cuda"), fp16=True)
    cpu = Ensemble.load([checkpoint], torch.device("cpu"), fp16=False)
    crops, _ = crop_frames(sample.frames, create_detector(InferenceConfig(device="cpu")).detect(sample.frames), gpu.crop_size)
    assert len(crops) >= 16
    assert np.abs(gpu.predict(crops) - cpu.predict(crops)).max() < 5e-3


def test_the_whole_pipeline_on_cuda_scores_like_the_cpu(
    hd_videos: Path, checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    choose_reader.cache_clear()
    videos, sample = hd_videos / "test_videos", hd_videos / "sample_submission.csv"
    with caplog.at_level(logging.INFO):
        stats = run_submission(CONFIG, videos, sample, [checkpoint], tmp_path / "gpu.csv")
    assert stats.counts == {"scored": 3, "no_face": 1, "failed": 0, "missing": 0, "out_of_time": 0}
    assert any("nvdec check on" in record.message for record in caplog.records)
    assert not any("GPU decode off" in record.message for record in caplog.records)
    run_submission(CONFIG.updated({"device": "cpu", "reader": "pyav"}), videos, sample, [checkpoint], tmp_path / "cpu.csv")
    gpu, cpu = pd.read_csv(tmp_path / "gpu.csv"), pd.read_csv(tmp_path / "cpu.csv")
    assert gpu["filename"].tolist() == cpu["filename"].tolist()
    assert np.abs(gpu["label"] - cpu["label"]).max() < 0.02


def test_short_benchmark_reports_videos_per_second_and_the_gpu_idle_share(
    hd_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The throughput goal's run: 1080p, 300 frames, 32 sampled, one B0; NVDEC sessions in parallel."""
    out = tmp_path / "bench"
    assert benchmark(["--videos", str(hd_videos / "test_videos"), "--count", "4", "--repeats", "2", "--memory", "",
                      "--frames-per-video", "32", "--decode-workers", "4", "--prefetch-videos", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["machine"]["device"].startswith("cuda") and report["readers"]["used"] == "nvdec"
    assert "nvdec" in report["decode_seconds_per_video_by_reader"]
    assert 0.0 <= report["gpu_idle_share"] <= 1.0 and report["videos_per_second"] > 0
    with capsys.disabled():
        print(f"\nGPU acceptance benchmark on {report['machine']['gpu']}: {report['videos_per_second']:.1f} videos/s "
              f"(goal >= 10), GPU idle {report['gpu_idle_share']:.0%}, seconds per video {report['seconds_per_video']}, "
              f"report {out / 'report.json'}")
