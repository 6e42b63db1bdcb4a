"""GPU decode: the reader choice and its fallback, the torch (GPU) frame path, and the self-check.

Without CUDA the real ``nvdec`` backend cannot run; its choice and fallback are tested as they
happen here, and everything it hands on (frames as a torch tensor) is tested with CPU tensors from
a stand-in backend registered under its name. The tests that need NVDEC skip without CUDA.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer import video_reading
from dfdc_infer.config import InferenceConfig
from dfdc_infer.cropping import crop_frames
from dfdc_infer.face_detection import create_detector
from dfdc_infer.run import run_submission
from dfdc_sample.generate import write_video
from dfdc_infer.video_reading import (
    READERS,
    FrameSampling,
    SampledFrames,
    choose_reader,
    create_reader,
    gpu_reader_mismatch,
    read_video,
    upright,
)

CUDA = torch.cuda.is_available()


def a_face_video(data: Path) -> Path:
    faces = json.loads((data / "faces.json").read_text())
    return data / "test_videos" / next(name for name, frames in sorted(faces.items()) if all(frames))


class TensorDecord:
    """Stands in for ``nvdec`` on a CPU machine: decord's frames, handed on as a torch tensor."""

    swap_channels = False

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        sample = create_reader("decord").read(path, sampling)
        frames = sample.frames[..., ::-1] if self.swap_channels else sample.frames
        return SampledFrames(torch.from_numpy(frames.copy()), sample.indices, sample.total_frames, "nvdec")


class SwappedChannels(TensorDecord):
    """A GPU backend with a colour-conversion bug (BGR out): the self-check must catch it."""

    swap_channels = True


@pytest.mark.skipif(CUDA, reason="checks the no-CUDA fallback")
def test_auto_and_nvdec_fall_back_to_decord_without_cuda_and_say_why(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="dfdc_infer.video_reading"):
        assert choose_reader("auto") == "pyav"
        assert choose_reader("nvdec") == "pyav"
    messages = [(record.levelname, record.message) for record in caplog.records]
    reason = "GPU decode off (no CUDA device); decoding with pyav on the CPU"
    assert messages == [("INFO", reason), ("WARNING", reason)], "auto is quiet about it, an explicit nvdec warns"
    assert choose_reader("opencv") == "opencv"
    with pytest.raises(ValueError, match="unknown video reader 'gpu'"):
        choose_reader("gpu")


@pytest.mark.skipif(CUDA, reason="checks the no-CUDA fallback")
def test_a_run_asking_for_nvdec_without_cuda_still_scores_every_video(sample_data: Path, checkpoint: Path, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    config = InferenceConfig(reader="nvdec")
    with caplog.at_level(logging.WARNING):
        stats = run_submission(config, sample_data / "test_videos", sample_data / "sample_submission.csv", [checkpoint], tmp_path / "s.csv")
    assert stats.counts["scored"] == 7 and stats.counts["failed"] == 0
    choices = [record.message for record in caplog.records if record.name == "dfdc_infer.video_reading"]
    assert choices == ["GPU decode off (no CUDA device); decoding with pyav on the CPU"], "chosen once per run, not per video"


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_upright_turns_numpy_and_torch_frames_like_opencv(rotation: int) -> None:
    frames = np.random.default_rng(rotation).integers(0, 256, size=(2, 6, 10, 3), dtype=np.uint8)
    opencv = {0: None, 90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}[rotation]
    expected = frames if opencv is None else np.stack([cv2.rotate(frame, opencv) for frame in frames])
    assert np.array_equal(upright(frames, rotation), expected)
    assert np.array_equal(upright(torch.from_numpy(frames), rotation).numpy(), expected)


@pytest.mark.parametrize("rotation", [90, 270])
def test_upright_by_the_containers_angle_matches_opencvs_own_autorotation(tmp_path: Path, rotation: int) -> None:
    """What ``nvdec`` does with raw decoded frames, checked on a rotated video against OpenCV."""
    frames = np.zeros((3, 48, 80, 3), dtype=np.uint8)
    frames[:, :12, :20] = 255  # a bright top-left corner shows which way the frame was turned
    path = write_video(tmp_path / "rotated.mp4", frames, rotation=rotation)
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)
    raw = np.stack([cv2.cvtColor(capture.read()[1], cv2.COLOR_BGR2RGB) for _ in range(3)])
    capture.release()
    assert raw.shape[1:3] == (48, 80), "decoded as stored, not yet turned"
    turned = upright(torch.from_numpy(raw), video_reading._display_rotation(path)).numpy()
    assert np.array_equal(turned, create_reader("opencv").read(path, FrameSampling(1)).frames)


