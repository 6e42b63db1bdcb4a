"""Pipeline and scheduling: videos in, one ``VideoResult`` per video out, never an exception.

Per video: decode the sampled frames (``video_reading``), find faces on them (``face_tracking``
running the ``face_detection`` backend on the frames that need it), crop (``cropping``); crops of
several videos are pooled so the ensemble (``models``) sees full batches; a video's label is the
aggregate of its crops (``aggregation``).

Three stages overlap, each in its own thread:

- decoding of the next videos runs in ``decode_workers`` background threads (the decoders release
  the GIL), bounded by ``prefetch_videos`` so memory stays flat however many videos there are;
- detection and cropping of video n+1 run in one detect thread (on its own CUDA stream on a GPU)
  while the main thread classifies video n's crops;
- the main thread classifies and asks the budget guard, always after video n's detection is done,
  so the guard's view of the run does not depend on thread timing.

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
import itertools
import logging
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from .aggregation import AGGREGATIONS, video_probability
from .budget import BudgetGuard
from .config import InferenceConfig
from .cropping import CROP_GEOMETRIES, crop_frames
from .face_detection import FaceDetector
from .face_tracking import FaceTracker
from .models import Ensemble
from .progress import ProgressLine
from .report import Evidence
from .streams import GpuTimeline, on_stream, own_stream
from .submission import outside_videos_folder
from .video_reading import (CPU_READERS, ReaderUnavailable, SampledFrames, VideoReadError, choose_reader, gpu_reader_mismatch,
                            read_video, reader_chain)
from .watchdog import STRIKES_PER_READER, DaemonPool, ReaderStrikes, VideoTimeout, WorkClock, call_with_timeout, wait_for

log = logging.getLogger(__name__)

STATUSES = ("scored", "no_face", "failed", "missing", "out_of_time", "outside", "timeout")


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
    """Seconds spent per stage, summed over videos (decode and detect run in background threads)."""

    decode: float = 0.0
    detect: float = 0.0
    crop: float = 0.0
    classify: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {"decode": self.decode, "detect": self.detect, "crop": self.crop, "classify": self.classify}


@dataclass(frozen=True)
class Span:
    """One stage's work on one video (or on one batch, for classify), in seconds from the run's start:
    the benchmark draws them as a timeline to show which stages overlap."""

    stage: str
    start: float
    end: float


@dataclass
class _Prepared:
    """A video after the detect thread: its crops, or the result it ends with (missing, failed, no face)."""

    filename: str
    crops: np.ndarray | None = None
    result: VideoResult | None = None
    frames: int = 0
    times: StageTimes = field(default_factory=StageTimes)
    spans: list[Span] = field(default_factory=list)
    gpu_lost: str = ""
    """Why the GPU decoder failed with a CUDA error on this video (``SampledFrames.gpu_lost``)."""


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
    timeline: list[Span] = field(default_factory=list)
    """Every stage's spans, for the benchmark's chart (a few per video: small even for 4000)."""
    gpu_timeline: list[Span] = field(default_factory=list)
    """On CUDA: when each stage's stream had work, on the GPU's clock (``streams.GpuTimeline``)."""
    gpu_seconds: float = 0.0
    """On CUDA: the run's length on the GPU's clock, which ``gpu_timeline`` is a part of."""

    @property
    def videos(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        per_video = self.seconds / max(self.videos, 1)
        stage_text = ", ".join(f"{name} {value / max(self.videos, 1):.2f}" for name, value in self.stages.as_dict().items())
        return (
            f"{self.videos} videos in {self.seconds:.1f} s ({per_video:.2f} s/video): "
            f"scored {self.counts['scored']}, no face {self.counts['no_face']}, "
            f"failed {self.counts['failed']}, missing {self.counts['missing']}, out of time {self.counts['out_of_time']}, "
            f"outside the folder {self.counts['outside']}, timeout {self.counts['timeout']}\n"
            f"stage seconds per video: {stage_text}"
        )


def _decode(path: Path, config: InferenceConfig, clock: WorkClock) -> tuple[SampledFrames | None, str, float, float]:
    """Background-thread task: (frames or None, failure reason, start and end ``perf_counter``)."""
    clock.decode_started = started = time.perf_counter()
    try:
        sample, reason = read_video(path, config), ""
    except VideoReadError as error:
        sample, reason = None, str(error)
    except Exception as error:  # a decoder bug must cost one video, not the run
        sample, reason = None, f"unexpected {type(error).__name__}: {error}"
    clock.decode_ended = ended = time.perf_counter()
    return sample, reason, started, ended


class VideoScorer:
    """Scores videos with one detector and one ensemble; see the module docstring.

    With a ``BudgetGuard`` it asks before every video whether the run must get cheaper (fewer
    frames, then fewer models) or stop; after a stop every remaining video gets the fallback label
    with status ``out_of_time``. With ``evidence`` it keeps each video's frames, boxes, crops and
    crop probabilities in ``self.evidence`` for ``report`` (the caller pops them).
    """

    def __init__(self, config: InferenceConfig, detector: FaceDetector, ensemble: Ensemble, guard: BudgetGuard | None = None,
                 evidence: bool = False) -> None:
        CROP_GEOMETRIES.check(config.crop_geometry)  # a typo fails here, before any video is read
        AGGREGATIONS.check(config.aggregation)
        self.config = replace(config, reader=choose_reader(config.reader, config.device))
        self.faces = FaceTracker(detector, config.detect_every)
        self.ensemble = ensemble
        self.guard = guard
        self.stats = RunStats()
        self._frames_seen = 0
        self._cuts_left = True
        self._started = time.perf_counter()
        self._strikes = ReaderStrikes()
        self.evidence: dict[str, Evidence] | None = {} if evidence else None
        self._detect_stream, self._classify_stream = own_stream(ensemble.device), own_stream(ensemble.device)
        """Detection's and classification's own CUDA streams (``streams``): their kernels run side by side."""
        self._gpu: GpuTimeline | None = None

    def score(self, video_dir: Path, filenames: Iterable[str]) -> Iterator[VideoResult]:
        """Yield a result for every filename (in completion order, which may differ from input order)."""
        filenames = list(filenames)
        self._started = started = time.perf_counter()
        device = self.ensemble.device
        self._gpu = GpuTimeline(torch.cuda.current_stream(device)) if device.type == "cuda" else None
        self._check_gpu_reader(Path(video_dir), filenames)
        progress = ProgressLine(total=len(filenames), unit="videos")
        pending: list[_Pending] = []
        finished: set[str] = set()

        def emit(results: list[VideoResult]) -> Iterator[VideoResult]:
            for result in results:
                self.stats.counts[result.status] += 1
                self._frames_seen += result.frames
                finished.add(result.filename)
                progress.advance()
                yield result

        prepared_videos = self._prepared(Path(video_dir), filenames)
        with contextlib.closing(prepared_videos):  # on a budget stop, its threads are let go at once
            for prepared in prepared_videos:
                go_on, flushed = self._within_budget(len(filenames), pending)
                yield from emit(flushed)
                if not go_on:
                    break
                yield from emit(self._take(prepared, pending))
        yield from emit(self._classify(pending))
        late = [name for name in filenames if name not in finished]
        if late:
            log.warning("budget: out of time, %d videos get %.2f without being scored", len(late), self.config.fallback_label)
        yield from emit([VideoResult(name, self.config.fallback_label, "out_of_time", "time budget spent") for name in late])
        self.stats.seconds = time.perf_counter() - started
        if self._gpu is not None:
            spans, self.stats.gpu_seconds = self._gpu.finish(torch.cuda.current_stream(device))
            self.stats.gpu_timeline = [Span(*span) for span in spans]

    def _check_gpu_reader(self, video_dir: Path, filenames: list[str], tries: int = 3) -> None:
        """Before trusting ``nvdec`` with the run, compare it with decord on the first readable video
        (of the first ``tries`` on disk); if none can be compared, the run decodes on the CPU."""
        if self.config.reader != "nvdec":
            return
        problem = "no video to check it on"
        on_disk = (video_dir / name for name in filenames if not outside_videos_folder(name) and (video_dir / name).is_file())
        for path in itertools.islice(on_disk, tries):
            try:
                problem = call_with_timeout(gpu_reader_mismatch, self.config.video_timeout, path, self.config, stage="the nvdec check")
                break
            except (VideoReadError, ReaderUnavailable, VideoTimeout) as error:
                problem = f"cannot compare on {path.name}: {error}"
        if problem is not None:
            cpu = choose_reader(CPU_READERS[0])  # the fastest CPU reader that runs here
            log.warning("GPU decode off for this run (%s); decoding with %s on the CPU", problem, cpu)
            self.config = replace(self.config, reader=cpu)

    def _within_budget(self, total: int, pending: list[_Pending]) -> tuple[bool, list[VideoResult]]:
        """Ask the guard and apply its cut (fewer frames, then one model less).

        Returns (go on?, results of pooled crops classified before a model was dropped).
        """
        flushed: list[VideoResult] = []
        if self.guard is None:
            return True, flushed
        if self.guard.out_of_time():
            return False, flushed
        done = self.stats.videos
        if self._cuts_left and self.guard.check(done, total - done) == "slow":
            frames_now = self.config.frames_per_video or max(round(self._frames_seen / max(done, 1)), 1)
            if frames_now > self.config.min_frames_per_video:
                fewer = max(frames_now // 2, self.config.min_frames_per_video)
                log.warning("budget: sampling %d frames per video instead of %d", fewer, frames_now)
                self.config = replace(self.config, frames_per_video=fewer)
            elif len(self.ensemble.models) > 1:
                flushed = self._classify(pending)  # pooled crops were cut for the current models
                dropped = self.ensemble.drop_slowest()
                log.warning("budget: dropping the slowest model, %s@%d", dropped.arch, dropped.input_size)
            else:
                log.warning("budget: nothing left to cut; the rest falls back to %.2f at the deadline", self.config.fallback_label)
                self._cuts_left = False
            self.guard.restart_rate(done, in_flight=self.config.prefetch_videos)
        return True, flushed

    def _prepared(self, video_dir: Path, filenames: list[str]) -> Iterator[_Prepared]:
        """Each video detected and cropped, in order. Every video is queued for the detect thread
        as soon as its decoding is submitted, so detection runs ahead while the main thread
        classifies instead of waiting to be asked. At most ``prefetch_videos`` videos are in flight
        (decoding, decoded or in detection), as many as the budget guard lets through unmeasured
        after a cut; the guard is asked as each is handed out, in order.

        A video whose work runs past ``video_timeout`` is given up (``timeout``): the threads are
        abandoned, since one is stuck, and the videos queued behind it start again on new ones."""
        in_flight: deque[tuple[str, WorkClock, Future]] = deque()
        names = iter(filenames)
        pools = self._pools()
        try:
            while True:
                while len(in_flight) < self.config.prefetch_videos and (name := next(names, None)) is not None:
                    in_flight.append(self._submit(pools, video_dir, name))
                if not in_flight:
                    return
                name, clock, work = in_flight.popleft()
                try:
                    prepared = wait_for(work, clock, self.config.video_timeout)
                except VideoTimeout as error:
                    prepared = self._timed_out(name, clock, error)
                    for pool in pools:
                        pool.abandon()
                    pools = self._pools()
                    in_flight = deque(self._submit(pools, video_dir, queued) for queued, _, _ in in_flight)
                self._record(prepared)
                yield prepared
        finally:
            for pool in pools:
                pool.abandon()

    def _pools(self) -> tuple[DaemonPool, DaemonPool]:
        """(decode threads, the detect thread)."""
        return DaemonPool(self.config.decode_workers, "decode"), DaemonPool(1, "detect")

    def _submit(self, pools: tuple[DaemonPool, DaemonPool], video_dir: Path, name: str) -> tuple[str, WorkClock, Future]:
        decoders, detection = pools
        clock = WorkClock()
        path = video_dir / name
        readable = not outside_videos_folder(name) and path.is_file()  # is_file: no FIFO, device, folder or link loop
        decoded = decoders.submit(_decode, path, self.config, clock) if readable else None
        return name, clock, detection.submit(self._prepare, name, decoded, clock)

    def _timed_out(self, name: str, clock: WorkClock, error: VideoTimeout) -> _Prepared:
        """The fallback for a video given up; a reader's third decode timeout switches the reader."""
        log.warning("%s: timeout (%s) -> %.2f", name, error, self.config.fallback_label)
        reader = self.config.reader
        if clock.stage() == "decoding" and self._strikes.strike(reader):
            later = reader_chain(reader)[1:]
            if later:
                self.config = replace(self.config, reader=choose_reader(later[0], self.config.device))
                log.warning("watchdog: %d videos timed out decoding with %s; the rest of the run decodes with %s",
                            STRIKES_PER_READER, reader, self.config.reader)
            else:
                log.warning("watchdog: %d videos timed out decoding with %s, the last reader of the chain; it stays",
                            STRIKES_PER_READER, reader)
        return _Prepared(name, result=VideoResult(name, self.config.fallback_label, "timeout", f"timeout: {error}"))

    def _prepare(self, filename: str, decoded: Future | None, clock: WorkClock) -> _Prepared:
        """Detect thread: wait for the video's frames, find the faces, cut the crops."""
        fallback = self.config.fallback_label
        if decoded is None and outside_videos_folder(filename):
            log.warning("%s: outside the videos folder, not read -> %.2f", filename, fallback)
            return _Prepared(filename, result=VideoResult(filename, fallback, "outside", "outside the videos folder"))
        if decoded is None:
            log.warning("%s: not found on disk -> %.2f", filename, fallback)
            return _Prepared(filename, result=VideoResult(filename, fallback, "missing", "file not found"))
        sample, reason, started, ended = decoded.result()
        clock.detect_started = time.perf_counter()
        prepared = _Prepared(filename, times=StageTimes(decode=ended - started), spans=[self._span("decode", started, ended)])
        if sample is None:
            log.warning("%s: cannot decode (%s) -> %.2f", filename, reason, fallback)
            prepared.result = VideoResult(filename, fallback, "failed", reason)
            return prepared
        prepared.frames, prepared.gpu_lost = len(sample.indices), sample.gpu_lost
        try:
            with self._on_detect_stream(sample):
                prepared.crops = self._crops(sample, prepared)
        except Exception as error:  # detector or crop fault on odd frames: lose one video, not the run
            log.warning("%s: face detection failed (%s: %s) -> %.2f", filename, type(error).__name__, error, fallback)
            prepared.result = VideoResult(filename, fallback, "failed", f"detection: {error}", frames=prepared.frames)
            return prepared
        if len(prepared.crops) == 0:
            log.warning("%s: no face in %d sampled frames -> %.2f", filename, prepared.frames, fallback)
            prepared.result = VideoResult(filename, fallback, "no_face", "no face detected", frames=prepared.frames)
        return prepared

    @contextlib.contextmanager
    def _on_detect_stream(self, sample: SampledFrames) -> Iterator[None]:
        """Detection's CUDA stream, after the decode stream's hand-off of ``sample`` (``streams``);
        synchronized on leaving, so this video's GPU work is done when it is handed on."""
        if self._detect_stream is None:
            yield
            return
        if sample.ready is not None:
            sample.ready.take(self._detect_stream)
            if self._gpu is not None and sample.ready.started is not None:
                self._gpu.add("decode", sample.ready.started, sample.ready.ready)
        try:
            with on_stream(self._detect_stream), self._gpu_span("detect", self._detect_stream):
                yield
        finally:
            self._detect_stream.synchronize()

    def _gpu_span(self, stage: str, stream: torch.cuda.Stream) -> contextlib.AbstractContextManager:
        return self._gpu.span(stage, stream) if self._gpu is not None else contextlib.nullcontext()

    def _predict(self, crops: np.ndarray, batch_size: int) -> np.ndarray:
        """The ensemble on classification's own stream (in the watchdog's thread: streams are per thread)."""
        with on_stream(self._classify_stream), self._gpu_span("classify", self._classify_stream):
            return self.ensemble.predict(crops, batch_size)

    def _crops(self, sample: SampledFrames, prepared: _Prepared) -> np.ndarray:
        started = time.perf_counter()
        detections = self.faces.detect(sample.frames, sample.indices)
        detected = time.perf_counter()
        config = self.config
        crops, owners = crop_frames(sample.frames, detections, self.ensemble.crop_size, config.crop_margin, config.all_faces,
                                    config.crop_geometry, config.max_crops_per_video)
        cropped = time.perf_counter()
        if self.evidence is not None:
            self.evidence[prepared.filename] = Evidence.of(sample, detections, crops, owners)
        prepared.times.detect, prepared.times.crop = detected - started, cropped - detected
        prepared.spans += [self._span("detect", started, detected), self._span("crop", detected, cropped)]
        return crops

    def _span(self, stage: str, start: float, end: float) -> Span:
        return Span(stage, start - self._started, end - self._started)

    def _record(self, prepared: _Prepared) -> None:
        for stage, seconds in prepared.times.as_dict().items():
            setattr(self.stats.stages, stage, getattr(self.stats.stages, stage) + seconds)
        self.stats.timeline += prepared.spans
        if prepared.gpu_lost and self.config.reader == "nvdec":  # the videos already in flight still fall back one by one
            cpu = choose_reader(CPU_READERS[0])
            log.warning("GPU decode off for the rest of the run (CUDA error on %s: %s); decoding with %s on the CPU",
                        prepared.filename, prepared.gpu_lost, cpu)
            self.config = replace(self.config, reader=cpu)

    def _take(self, prepared: _Prepared, pending: list[_Pending]) -> list[VideoResult]:
        """Pool one prepared video's crops; classify the pool once it fills a batch."""
        if prepared.result is not None:
            return [prepared.result]
        results = []
        if pending and pending[0].crops.shape[1:] != prepared.crops.shape[1:]:  # cut before the budget dropped a model
            results = self._classify(pending)
        pending.append(_Pending(prepared.filename, prepared.crops, prepared.frames))
        if sum(len(item.crops) for item in pending) >= self.config.batch_size:
            results += self._classify(pending)
        return results

    def _classify(self, pending: list[_Pending]) -> list[VideoResult]:
        """Score all pooled crops in shared batches, then give each pooled video its label."""
        if not pending:
            return []
        started = time.perf_counter()
        try:
            probabilities = call_with_timeout(self._predict, self.config.video_timeout * len(pending),  # each video its own bound
                                              np.concatenate([item.crops for item in pending]), self.config.batch_size)
        except VideoTimeout as error:
            for item in pending:
                log.warning("%s: timeout (%s) -> %.2f", item.filename, error, self.config.fallback_label)
            results = [VideoResult(item.filename, self.config.fallback_label, "timeout", f"timeout: {error}", item.frames)
                       for item in pending]
        except Exception as error:  # e.g. out of memory on a huge batch: these videos fall back
            log.warning("classification failed for %d videos (%s: %s)", len(pending), type(error).__name__, error)
            results = [
                VideoResult(item.filename, self.config.fallback_label, "failed", f"classification: {error}", item.frames)
                for item in pending
            ]
        else:
            bounds = np.cumsum([0] + [len(item.crops) for item in pending])
            if self.evidence is not None:
                models = tuple(f"{spec.arch}@{spec.input_size}" for spec in self.ensemble.specs)
                for item, start, stop in zip(pending, bounds[:-1], bounds[1:]):
                    if item.filename in self.evidence:
                        self.evidence[item.filename].probabilities = probabilities[:, start:stop]
                        self.evidence[item.filename].models = models
            results = [
                VideoResult(
                    item.filename,
                    video_probability(probabilities[:, start:stop], self.config.clip_min, self.config.clip_max, self.config.aggregation),
                    "scored",
                    frames=item.frames,
                    faces=len(item.crops),
                )
                for item, start, stop in zip(pending, bounds[:-1], bounds[1:])
            ]
        ended = time.perf_counter()
        self.stats.stages.classify += ended - started
        self.stats.timeline.append(self._span("classify", started, ended))
        pending.clear()
        return results
