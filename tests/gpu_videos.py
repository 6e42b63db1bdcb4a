"""Test videos for the GPU suite that the generator does not make itself, and how to compare frames.

The GPU suite needs videos that catch a wrong frame, a wrong turn or a wrong colour matrix: each
is made from generated frames that carry their own number (``generate_dataset(frame_code=True)``),
so a frame is identified by what it shows. Plain FFmpeg and PyAV, so ``test_gpu_videos`` checks
every helper on the CPU.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import av
import imageio_ffmpeg
import numpy as np

from dfdc_sample.generate import read_frame_code, write_video


def all_frames(path: Path) -> np.ndarray:
    """Every frame of ``path`` as PyAV shows it: (T, H, W, 3) RGB, not yet turned by any display matrix."""
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def rotated_copy(source: Path, rotation: int, target: Path) -> Path:
    """``source`` re-encoded so that it is stored turned and displays as ``source`` does: the
    frames are turned back by ``rotation`` (clockwise degrees) and tagged to be turned upright."""
    stored = np.ascontiguousarray(np.rot90(all_frames(source), rotation // 90, axes=(1, 2)))
    return write_video(target, stored, rotation=rotation)


def tagged_copy(source: Path, bitstream_options: str, target: Path) -> Path:
    """``source`` with its H.264 headers rewritten (``h264_metadata``: e.g. ``matrix_coefficients=1``
    tags BT.709), the encoded pixels left as they are."""
    command = [imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", str(source), "-c", "copy",
               "-bsf:v", f"h264_metadata={bitstream_options}", str(target)]
    subprocess.run(command, check=True)
    return target


def truncated_copy(source: Path, target: Path, keep: float = 0.3) -> Path:
    """The first ``keep`` share of ``source``'s bytes: a download cut short."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep)])
    return target


def frames_differ(ours: np.ndarray, theirs: np.ndarray, indices: np.ndarray) -> str | None:
    """Why two readers' samples of one video disagree, or None: each frame must show the number it
    is reported as (its drawn code), and the pixels must be equal within one level."""
    if ours.shape != theirs.shape:
        return f"shapes {ours.shape} and {theirs.shape}"
    for name, frames in (("ours", ours), ("theirs", theirs)):
        codes = read_frame_code(frames)
        if not np.array_equal(codes, indices):
            return f"{name}: frames show numbers {codes.tolist()}, reported as {indices.tolist()}"
    largest = int(np.abs(ours.astype(np.int16) - theirs).max())
    return f"pixels differ by up to {largest} levels" if largest > 1 else None
