"""Shrinking frames and crops in torch (the GPU path) exactly as OpenCV's INTER_AREA does (the CPU path).

Every model is trained on crops OpenCV shrank; torch's own ``area`` mode (adaptive pooling) is
up to ~100 levels off on fine texture at ratios that are not whole numbers, and the trained demo
model's labels moved by up to 0.07 on it. These tests pin the pixels and the labels.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.config import InferenceConfig
from dfdc_infer.resampling import area_resize, area_weights
from dfdc_infer.run import run_submission
from dfdc_infer.video_reading import READERS, FrameSampling, SampledFrames, create_reader
from dfdc_sample.generate import generate_dataset
from dfdc_tools.dry_run import DEMO_CHECKPOINT


@pytest.mark.parametrize("source, target", [((300, 300), (224, 224)), ((517, 517), (224, 224)), ((1080, 1920), (540, 960)),
                                            ((1080, 1920), (719, 1279)), ((97, 203), (40, 77))])
def test_area_resize_equals_opencvs_inter_area_within_one_level(source: tuple[int, int], target: tuple[int, int]) -> None:
    frames = np.random.default_rng(sum(source)).integers(0, 256, size=(2, *source, 3), dtype=np.uint8)  # noise: the worst case
    expected = np.stack([cv2.resize(frame, target[::-1], interpolation=cv2.INTER_AREA) for frame in frames])
    ours = area_resize(torch.from_numpy(frames), target).numpy()
    assert ours.shape == expected.shape and np.abs(ours.astype(np.int16) - expected).max() <= 1
    pooled = torch.nn.functional.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=target, mode="area")
    if source[0] % target[0]:  # what the GPU path did before: torch's pooling, far off at such ratios
        assert np.abs(pooled.round().permute(0, 2, 3, 1).numpy() - expected).max() > 30


def test_area_weights_cover_each_target_pixel_once() -> None:
    weights = area_weights(7, 3, torch.device("cpu"))
    assert torch.allclose(weights.sum(dim=1), torch.ones(3))
    assert torch.allclose(weights[0], torch.tensor([3, 3, 1, 0, 0, 0, 0]) / 7)


class TorchFrames:
    """The GPU path's frame type on the CPU: PyAV's frames as a torch tensor (torch resizing follows)."""

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        sample = create_reader("pyav").read(path, sampling)
        return SampledFrames(torch.from_numpy(sample.frames.copy()), sample.indices, sample.total_frames, "nvdec")


def test_the_torch_frame_path_gives_the_trained_models_labels_of_the_opencv_path(
    tmp_path: Path, pinned_identities: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """720p: the detector shrinks every frame by half and crops shrink to 224, both by area."""
    data = generate_dataset(tmp_path / "data", videos=4, width=1280, height=720, frames=20, seed=9, identities=pinned_identities)
    videos, sample, model = data / "test_videos", data / "sample_submission.csv", DEMO_CHECKPOINT
    monkeypatch.setitem(READERS, "nvdec", TorchFrames)
    labels = {}
    for reader in ("nvdec", "pyav"):
        run_submission(InferenceConfig(reader=reader, frame_step=5), videos, sample, [model], tmp_path / f"{reader}.csv")
        labels[reader] = pd.read_csv(tmp_path / f"{reader}.csv")["label"].to_numpy()
    assert np.ptp(labels["pyav"]) > 0.05, "the trained model tells these videos apart"
    assert np.abs(labels["nvdec"] - labels["pyav"]).max() < 1e-3
