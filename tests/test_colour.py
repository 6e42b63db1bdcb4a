"""The GPU reader's NV12 -> RGB conversion against the CPU readers' (FFmpeg's swscale through PyAV).

FFmpeg decodes each test video twice: to raw NV12 (what NVDEC hands over) and, through PyAV, to
RGB (what every CPU reader gives and every model is trained on). ``nv12_to_rgb`` on the NV12 must
give PyAV's RGB within one level, for untagged streams and for streams tagged with another matrix
or full range (tags written into the H.264 headers, the pixels left as encoded).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest
import torch

from dfdc_infer.colour import StreamColour, nv12_to_rgb, stream_colour
from dfdc_sample.generate import write_video
from gpu_videos import all_frames, tagged_copy

WIDTH, HEIGHT = 96, 64

TAGS = {
    "untagged": ("", StreamColour("bt601", False)),
    "bt709": ("matrix_coefficients=1", StreamColour("bt709", False)),
    "bt709-full": ("matrix_coefficients=1:video_full_range_flag=1", StreamColour("bt709", True)),
    "bt2020": ("matrix_coefficients=9", StreamColour("bt2020", False)),
    "smpte170m": ("matrix_coefficients=6", StreamColour("bt601", False)),
}


@pytest.fixture(scope="module")
def colourful(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Saturated blocks, gradients and noise: every corner of the YUV cube, and sharp chroma edges."""
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, size=(3, HEIGHT, WIDTH, 3), dtype=np.uint8)
    frames[:, : HEIGHT // 2, : WIDTH // 2] = frames[:, : HEIGHT // 2, : WIDTH // 2] // 128 * 255  # pure colours
    frames[:, HEIGHT // 2 :, WIDTH // 2 :] = np.linspace(0, 255, WIDTH // 2, dtype=np.uint8)[None, None, :, None]
    return write_video(tmp_path_factory.mktemp("colour") / "untagged.mp4", frames)


def tagged(source: Path, name: str) -> Path:
    """``source`` with the H.264 colour tags of ``TAGS[name]`` (no re-encoding: the same YUV values)."""
    options = TAGS[name][0]
    return tagged_copy(source, options, source.with_name(f"{name}.mp4")) if options else source


def ffmpeg_nv12(path: Path) -> torch.Tensor:
    """(N, H * 3 / 2, W) NV12 frames of ``path``, as FFmpeg decodes them."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(path), "-pix_fmt", "nv12", "-f", "rawvideo", "-"]
    raw = subprocess.run(command, capture_output=True, check=True).stdout
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).reshape(-1, HEIGHT * 3 // 2, WIDTH).copy())


@pytest.mark.parametrize("name", list(TAGS))
def test_nv12_conversion_matches_pyavs_rgb_within_one_level(colourful: Path, name: str) -> None:
    path = tagged(colourful, name)
    colour = stream_colour(path)
    assert colour == TAGS[name][1], "the matrix and range come from the stream's own tags"
    ours = nv12_to_rgb(ffmpeg_nv12(path), colour, chunk=2)  # a chunk smaller than the video: the chunks join up
    theirs = all_frames(path)
    assert ours.dtype == torch.uint8 and tuple(ours.shape) == theirs.shape == (3, HEIGHT, WIDTH, 3)
    assert np.abs(ours.numpy().astype(np.int16) - theirs).max() <= 1


def test_the_wrong_matrix_or_range_is_several_levels_off(colourful: Path) -> None:
    """What the untagged default protects against (NVDEC's own RGB picks BT.709 above 720x576)."""
    nv12, theirs = ffmpeg_nv12(colourful), all_frames(colourful).astype(np.int16)
    for wrong in (StreamColour("bt709"), StreamColour("bt601", full_range=True)):
        difference = np.abs(nv12_to_rgb(nv12, wrong).numpy() - theirs)
        assert difference.max() > 10 and difference.mean() > 2


def test_a_buffer_that_is_not_nv12_is_refused() -> None:
    with pytest.raises(ValueError, match=r"expected \(N, H\*3/2, W\) NV12 with even H and W, got \(2, 64, 96\)"):
        nv12_to_rgb(torch.zeros((2, 64, 96), dtype=torch.uint8))


def test_a_file_without_video_or_unreadable_gets_the_untagged_default(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    assert stream_colour(junk) == StreamColour("bt601", False)
