"""Pipeline and scheduling: videos in, one ``VideoResult`` per video out, never an exception.

Per video: decode the sampled frames (``video_reading``), detect faces (``face_detection``), crop
(``cropping``); crops of several videos are pooled so the ensemble (``models``) sees full batches;
a video's label is the aggregate of its crops (``aggregation``). Decoding of the next videos runs
ahead in background threads (decord and OpenCV release the GIL), bounded by
``config.prefetch_videos`` so memory stays flat however many videos there are.

Anything that goes wrong with one video (unreadable file, no face, even an unexpected error) is
logged with its reason and that video gets ``config.fallback_label``: the run always finishes with
a row for every video.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .aggregation import video_probability
from .config import InferenceConfig
from .cropping import crop_frames
from .face_detection import FaceDetector
from .models import Ensemble
from .progress import ProgressLine
from .video_reading import SampledFrames, VideoReadError, read_video

log = logging.getLogger(__name__)

STATUSES = ("scored", "no_face", "failed", "missing")


@dataclass(frozen=True)
class VideoResult:
    """The outcome for one video; ``status`` is one of ``STATUSES``, ``reason`` says why not scored."""

    filename: str
    label: float
    status: str
    reason: str = ""
    frames: int = 0
    faces: int = 0


@dataclass
class StageTimes:
    """Seconds spent per stage, summed over videos (decode runs in background threads)."""

    decode: float = 0.0
    detect: float = 0.0
    crop: float = 0.0
    classify: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "detect": self.detect, "crop": self.crop, "classify": self.classify}


@dataclass
class _Pending:
    """A video whose crops wait for a model batch."""

    filename: str
    crops: np.ndarray
    frames: int


@dataclass
class RunStats:
    """What the summary line reports."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    stages: StageTimes = field(default_factory=StageTimes)
    seconds: float = 0.0

    @property
    def videos(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        per_video = self.seconds / max(self.videos, 1)
        stage_text = ", ".join(f"{name} {value / max(self.videos, 1):.2f}" for name, value in self.stages.as_dict().items())
        return (
            f"{self.videos} videos in {self.seconds:.1f} s ({per_video:.2f} s/video): "
            f"scored {self.counts['scored']}, no face {self.counts['no_face']}, "
            f"failed {self.counts['failed']}, missing {self.counts['missing']}\n"
            f"stage seconds per video: {stage_text}"
        )


def _decode(path: Path, config: InferenceConfig) -> tuple[SampledFrames | None, str, float]:
    """Background-thread task: (frames or None, failure reason, seconds)."""
    started = time.perf_counter()
    try:
        return read_video(path, config), "", time.perf_counter() - started
    except VideoReadError as error:
        return None, str(error), time.perf_counter() - started
    except Exception as error:  # a decoder bug must cost one video, not the run
        return None, f"unexpected {type(error).__name__}: {error}", time.perf_counter() - started


class VideoScorer:
    """Scores videos with one detector and one ensemble; see the module docstring."""

    def __init__(self, config: InferenceConfig, detector: FaceDetector, ensemble: Ensemble) -> None:
        self.config = config
        self.detector = detector
        self.ensemble = ensemble
        self.stats = RunStats()

    def score(self, video_dir: Path, filenames: Iterable[str]) -> Iterator[VideoResult]:
        """Yield a result for every filename (in completion order, which may differ from input order)."""
        filenames = list(filenames)
        started = time.perf_counter()
        progress = ProgressLine(total=len(filenames), unit="videos")
        pending: list[_Pending] = []
        with ThreadPoolExecutor(max_workers=self.config.decode_workers, thread_name_prefix="decode") as pool:
            for filename, decoded in self._decoded(pool, Path(video_dir), filenames):
                results = self._handle(filename, decoded, pending)
                for result in results:
                    self._count(result)
                    progress.advance()
                    yield result
        for result in self._classify(pending):
            self._count(result)
            progress.advance()
            yield result
        self.stats.seconds = time.perf_counter() - started

    def _decoded(
        self, pool: ThreadPoolExecutor, video_dir: Path, filenames: list[str]
    ) -> Iterator[tuple[str, Future | None]]:
        """Filenames with their decode futures, keeping at most ``prefetch_videos`` in flight."""
        queue: deque[tuple[str, Future | None]] = deque()
        names = iter(filenames)
        while True:
            while len(queue) < self.config.prefetch_videos:
                name = next(names, None)
                if name is None:
                    break
                path = video_dir / name
                queue.append((name, pool.submit(_decode, path, self.config) if path.is_file() else None))
            if not queue:
                return
            yield queue.popleft()

    def _handle(self, filename: str, decoded: Future | None, pending: list[_Pending]) -> list[VideoResult]:
        """Detect and crop one decoded video; classify the pool once it fills a batch."""
        fallback = self.config.fallback_label
        if decoded is None:
            log.warning("%s: not found on disk -> %.2f", filename, fallback)
            return [VideoResult(filename, fallback, "missing", "file not found")]
        sample, reason, seconds = decoded.result()
        self.stats.stages.decode += seconds
        if sample is None:
            log.warning("%s: cannot decode (%s) -> %.2f", filename, reason, fallback)
            return [VideoResult(filename, fallback, "failed", reason)]
        try:
            crops = self._crops(sample)
        except Exception as error:  # detector or crop fault on odd frames: lose one video, not the run
            log.warning("%s: face detection failed (%s: %s) -> %.2f", filename, type(error).__name__, error, fallback)
            return [VideoResult(filename, fallback, "failed", f"detection: {error}", frames=len(sample.indices))]
        if len(crops) == 0:
            log.warning("%s: no face in %d sampled frames -> %.2f", filename, len(sample.indices), fallback)
            return [VideoResult(filename, fallback, "no_face", "no face detected", frames=len(sample.indices))]
        pending.append(_Pending(filename, crops, len(sample.indices)))
        if sum(len(item.crops) for item in pending) < self.config.batch_size:
            return []
        return self._classify(pending)

    def _crops(self, sample: SampledFrames) -> np.ndarray:
        started = time.perf_counter()
        detections = self.detector.detect(sample.frames)
        self.stats.stages.detect += time.perf_counter() - started
        started = time.perf_counter()
        crops, _ = crop_frames(
            sample.frames, detections, self.ensemble.crop_size, self.config.crop_margin, self.config.all_faces
        )
        self.stats.stages.crop += time.perf_counter() - started
        return crops

    def _classify(self, pending: list[_Pending]) -> list[VideoResult]:
        """Score all pooled crops in shared batches, then give each pooled video its label."""
        if not pending:
            return []
        started = time.perf_counter()
        try:
            probabilities = self.ensemble.predict(np.concatenate([item.crops for item in pending]), self.config.batch_size)
        except Exception as error:  # e.g. out of memory on a huge batch: these videos fall back
            log.warning("classification failed for %d videos (%s: %s)", len(pending), type(error).__name__, error)
            results = [
                VideoResult(item.filename, self.config.fallback_label, "failed", f"classification: {error}", item.frames)
                for item in pending
            ]
        else:
            bounds = np.cumsum([0] + [len(item.crops) for item in pending])
            results = [
                VideoResult(
                    item.filename,
                    video_probability(probabilities[:, start:stop], self.config.clip_min, self.config.clip_max),
                    "scored",
                    frames=item.frames,
                    faces=len(item.crops),
                )
                for item, start, stop in zip(pending, bounds[:-1], bounds[1:])
            ]
        self.stats.stages.classify += time.perf_counter() - started
        pending.clear()
        return results

    def _count(self, result: VideoResult) -> None:
        self.stats.counts[result.status] += 1
