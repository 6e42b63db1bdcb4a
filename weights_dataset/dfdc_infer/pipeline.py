"""Pipeline and scheduling: videos in, one ``VideoResult`` per video out, never an exception.

Per video: decode the sampled frames (``video_reading``), find faces on them (``face_tracking``
running the ``face_detection`` backend on the frames that need it), crop (``cropping``); crops of
several videos are pooled so the ensemble (``models``) sees full batches (``crop_pool``); a
video's label is the aggregate of its crops (``aggregation``).

Three stages overlap, each in its own thread (``prefetch``):

- decoding of the next videos runs in ``decode_workers`` background threads (the decoders release
  the GIL), bounded by ``prefetch_videos`` so memory stays flat however many videos there are;
- detection and cropping of video n+1 run in one detect thread (on its own CUDA stream on a GPU)
  while the main thread classifies video n's crops;
- the main thread classifies and asks the budget guard, always after video n's detection is done,
  so the guard's view of the run does not depend on thread timing.

The settings stay as given for the whole run; what changes during it (the reader, the frames per
video, the models) is the run state (``run_state``), read once per video: a video is decoded,
cut and scored under one state, and its log line names it.

On a GPU each stage queues its work on its own CUDA stream, and frames pass from decode to
detection through a ``streams.HandOff`` (an event, and ``record_stream``); after a CUDA error in
the GPU decoder the rest of the run decodes on the CPU, saying so once.

Anything that goes wrong with one video (unreadable file, no face, even an unexpected error) is
logged with its reason and that video gets ``config.fallback_label``: the run always finishes with
a row for every video. A name that is a path, not a file of the folder, is never opened
(``outside``). The watchdog (``watchdog``) gives up on a video whose decoding and detection, or
whose classification batch, run past ``config.video_timeout`` (``timeout``); the third decode
timeout of a reader moves the rest of the run to the next reader of its chain.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .aggregation import AGGREGATIONS
from .budget import BudgetGuard
from .config import InferenceConfig
from .crop_pool import CropPool
from .cropping import CROP_GEOMETRIES, crop_frames
from .face_detection import FaceDetector
from .face_tracking import FaceTracker
from .models import Ensemble
from .prefetch import Decoded, Fetched, WatchedPrefetch
from .progress import ProgressLine
from .report import Evidence
from .results import RunStats, Span, StageClock, VideoResult, fallback
from .run_state import RunState, Snapshot
from .streams import on_stream, own_stream
from .submission import outside_videos_folder
from .video_reading import SampledFrames

log = logging.getLogger(__name__)


@dataclass
class _Prepared:
    """A video after the detect thread: its crops, or the result it ends with (missing, failed, no face)."""

    filename: str
    result: VideoResult | None = None
    crops: np.ndarray | None = None
    frames: int = 0
    spans: list[Span] = field(default_factory=list)


class VideoScorer:
    """Scores videos with one detector and one ensemble; see the module docstring.

    With a ``BudgetGuard`` it asks before every video whether the run must get cheaper (fewer
    frames, then fewer models: ``RunState.cheaper``) or stop; after a stop every remaining video
    gets the fallback label with status ``out_of_time``. With ``evidence`` it keeps each video's
    frames, boxes, crops and crop probabilities in ``self.evidence`` for ``report`` (the caller
    pops them).
    """

    def __init__(self, config: InferenceConfig, detector: FaceDetector, ensemble: Ensemble, guard: BudgetGuard | None = None,
                 evidence: bool = False) -> None:
        CROP_GEOMETRIES.check(config.crop_geometry)  # a typo fails here, before any video is read
        AGGREGATIONS.check(config.aggregation)
        self.config = config
        self.state = RunState(config, ensemble)
        self.faces = FaceTracker(detector, config.detect_every)
        self.device = ensemble.device
        self.guard = guard
        self.stats = RunStats()
        self.evidence: dict[str, Evidence] | None = {} if evidence else None
        self._clock = StageClock(self.stats)
        self._frames_seen = 0
        self._cuts_left = True
        self._detect_stream, self._classify_stream = own_stream(self.device), own_stream(self.device)
        """Detection's and classification's own CUDA streams (``streams``): their kernels run side by side."""
        self._pool = CropPool(config, self._predict, self._clock, self.evidence)

    def score(self, video_dir: Path, filenames: Iterable[str]) -> Iterator[VideoResult]:
        """Yield a result for every filename (in completion order, which may differ from input order)."""
        filenames, video_dir = list(filenames), Path(video_dir)
        self._clock.start(self.device)
        self.state.check_gpu_reader(path for name in filenames if (path := self._readable(video_dir, name)) is not None)
        progress = ProgressLine(total=len(filenames), unit="videos")
        finished: set[str] = set()

        def emit(results: list[VideoResult]) -> Iterator[VideoResult]:
            for result in results:
                self.stats.counts[result.status] += 1
                self._frames_seen += result.frames
                finished.add(result.filename)
                progress.advance()
                yield result

        fetched = WatchedPrefetch(self.state, self._prepare).run((name, self._readable(video_dir, name)) for name in filenames)
        with contextlib.closing(fetched):  # on a budget stop, its threads are let go at once
            for item in fetched:
                if not self._within_budget(len(filenames)):
                    break
                yield from emit(self._take(item))
        yield from emit(self._pool.flush())
        late = [name for name in filenames if name not in finished]
        if late:
            log.warning("budget: out of time, %d videos get %.2f without being scored", len(late), self.config.fallback_label)
        yield from emit([VideoResult(name, self.config.fallback_label, "out_of_time", "time budget spent") for name in late])
        self._clock.finish(self.device)

    @staticmethod
    def _readable(video_dir: Path, name: str) -> Path | None:
        """The video's path, or None for a name outside the folder or not a file (no FIFO, device, folder or link loop)."""
        path = video_dir / name
        return path if not outside_videos_folder(name) and path.is_file() else None

    def _within_budget(self, total: int) -> bool:
        """Ask the guard, and make the run cheaper when it is too slow; False: out of time."""
        if self.guard is None:
            return True
        if self.guard.out_of_time():
            return False
        done = self.stats.videos
        if self._cuts_left and self.guard.check(done, total - done) == "slow":
            self._cuts_left = self.state.cheaper(frames_seen=max(round(self._frames_seen / max(done, 1)), 1))
            if not self._cuts_left:
                log.warning("budget: nothing left to cut; the rest falls back to %.2f at the deadline", self.config.fallback_label)
            self.guard.restart_rate(done, in_flight=self.config.prefetch_videos)
        return True

    def _take(self, item: Fetched[str, _Prepared]) -> list[VideoResult]:
        """One video back from the threads: its result, or its crops into the pool."""
        if item.timeout is not None:
            error = item.timeout
            return [fallback(item.job, self.config.fallback_label, "timeout", f"timeout: {error}", item.state, f"timeout ({error})")]
        prepared = item.prepared
        self._clock.record(prepared.spans)
        if prepared.result is not None:
            return [prepared.result]
        return self._pool.add(prepared.filename, prepared.crops, prepared.frames, item.state)

    def _prepare(self, filename: str, state: Snapshot, decoded: Decoded | None) -> _Prepared:
        """Detect thread: find the faces on the video's frames, cut the crops for ``state``'s models."""
        def ends(status: str, reason: str, said: str, frames: int = 0) -> VideoResult:
            return fallback(filename, self.config.fallback_label, status, reason, state, said, frames)

        if decoded is None and outside_videos_folder(filename):
            return _Prepared(filename, ends("outside", "outside the videos folder", "outside the videos folder, not read"))
        if decoded is None:
            return _Prepared(filename, ends("missing", "file not found", "not found on disk"))
        spans = [self._clock.span("decode", decoded.started, decoded.ended)]
        if decoded.sample is None:
            return _Prepared(filename, ends("failed", decoded.reason, f"cannot decode ({decoded.reason})"), spans=spans)
        frames = len(decoded.sample.indices)
        try:
            with self._on_detect_stream(decoded.sample):
                crops = self._crops(filename, decoded.sample, state, spans)
        except Exception as error:  # detector or crop fault on odd frames: lose one video, not the run
            said = f"face detection failed ({type(error).__name__}: {error})"
            return _Prepared(filename, ends("failed", f"detection: {error}", said, frames), spans=spans)
        if len(crops) == 0:
            return _Prepared(filename, ends("no_face", "no face detected", f"no face in {frames} sampled frames", frames), spans=spans)
        return _Prepared(filename, crops=crops, frames=frames, spans=spans)

    @contextlib.contextmanager
    def _on_detect_stream(self, sample: SampledFrames) -> Iterator[None]:
        """Detection's CUDA stream, after the decode stream's hand-off of ``sample`` (``streams``);
        synchronized on leaving, so this video's GPU work is done when it is handed on."""
        if self._detect_stream is None:
            yield
            return
        if sample.ready is not None:
            sample.ready.take(self._detect_stream)
            if self._clock.gpu is not None and sample.ready.started is not None:
                self._clock.gpu.add("decode", sample.ready.started, sample.ready.ready)
        try:
            with on_stream(self._detect_stream), self._clock.on_gpu("detect", self._detect_stream):
                yield
        finally:
            self._detect_stream.synchronize()

    def _crops(self, filename: str, sample: SampledFrames, state: Snapshot, spans: list[Span]) -> np.ndarray:
        """The video's crops at the size of ``state``'s models; the detect and crop spans go to ``spans``."""
        started = time.perf_counter()
        detections = self.faces.detect(sample.frames, sample.indices)
        detected = time.perf_counter()
        config = self.config
        crops, owners = crop_frames(sample.frames, detections, state.ensemble.crop_size, config.crop_margin, config.all_faces,
                                    config.crop_geometry, config.max_crops_per_video)
        cropped = time.perf_counter()
        if self.evidence is not None:
            self.evidence[filename] = Evidence.of(sample, detections, crops, owners)
        spans += [self._clock.span("detect", started, detected), self._clock.span("crop", detected, cropped)]
        return crops

    def _predict(self, ensemble: Ensemble, crops: np.ndarray) -> np.ndarray:
        """The ensemble on classification's own stream (in the watchdog's thread: streams are per thread)."""
        with on_stream(self._classify_stream), self._clock.on_gpu("classify", self._classify_stream):
            return ensemble.predict(crops, self.config.batch_size)
