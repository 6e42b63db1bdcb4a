"""The run state: what may change while a run goes on, changed under a lock and read once per video.

The settings (``InferenceConfig``) stay as given for the whole run. Three things may change during
it, each for a reason the log gives when it happens:

- the reader: chosen once when the run starts (``choose_reader``), then moved to the CPU when the
  GPU decoder fails its self-check or hits a CUDA error, or to the next reader of its chain after
  its ``STRIKES_PER_READER``-th decode timeout (``watchdog``);
- the frames sampled per video: halved by the budget guard's first cuts (``budget``);
- the models: the slowest one left out by its next cut.

A change makes a new ``Snapshot``; a video takes one when its decoding is submitted and keeps it
until its result, so it is decoded, cut and scored under one state even while another thread
changes the run's, and its log line names that state.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

from .config import InferenceConfig
from .models import Ensemble
from .video_reading import CPU_READERS, FrameSampling, ReaderUnavailable, VideoReadError, choose_reader, gpu_reader_mismatch, reader_chain
from .watchdog import VideoTimeout, call_with_timeout

log = logging.getLogger(__name__)

STRIKES_PER_READER = 3
"""Timeouts of one reader after which the rest of the run decodes with the next reader of its chain."""


@dataclass(frozen=True)
class Snapshot:
    """The state one video is decoded, cut and scored under."""

    reader: str
    """The backend that decodes it first (``read_frames`` falls back along its chain)."""
    sampling: FrameSampling
    ensemble: Ensemble | None = None
    """The models that score its crops, cut at their ``crop_size``; None where nothing is scored (extraction)."""

    def __str__(self) -> str:
        sampling = self.sampling
        frames = f"frame step {sampling.frame_step}" if sampling.frames_per_video is None else f"{sampling.frames_per_video} frames per video"
        models = "" if self.ensemble is None else f", {len(self.ensemble.models)} model{'s' * (len(self.ensemble.models) > 1)}"
        return f"{self.reader}, {frames}{models}"


class RunState:
    """The run's current ``Snapshot``; every change is made under one lock and logged once."""

    def __init__(self, config: InferenceConfig, ensemble: Ensemble | None = None) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._now = Snapshot(choose_reader(config.reader, config.device), FrameSampling.of(config), ensemble)
        self._timeouts: Counter[str] = Counter()

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._now

    def check_gpu_reader(self, paths: Iterable[Path], tries: int = 3) -> None:
        """Before trusting ``nvdec`` with the run, compare it with decord on the first readable
        video of ``paths`` (trying at most ``tries``); if none can be compared, the run decodes on
        the CPU."""
        if self.snapshot().reader != "nvdec":
            return
        problem = "no video to check it on"
        for path in itertools.islice(paths, tries):
            try:
                problem = call_with_timeout(gpu_reader_mismatch, self.config.video_timeout, path, self.config, stage="the nvdec check")
                break
            except (VideoReadError, ReaderUnavailable, VideoTimeout) as error:
                problem = f"cannot compare on {path.name}: {error}"
        if problem is not None:
            self.leave_gpu(f"for this run ({problem})")

    def leave_gpu(self, why: str) -> None:
        """Decode on the CPU from now on (said once; a run already there stays as it is)."""
        with self._lock:
            if self._now.reader != "nvdec":
                return
            self._now = replace(self._now, reader=choose_reader(CPU_READERS[0]))  # the fastest CPU reader that runs here
            log.warning("GPU decode off %s; decoding with %s on the CPU", why, self._now.reader)

    def decode_timed_out(self, reader: str) -> None:
        """Count a decode timeout of ``reader``; its ``STRIKES_PER_READER``-th moves the run to
        the next reader of its chain, if there is one."""
        with self._lock:
            self._timeouts[reader] += 1
            if self._timeouts[reader] != STRIKES_PER_READER:
                return
            later = reader_chain(reader)[1:]
            if not later:
                log.warning("watchdog: %d videos timed out decoding with %s, the last reader of the chain; it stays",
                            STRIKES_PER_READER, reader)
                return
            self._now = replace(self._now, reader=choose_reader(later[0], self.config.device))
            log.warning("watchdog: %d videos timed out decoding with %s; the rest of the run decodes with %s",
                        STRIKES_PER_READER, reader, self._now.reader)

    def cheaper(self, frames_seen: int) -> bool:
        """The budget guard's next cut: half the frames per video (never under
        ``min_frames_per_video``; ``frames_seen``: how many a video has had so far, where no count
        is set), else one model less (the slowest). False when there is nothing left to cut."""
        with self._lock:
            now = self._now
            frames = now.sampling.frames_per_video or frames_seen
            if frames > self.config.min_frames_per_video:
                fewer = max(frames // 2, self.config.min_frames_per_video)
                self._now = replace(now, sampling=replace(now.sampling, frames_per_video=fewer))
                log.warning("budget: sampling %d frames per video instead of %d", fewer, frames)
                return True
            if now.ensemble is None or len(now.ensemble.models) < 2:
                return False
            smaller, dropped = now.ensemble.without_slowest()
            self._now = replace(now, ensemble=smaller)
            log.warning("budget: dropping the slowest model, %s@%d", dropped.arch, dropped.input_size)
            return True
