"""Video reading: decode only the sampled frames of a video, as uint8 RGB, with their indices.

Backends sit behind one small protocol and are chosen by name (``READERS``), like timm's
``create_model``: ``decord`` (default; fastest on CPU) and ``opencv`` (grab every frame, retrieve
the sampled ones: the competition baseline, and the fallback when decord cannot read a file, e.g.
a truncated mp4 whose tail is missing). A GPU decode backend registers itself the same way with
``@register_reader("name")``.

Both backends honour rotation metadata (portrait phone videos come out upright): decord and
OpenCV's FFmpeg backend apply the display matrix themselves, and tests check they agree.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np

from .config import InferenceConfig

log = logging.getLogger(__name__)


class VideoReadError(Exception):
    """A video could not be decoded at all; the message says why (shown in the run's log)."""


@dataclass(frozen=True)
class SampledFrames:
    """The decoded sample of one video."""

    frames: np.ndarray
    """(N, H, W, 3) uint8 RGB, upright."""
    indices: np.ndarray
    """(N,) int64 frame numbers of ``frames`` in the video."""
    total_frames: int
    """Frames the backend found in the video (the container's count for decord)."""
    backend: str
    """Name of the backend that actually decoded them (after any fallback)."""


def sample_indices(total_frames: int, frame_step: int = 10, frames_per_video: int | None = None) -> np.ndarray:
    """Frame numbers to decode: every ``frame_step``-th from 0, or ``frames_per_video`` evenly spaced.

    Evenly spaced indices include the first frame and spread to the last; asking for more frames
    than the video has gives each frame once.
    """
    if total_frames <= 0:
        return np.zeros(0, dtype=np.int64)
    if frames_per_video is None:
        return np.arange(0, total_frames, frame_step, dtype=np.int64)
    count = min(frames_per_video, total_frames)
    return np.unique(np.linspace(0, total_frames - 1, count).round().astype(np.int64))


class FrameReader(Protocol):
    """A decode backend: returns the sampled frames of one file or raises ``VideoReadError``."""

    def read(self, path: Path, frame_step: int, frames_per_video: int | None) -> SampledFrames: ...


READERS: dict[str, Callable[[], FrameReader]] = {}


def register_reader(name: str) -> Callable[[Callable[[], FrameReader]], Callable[[], FrameReader]]:
    """Class decorator that makes a backend available to ``create_reader`` under ``name``."""

    def add(factory: Callable[[], FrameReader]) -> Callable[[], FrameReader]:
        READERS[name] = factory
        return factory

    return add


def create_reader(name: str) -> FrameReader:
    """Instantiate a backend by name; an unknown name lists the known ones."""
    if name not in READERS:
        raise ValueError(f"unknown video reader {name!r}; known: {', '.join(sorted(READERS))}")
    return READERS[name]()


@register_reader("decord")
class DecordReader:
    """decord's ``get_batch`` decodes only what the sampled indices need (CPU context)."""

    def __init__(self) -> None:
        import decord  # imported here so the OpenCV fallback works where decord is not installed

        decord.logging.set_level(decord.logging.QUIET)
        self._decord = decord

    def read(self, path: Path, frame_step: int, frames_per_video: int | None) -> SampledFrames:
        try:
            video = self._decord.VideoReader(str(path), ctx=self._decord.cpu(0))
            total = len(video)
            indices = sample_indices(total, frame_step, frames_per_video)
            if len(indices) == 0:
                raise VideoReadError("the video has no frames")
            frames = video.get_batch(indices.tolist()).asnumpy()
        except (RuntimeError, self._decord.DECORDError) as error:
            raise VideoReadError(f"decord: {_first_line(error)}") from error
        return SampledFrames(frames=frames, indices=indices, total_frames=total, backend="decord")


def _first_line(error: Exception) -> str:
    """decord's message without its ``[hh:mm:ss] /source/file.cc:61:`` prefix, one line, bounded."""
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", str(error).strip().splitlines()[0])[:200]


@register_reader("opencv")
class OpenCVReader:
    """Grab every frame, retrieve (decode to BGR, convert to RGB) only the sampled ones.

    Decodes as far as the file allows, so a truncated video still yields its first frames.
    """

    def read(self, path: Path, frame_step: int, frames_per_video: int | None) -> SampledFrames:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise VideoReadError("opencv: cannot open the file (not a readable video container)")
            capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
            if frames_per_video is None:  # every Nth frame needs no frame count: trust the stream
                keep: Callable[[int], bool] = lambda index: index % frame_step == 0
            else:
                declared = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
                keep = set(sample_indices(declared, frame_step, frames_per_video).tolist()).__contains__
            frames: list[np.ndarray] = []
            indices: list[int] = []
            index = 0
            while capture.grab():
                if keep(index):
                    ok, bgr = capture.retrieve()
                    if ok:
                        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                        indices.append(index)
                index += 1
        finally:
            capture.release()
        if not frames:
            raise VideoReadError("opencv: no decodable frames")
        return SampledFrames(
            frames=np.stack(frames),
            indices=np.asarray(indices, dtype=np.int64),
            total_frames=index,
            backend="opencv",
        )


def read_video(path: Path, config: InferenceConfig) -> SampledFrames:
    """Decode the sampled frames with ``config.reader``; if that fails, retry with OpenCV.

    Raises ``VideoReadError`` only when every backend failed; the message carries each reason.
    """
    names = [config.reader] + (["opencv"] if config.reader != "opencv" else [])
    reasons: list[str] = []
    for name in names:
        try:
            frames = create_reader(name).read(Path(path), config.frame_step, config.frames_per_video)
        except (VideoReadError, ImportError) as error:
            reasons.append(str(error))
            if name != names[-1]:
                log.warning("%s: %s; retrying with %s", Path(path).name, error, names[-1])
            continue
        return frames
    raise VideoReadError("; ".join(reasons))
