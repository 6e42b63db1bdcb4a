"""The GPU suite's video helpers (``gpu_videos``) and the generator's frame code, on the CPU.

The GPU suite can only fail where these work: a frame code must survive H.264, read back as the
frame's number after any reader's decode and rotation, and ``frames_differ`` must catch a frame
off by one, a frame not turned upright and colours two levels off.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from dfdc_infer.video_reading import FrameSampling, create_reader
from dfdc_sample.generate import draw_frame_code, generate_dataset, read_frame_code
from gpu_videos import frames_differ, rotated_copy, tagged_copy, truncated_copy


@pytest.fixture(scope="module")
def coded(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> Path:
    """Two 640x360, 40-frame videos whose frames carry their numbers."""
    data = generate_dataset(tmp_path_factory.mktemp("coded") / "data", videos=2, frames=40, seed=3,
                            identities=pinned_identities, frame_code=True)
    return sorted((data / "test_videos").glob("*.mp4"))[0]


def test_frame_codes_survive_h264_and_read_back_as_each_frames_number(coded: Path) -> None:
    for reader in ("pyav", "opencv"):
        sample = create_reader(reader).read(coded, FrameSampling(frames_per_video=7))
        assert np.array_equal(read_frame_code(sample.frames), sample.indices) and len(sample.indices) == 7


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_a_rotated_copy_reads_upright_with_its_codes(coded: Path, tmp_path: Path, rotation: int) -> None:
    path = rotated_copy(coded, rotation, tmp_path / f"r{rotation}.mp4")
    pyav, opencv = (create_reader(name).read(path, FrameSampling(5)) for name in ("pyav", "opencv"))
    assert pyav.frames.shape[1:3] == (360, 640), "displayed as the source is"
    assert frames_differ(pyav.frames, opencv.frames, pyav.indices) is None
    stored = np.rot90(pyav.frames, rotation // 90, axes=(1, 2))
    assert (read_frame_code(stored) == -1).all(), "a frame left as stored shows no code"


def test_frames_differ_catches_a_wrong_frame_a_wrong_turn_and_a_colour_shift(coded: Path) -> None:
    sample = create_reader("pyav").read(coded, FrameSampling(5))
    frames, indices = sample.frames, sample.indices
    assert frames_differ(frames, frames.copy(), indices) is None
    every = create_reader("pyav").read(coded, FrameSampling(1)).frames
    assert "shows numbers" not in (frames_differ(frames, every[indices], indices) or ""), "the same frames, found by number"
    off_by_one = frames_differ(frames, every[indices + 1], indices)
    assert off_by_one is not None and f"theirs: frames show numbers {(indices + 1).tolist()}" in off_by_one
    turned = np.ascontiguousarray(np.rot90(frames, 2, axes=(1, 2)))
    assert "theirs: frames show numbers [-1" in frames_differ(frames, turned, indices)
    shifted = np.clip(frames.astype(np.int16) + 2, 0, 255).astype(np.uint8)
    assert frames_differ(frames, shifted, indices) == "pixels differ by up to 2 levels"


def test_tagged_and_truncated_copies(coded: Path, tmp_path: Path) -> None:
    from dfdc_infer.colour import StreamColour, stream_colour

    tagged = tagged_copy(coded, "matrix_coefficients=1", tmp_path / "bt709.mp4")
    assert stream_colour(tagged) == StreamColour("bt709") and stream_colour(coded) == StreamColour("bt601")
    assert create_reader("pyav").read(tagged, FrameSampling(10)).frames.shape == (4, 360, 640, 3)
    cut = truncated_copy(coded, tmp_path / "cut.mp4")
    assert 0 < cut.stat().st_size < coded.stat().st_size


def test_frame_codes_are_refused_where_they_do_not_fit(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="a frame code holds 0..4095, got 4096"):
        draw_frame_code(np.zeros((64, 256, 3), np.uint8), 4096)
    with pytest.raises(ValueError, match="a frame code needs a width of 240 px or more"):
        generate_dataset(tmp_path / "narrow", videos=1, width=128, height=128, frames=3, frame_code=True)


RUN_SH = Path(__file__).parent / "gpu" / "run.sh"


def test_the_gpu_machine_script_refuses_a_machine_or_folder_that_is_not_ready(tmp_path: Path) -> None:
    """``tests/gpu/run.sh`` checks before it installs or runs anything: one ``error:`` line, exit 2."""
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(RUN_SH), *args], capture_output=True, text=True, cwd=RUN_SH.parents[2],
                              env={**os.environ, "DFDC_GPU_OUT": str(tmp_path / "out")})

    not_packed = run(str(tmp_path))
    assert not_packed.returncode == 2 and not_packed.stderr.startswith(f"error: {tmp_path} is not a packed dataset folder")
    dataset = tmp_path / "weights_dataset"
    for folder in ("wheels", "mtcnn"):
        (dataset / folder).mkdir(parents=True)
    (dataset / "manifest.json").write_text("{}")
    no_photos = run(str(dataset))
    assert no_photos.returncode == 2 and "photos: copy a prepared machine's ~/.cache/dfdc_infer/photos there" in no_photos.stderr
    (tmp_path / "cache" / "photos").mkdir(parents=True)
    if not torch.cuda.is_available():
        no_cuda = run(str(dataset))
        assert no_cuda.returncode == 2 and no_cuda.stderr.strip().endswith("this script is for a GPU machine")
    assert not (tmp_path / "out").exists(), "nothing written before the checks pass"
