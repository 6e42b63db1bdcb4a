"""GPU acceptance suite: every CUDA path for real, compared with the CPU path on the same videos.

    tests/gpu/run.sh DATASET [CACHE]     # an offline GPU machine: installs, then this suite and the benchmark
    python -m pytest -m gpu tests        # any prepared machine with CUDA (see README, "GPU acceptance suite")

The rest of the test suite checks the GPU code paths with CPU stand-ins; this file runs them on the
device, and every check can fail on a wrong result, not only on an error:

- frames: every generated frame carries its own number (``generate_dataset(frame_code=True)``), so
  the nvdec reader's frames are matched to PyAV's by what they show, and then pixel for pixel
  within one level (H.264 decoding is exact and the colour conversion is the CPU readers'), on an
  untagged 1080p video (where NVDEC's own RGB would pick BT.709), a BT.709-tagged one, videos
  rotated 90/180/270, and one decoder reconfigured across three sizes and parallel sessions;
- faces and crops: MTCNN and face tracking on CUDA frames, ``square`` and ``dfdc-1st`` crops cut
  from GPU frames, against the CPU's;
- labels: the committed trained demo model (its labels spread, unlike an untrained one's 0.5 for
  everything) on the whole pipeline, with an unreadable and a truncated file among the good ones,
  with the ``dfdc-1st`` preset and with a two-model fp16 ensemble, each against the CPU run;
- a short benchmark whose report gives videos per second and the GPU's idle share, timed with
  CUDA events on the stages' streams (it prints them; speed targets are the benchmark's to judge).

Without CUDA every test here skips. A machine with CUDA but without PyNvVideoCodec fails the nvdec
tests, on purpose: this suite is what says the GPU path works.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.config import InferenceConfig, preset_config
from dfdc_infer.cropping import crop_frames
from dfdc_infer.face_detection import create_detector
from dfdc_infer.face_tracking import FaceTracker, box_iou
from dfdc_infer.models import Ensemble
from dfdc_infer.run import run_submission
from dfdc_infer.video_reading import FrameSampling, choose_reader, create_reader, frames_to_numpy, gpu_reader_mismatch
from dfdc_sample.generate import generate_dataset
from dfdc_tools.benchmark_inference import main as benchmark
from dfdc_tools.dry_run import DEMO_CHECKPOINT
from gpu_videos import frames_differ, rotated_copy, tagged_copy, truncated_copy

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (GPU acceptance suite)")]

CONFIG = InferenceConfig(frames_per_video=32)
"""The throughput goal's setting: 32 frames sampled from each 300-frame video."""

LABEL_TOLERANCE = 0.02
"""Largest label difference accepted between the GPU run (fp16, torch resizing) and the CPU run."""