def test_torch_frames_give_the_same_faces_and_nearly_the_same_crops(sample_data: Path) -> None:
    """The GPU path (torch frames: area/bilinear resizing in torch) against the OpenCV path."""
    config = InferenceConfig()
    frames = read_video(a_face_video(sample_data), config).frames
    detector = create_detector(config)
    on_numpy, on_torch = detector.detect(frames), detector.detect(torch.from_numpy(frames))
    assert [len(found) for found in on_torch] == [len(found) for found in on_numpy]
    for mine, theirs in zip(on_torch, on_numpy):
        assert np.abs(mine[:, :4] - theirs[:, :4]).max() < 4.0, "boxes agree within a few pixels"
    numpy_crops, numpy_owner = crop_frames(frames, on_numpy, 224)
    torch_crops, torch_owner = crop_frames(torch.from_numpy(frames), on_numpy, 224)
    assert isinstance(torch_crops, np.ndarray) and torch_crops.dtype == np.uint8
    assert np.array_equal(numpy_owner, torch_owner) and torch_crops.shape == numpy_crops.shape
    assert np.abs(torch_crops.astype(int) - numpy_crops).mean() < 1.5


def test_a_gpu_backend_passing_the_self_check_scores_through_the_torch_path(
    sample_data: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(READERS, "nvdec", TensorDecord)
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    with caplog.at_level(logging.INFO):
        stats = run_submission(InferenceConfig(), videos, sample, [checkpoint], tmp_path / "gpu.csv")
    assert stats.counts == {"scored": 7, "no_face": 1, "failed": 0, "missing": 0, "out_of_time": 0, "outside": 0, "timeout": 0}
    assert any("mean difference from decord 0.00 levels" in record.message for record in caplog.records)
    assert not any("GPU decode off" in record.message for record in caplog.records)
    run_submission(InferenceConfig(reader="decord"), videos, sample, [checkpoint], tmp_path / "cpu.csv")
    gpu, cpu = pd.read_csv(tmp_path / "gpu.csv"), pd.read_csv(tmp_path / "cpu.csv")
    assert gpu["filename"].tolist() == cpu["filename"].tolist()
    assert np.abs(gpu["label"] - cpu["label"]).max() < 2e-3


def test_a_gpu_backend_with_wrong_colours_is_caught_and_the_run_decodes_on_the_cpu(
    sample_data: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(READERS, "nvdec", SwappedChannels)
    problem = gpu_reader_mismatch(a_face_video(sample_data), InferenceConfig())
    assert problem is not None and "nvdec frames differ from decord's by" in problem
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    with caplog.at_level(logging.WARNING):
        stats = run_submission(InferenceConfig(), videos, sample, [checkpoint], tmp_path / "s.csv")
    assert stats.counts["scored"] == 7
    assert any(record.message.startswith("GPU decode off for this run") for record in caplog.records)


@pytest.mark.gpu
@pytest.mark.skipif(not CUDA, reason="needs CUDA (NVDEC)")
def test_nvdec_reads_upright_frames_that_match_decord(sample_data: Path, tmp_path: Path) -> None:
    assert choose_reader("nvdec") == "nvdec", f"nvdec cannot run here: {video_reading._unavailable('nvdec')}"
    path = a_face_video(sample_data)
    sample = create_reader("nvdec").read(path, FrameSampling(10))
    assert sample.frames.is_cuda and sample.frames.dtype == torch.uint8
    assert gpu_reader_mismatch(path, InferenceConfig()) is None


class OnDevice(TensorDecord):
    """A GPU backend stand-in that is built with the device it decodes on, as ``nvdec`` is."""

    decodes_on_gpu = True
    devices: list[torch.device] = []

    def __init__(self, device: torch.device) -> None:
        self.devices.append(device)


def test_device_cpu_rules_out_gpu_decoding_and_a_cuda_device_is_where_it_decodes(
    sample_data: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(READERS, "nvdec", OnDevice)
    monkeypatch.setattr(OnDevice, "devices", [])
    with caplog.at_level(logging.INFO, logger="dfdc_infer.video_reading"):
        assert choose_reader("auto", "cpu") == "pyav"
        assert choose_reader("nvdec", "cpu") == "pyav"
    assert [record.message for record in caplog.records] == ["GPU decode off (the run's device is cpu); decoding with pyav on the CPU"] * 2
    assert OnDevice.devices == [], "never built for a CPU run"
    assert choose_reader("auto", "cuda:1") == "nvdec"
    sample = read_video(a_face_video(sample_data), InferenceConfig(device="cuda:1"))
    assert sample.backend == "nvdec" and OnDevice.devices[-1] == torch.device("cuda:1")
    read_video(a_face_video(sample_data), InferenceConfig(device="cuda"))
    assert OnDevice.devices[-1] == torch.device("cuda"), "plain cuda: the current device"


def test_cuda_errors_are_told_from_bad_input() -> None:
    from dfdc_infer.device import is_cuda_error

    assert is_cuda_error(torch.cuda.CudaError(700))
    assert is_cuda_error(RuntimeError("CUDA error: an illegal memory access was encountered"))
    assert is_cuda_error(Exception("CUDA driver API error CUDA_ERROR_LAUNCH_FAILED"))  # PyNvVideoCodec's
    assert not is_cuda_error(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert not is_cuda_error(RuntimeError("Invalid input stream"))


def test_a_cuda_error_in_gpu_decoding_moves_the_rest_of_the_run_to_the_cpu_with_every_row(
    sample_data: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """After the self-check and two good videos, the decoder's context is poisoned: every read fails."""
    reads: list[str] = []

    class Poisoned(OnDevice):
        def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
            reads.append(path.name)
            if len(reads) > 3:
                raise video_reading.GpuDecodeLost("nvdec: CUDA error: an illegal memory access was encountered")
            return super().read(path, sampling)

    monkeypatch.setitem(READERS, "nvdec", Poisoned)
    videos, sample = sample_data / "test_videos", sample_data / "sample_submission.csv"
    config = InferenceConfig(device="cuda", decode_workers=1, prefetch_videos=2)  # the detector runs on the CPU all the same
    monkeypatch.setattr("dfdc_infer.run.resolve_device", lambda name: torch.device("cpu"))
    monkeypatch.setattr("dfdc_infer.face_detection.resolve_device", lambda name: torch.device("cpu"))
    with caplog.at_level(logging.WARNING):
        stats = run_submission(config, videos, sample, [checkpoint], tmp_path / "s.csv")
    assert {status: count for status, count in stats.counts.items() if count} == {"scored": 7, "no_face": 1}
    assert len(pd.read_csv(tmp_path / "s.csv")) == 8
    switched = [record.message for record in caplog.records if record.message.startswith("GPU decode off for the rest of the run")]
    assert len(switched) == 1 and "CUDA error on" in switched[0] and switched[0].endswith("decoding with pyav on the CPU")
    assert len(reads) <= 3 + 1 + config.prefetch_videos, "after the switch only videos already in flight tried the GPU"
