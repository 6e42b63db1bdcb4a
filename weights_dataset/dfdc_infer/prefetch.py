"""Videos read ahead in background threads, under the watchdog: how prediction and extraction read.

Two stages run off the caller's thread: decoding in ``decode_workers`` threads, then the caller's
``prepare`` (prediction: find the faces and cut the crops; extraction: find the faces) in one
thread, video after video. At most ``prefetch_videos`` videos are in flight, so memory stays flat
however many there are. ``ahead`` says when a video's ``prepare`` is queued: at once, so it runs
while the caller works on the video before (prediction), or only when the caller asks for the
video, so it sees everything the caller recorded about the videos before (extraction: a fake is
cut with its original's boxes).

Each video is read under the run state's ``Snapshot`` taken when it is queued (``run_state``), and
its decoding and ``prepare`` together may take ``video_timeout`` seconds of work (``watchdog``):
past that the caller gets the video back with its ``VideoTimeout`` instead, the stuck threads are
abandoned, and the videos queued behind it start again on new ones under the then current state.
A reader's decode timeouts and the GPU decoder's CUDA errors are reported to the run state, which
may move the rest of the run to another reader.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Generic, Iterable, Iterator, TypeVar

from .run_state import RunState, Snapshot
from .video_reading import SampledFrames, VideoReadError, read_frames
from .watchdog import DaemonPool, VideoTimeout, WorkClock, wait_for

Job = TypeVar("Job")
Prepared = TypeVar("Prepared")


@dataclass(frozen=True)
class Decoded:
    """One video's decoding: its sampled frames, or why there are none, and when it ran (``perf_counter``)."""

    sample: SampledFrames | None
    reason: str
    started: float
    ended: float


@dataclass(frozen=True)
class Fetched(Generic[Job, Prepared]):
    """A video back from the threads: what ``prepare`` made of it, or the timeout it ran into."""

    job: Job
    state: Snapshot
    prepared: Prepared | None = None
    timeout: VideoTimeout | None = None


@dataclass
class _InFlight:
    job: Job
    path: Path | None
    state: Snapshot
    clock: WorkClock
    decoded: Future | None
    prepared: Future | None


class WatchedPrefetch(Generic[Job, Prepared]):
    """Decodes and prepares videos ahead of the caller, giving up on one that runs past the timeout.

    ``prepare(job, state, decoded)`` gets ``None`` for a video that was not read (no path).
    """

    def __init__(self, state: RunState, prepare: Callable[[Job, Snapshot, Decoded | None], Prepared], ahead: bool = True) -> None:
        self.state = state
        self.config = state.config
        self.prepare = prepare
        self.ahead = ahead

    def run(self, jobs: Iterable[tuple[Job, Path | None]]) -> Iterator[Fetched[Job, Prepared]]:
        """Each job back in order; ``path`` None: the job is not read (missing, not allowed)."""
        in_flight: deque[_InFlight] = deque()
        jobs = iter(jobs)
        pools = self._pools()
        try:
            while True:
                while len(in_flight) < max(self.config.prefetch_videos, 1) and (job := next(jobs, None)) is not None:
                    in_flight.append(self._submit(pools, *job))
                if not in_flight:
                    return
                work = in_flight.popleft()
                if work.prepared is None:
                    work.prepared = pools[1].submit(self._prepare, work)
                try:
                    fetched = Fetched(work.job, work.state, prepared=wait_for(work.prepared, work.clock, self.config.video_timeout))
                except VideoTimeout as error:
                    fetched = Fetched(work.job, work.state, timeout=error)
                    if work.clock.stage() == "decoding":
                        self.state.decode_timed_out(work.state.reader)  # before the queued videos start again
                    for pool in pools:
                        pool.abandon()
                    pools = self._pools()
                    in_flight = deque(self._submit(pools, queued.job, queued.path) for queued in in_flight)
                yield fetched
        finally:
            for pool in pools:
                pool.abandon()

    def _pools(self) -> tuple[DaemonPool, DaemonPool]:
        """(decode threads, the prepare thread)."""
        return DaemonPool(max(self.config.decode_workers, 1), "decode"), DaemonPool(1, "prepare")

    def _submit(self, pools: tuple[DaemonPool, DaemonPool], job: Job, path: Path | None) -> _InFlight:
        state, clock = self.state.snapshot(), WorkClock()
        decoded = pools[0].submit(self._decode, path, state, clock) if path is not None else None
        work = _InFlight(job, path, state, clock, decoded, None)
        if self.ahead:
            work.prepared = pools[1].submit(self._prepare, work)
        return work

    def _decode(self, path: Path, state: Snapshot, clock: WorkClock) -> Decoded:
        """Decode thread: the video's frames under ``state``, or why not; never raises."""
        clock.decode_started = started = time.perf_counter()
        try:
            sample, reason = read_frames(path, state.sampling, state.reader, self.config.device), ""
        except VideoReadError as error:
            sample, reason = None, str(error)
        except Exception as error:  # a decoder bug must cost one video, not the run
            sample, reason = None, f"unexpected {type(error).__name__}: {error}"
        clock.decode_ended = ended = time.perf_counter()
        if sample is not None and sample.gpu_lost:  # the videos already in flight still fall back one by one
            self.state.leave_gpu(f"for the rest of the run (CUDA error on {path.name}: {sample.gpu_lost})")
        return Decoded(sample, reason, started, ended)

    def _prepare(self, work: _InFlight) -> Prepared:
        """Prepare thread: wait for the video's decoding, then the caller's ``prepare``."""
        decoded = work.decoded.result() if work.decoded is not None else None
        work.clock.detect_started = time.perf_counter()
        return self.prepare(work.job, work.state, decoded)