@pytest.fixture(scope="module")
def hd_videos(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> Path:
    """4 generated DFDC-like videos, 1920x1080, 300 numbered frames: one without a face, one with two."""
    return generate_dataset(tmp_path_factory.mktemp("hd") / "data", videos=4, width=1920, height=1080, frames=300, seed=5,
                            identities=pinned_identities, frame_code=True)


@pytest.fixture(scope="module")
def small_videos(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> dict[str, Path]:
    """60 numbered frames each: landscape 640x360, portrait 720x1280, the landscape one tagged
    BT.709 and stored turned by 90, 180 and 270 degrees."""
    root = tmp_path_factory.mktemp("small")
    landscape = face_videos(generate_dataset(root / "landscape", videos=2, frames=60, seed=11, identities=pinned_identities,
                                             frame_code=True))[0]
    portrait = face_videos(generate_dataset(root / "portrait", videos=2, width=720, height=1280, frames=60, seed=12,
                                            identities=pinned_identities, frame_code=True))[0]
    videos = {"landscape": landscape, "portrait": portrait,
              "bt709": tagged_copy(landscape, "matrix_coefficients=1", root / "bt709.mp4")}
    for rotation in (90, 180, 270):
        videos[f"rotated{rotation}"] = rotated_copy(landscape, rotation, root / f"rotated{rotation}.mp4")
    return videos


def face_videos(data: Path) -> list[Path]:
    faces = json.loads((data / "faces.json").read_text())
    return [data / "test_videos" / name for name, frames in sorted(faces.items()) if any(frames)]


def gpu_and_cpu_differ(path: Path, sampling: FrameSampling, reader=None) -> str | None:
    """Why nvdec's sample of ``path`` is not PyAV's (by frame number, then pixels), or None."""
    gpu = (reader or create_reader("nvdec")).read(path, sampling)
    cpu = create_reader("pyav").read(path, sampling)
    if not (gpu.frames.is_cuda and gpu.frames.dtype == torch.uint8):
        return f"nvdec frames are {gpu.frames.device} {gpu.frames.dtype}"
    if not np.array_equal(gpu.indices, cpu.indices):
        return f"indices {gpu.indices.tolist()} and {cpu.indices.tolist()}"
    problem = frames_differ(frames_to_numpy(gpu.frames), cpu.frames, cpu.indices)
    return f"{path.name}: {problem}" if problem else None


def test_nvdec_is_chosen_and_gives_the_cpu_readers_frames(hd_videos: Path, small_videos: dict[str, Path]) -> None:
    assert choose_reader("auto") == "nvdec", "CUDA is here, so auto must decode on the GPU (is PyNvVideoCodec installed?)"
    path = face_videos(hd_videos)[0]
    sample = create_reader("nvdec").read(path, FrameSampling.of(CONFIG))
    assert tuple(sample.frames.shape) == (32, 1080, 1920, 3) and sample.total_frames == 300
    assert gpu_and_cpu_differ(path, FrameSampling.of(CONFIG)) is None, "untagged 1080p: BT.601, as FFmpeg"
    assert gpu_and_cpu_differ(small_videos["bt709"], FrameSampling(7)) is None, "tagged: the stream's own matrix"
    assert gpu_reader_mismatch(path, CONFIG) is None


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotated_videos_come_out_upright_on_the_gpu(small_videos: dict[str, Path], rotation: int) -> None:
    assert gpu_and_cpu_differ(small_videos[f"rotated{rotation}"], FrameSampling(7)) is None


def test_one_decoder_reconfigured_across_sizes_and_parallel_sessions_give_the_cpus_frames(
    hd_videos: Path, small_videos: dict[str, Path]
) -> None:
    paths = sorted((hd_videos / "test_videos").glob("*.mp4"))
    reader, sampling = create_reader("nvdec"), FrameSampling.of(CONFIG)
    mixed = [paths[0], small_videos["landscape"], small_videos["portrait"], small_videos["rotated90"], paths[1], small_videos["landscape"]]
    for path in mixed:  # one thread: one decoder, reconfigured from 1080p to 360p to portrait and back
        assert gpu_and_cpu_differ(path, sampling, reader) is None
    one_by_one = [reader.read(path, sampling).frames for path in paths]
    with ThreadPoolExecutor(len(paths)) as pool:  # one NVDEC session (and one CUDA stream) per thread
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


@pytest.mark.parametrize("preset", ["seed", "dfdc-1st"])
def test_crops_cut_from_gpu_frames_match_the_cpus_and_score_alike(hd_videos: Path, preset: str) -> None:
    config = preset_config(preset).updated({"frames_per_video": 32})
    sampling, path = FrameSampling.of(config), face_videos(hd_videos)[0]
    gpu_frames = create_reader("nvdec").read(path, sampling).frames
    cpu_frames = create_reader("pyav").read(path, sampling).frames
    detections = create_detector(config.updated({"device": "cpu"})).detect(cpu_frames)  # the same boxes: the crops alone differ
    cut = [crop_frames(frames, detections, 224, config.crop_margin, config.all_faces, config.crop_geometry, config.max_crops_per_video)
           for frames in (gpu_frames, cpu_frames)]
    (gpu_crops, gpu_owner), (cpu_crops, cpu_owner) = cut
    assert len(cpu_crops) >= 16 and np.array_equal(gpu_owner, cpu_owner) and gpu_crops.shape == cpu_crops.shape
    assert np.abs(gpu_crops.astype(np.int16) - cpu_crops).mean() < 1.5
    model = Ensemble.load([DEMO_CHECKPOINT], torch.device("cpu"), fp16=False)
    assert np.abs(model.predict(gpu_crops) - model.predict(cpu_crops)).max() < LABEL_TOLERANCE


def test_a_two_model_fp16_ensemble_on_cuda_matches_fp32_on_the_cpu(hd_videos: Path, checkpoint: Path) -> None:
    sample = create_reader("pyav").read(face_videos(hd_videos)[0], FrameSampling.of(CONFIG))
    gpu = Ensemble.load([DEMO_CHECKPOINT, checkpoint], torch.device("cuda"), fp16=True)
    cpu = Ensemble.load([DEMO_CHECKPOINT, checkpoint], torch.device("cpu"), fp16=False)
    crops, _ = crop_frames(sample.frames, create_detector(InferenceConfig(device="cpu")).detect(sample.frames), gpu.crop_size)
    assert len(crops) >= 16
    on_gpu, on_cpu = gpu.predict(crops), cpu.predict(crops)
    assert on_gpu.shape == on_cpu.shape == (2, len(crops))
    assert np.abs(on_gpu - on_cpu).max() < 5e-3
    assert np.ptp(on_cpu[0]) > 1e-3, "the trained model's crops do not all score the same"


def run_both(config: InferenceConfig, videos: Path, sample: Path, models: list[Path], out: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The submission scored on CUDA (``auto``: nvdec) and on the CPU (PyAV), rows in sample order."""
    run_submission(config, videos, sample, models, out / "gpu.csv")
    run_submission(config.updated({"device": "cpu", "reader": "pyav"}), videos, sample, models, out / "cpu.csv")
    return pd.read_csv(out / "gpu.csv"), pd.read_csv(out / "cpu.csv")


def test_the_whole_pipeline_on_cuda_scores_like_the_cpu_with_failing_files_mid_run(
    hd_videos: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    names = sorted(path.name for path in (hd_videos / "test_videos").glob("*.mp4"))
    for name in names:
        (videos / name).symlink_to(hd_videos / "test_videos" / name)
    (videos / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(4096))  # an mp4 header, then nothing
    truncated_copy(hd_videos / "test_videos" / names[0], videos / "cut.mp4")
    order = [names[0], "broken.mp4", names[1], "cut.mp4", names[2], names[3]]  # the failures between good videos
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("filename,label\n" + "".join(f"{name},0.5\n" for name in order))
    with caplog.at_level(logging.INFO):
        gpu, cpu = run_both(CONFIG, videos, sample, [DEMO_CHECKPOINT], tmp_path)
    assert any("nvdec check on" in record.message for record in caplog.records)
    assert not any("GPU decode off" in record.message for record in caplog.records), "a bad file is no reason to leave the GPU"
    assert gpu["filename"].tolist() == cpu["filename"].tolist() == order
    assert np.abs(gpu["label"] - cpu["label"]).max() < LABEL_TOLERANCE
    assert gpu.set_index("filename").loc["broken.mp4", "label"] == CONFIG.fallback_label
    good = gpu.set_index("filename").loc[names, "label"]
    assert np.ptp(good) > 2 * LABEL_TOLERANCE, "the demo model's labels differ between videos: a wrong frame would show"


def test_dfdc_1st_preset_with_a_two_model_ensemble_on_cuda_scores_like_the_cpu(hd_videos: Path, checkpoint: Path, tmp_path: Path) -> None:
    config = preset_config("dfdc-1st")
    gpu, cpu = run_both(config, hd_videos / "test_videos", hd_videos / "sample_submission.csv", [DEMO_CHECKPOINT, checkpoint], tmp_path)
    assert gpu["filename"].tolist() == cpu["filename"].tolist() and len(gpu) == 4
    assert np.abs(gpu["label"] - cpu["label"]).max() < LABEL_TOLERANCE


def test_short_benchmark_reports_videos_per_second_and_the_gpu_idle_share(
    hd_videos: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The throughput goal's run: 1080p, 300 frames, 32 sampled, the demo model; NVDEC sessions in parallel."""
    out = tmp_path / "bench"
    assert benchmark(["--videos", str(hd_videos / "test_videos"), "--count", "4", "--repeats", "2", "--memory", "",
                      "--checkpoint", str(DEMO_CHECKPOINT), "--frames-per-video", "32", "--decode-workers", "4",
                      "--prefetch-videos", "8", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["machine"]["device"].startswith("cuda") and report["readers"]["used"] == "nvdec"
    assert "nvdec" in report["decode_seconds_per_video_by_reader"]
    assert 0.0 <= report["gpu_idle_share"] < 1.0, "CUDA events saw the stages' work"
    assert report["videos_per_second"] > 0
    keep = os.environ.get("DFDC_GPU_OUT")  # tests/gpu/run.sh collects the report
    if keep:
        shutil.copy(out / "report.json", Path(keep) / "benchmark-report.json")
    with capsys.disabled():
        print(f"\nGPU acceptance benchmark on {report['machine']['gpu']}: {report['videos_per_second']:.1f} videos/s "
              f"(goal >= 10), GPU idle {report['gpu_idle_share']:.0%} (CUDA events), seconds per video "
              f"{report['seconds_per_video']}, report {out / 'report.json'}")
