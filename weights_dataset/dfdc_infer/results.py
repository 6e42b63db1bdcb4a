"""What scoring gives back: a result per video, and the run's counts and stage times.

``StageClock`` is the run's one clock for stage timings: each stage's work on a video (or on a
batch, for classify) is a ``Span`` from the run's start, summed per stage for the summary and kept
for the benchmark's timeline; on CUDA it also keeps the GPU's own timeline of the stage streams.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Iterable

import torch

from .run_state import Snapshot
from .streams import GpuTimeline

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


def fallback(filename: str, label: float, status: str, reason: str, state: Snapshot, said: str = "", frames: int = 0) -> VideoResult:
    """A video that gets the fallback ``label``, logged with why (``said``, else ``reason``) and the
    run state it was read under (``run_state.Snapshot``)."""
    log.warning("%s: %s -> %.2f [%s]", filename, said or reason, label, state)
    return VideoResult(filename, label, status, reason, frames)


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


class StageClock:
    """Times the stages of one run into ``stats`` (see the module docstring)."""

    def __init__(self, stats: RunStats) -> None:
        self.stats = stats
        self.started = time.perf_counter()
        self.gpu: GpuTimeline | None = None

    def start(self, device: torch.device) -> None:
        self.started = time.perf_counter()
        self.gpu = GpuTimeline(torch.cuda.current_stream(device)) if device.type == "cuda" else None

    def span(self, stage: str, start: float, end: float) -> Span:
        """``perf_counter`` times as a span from the run's start."""
        return Span(stage, start - self.started, end - self.started)

    def record(self, spans: Iterable[Span]) -> None:
        for span in spans:
            setattr(self.stats.stages, span.stage, getattr(self.stats.stages, span.stage) + span.end - span.start)
            self.stats.timeline.append(span)

    def on_gpu(self, stage: str, stream: torch.cuda.Stream | None) -> contextlib.AbstractContextManager:
        """The block's work on ``stream`` as a span of the GPU timeline (nothing off CUDA)."""
        return self.gpu.span(stage, stream) if self.gpu is not None else contextlib.nullcontext()

    def finish(self, device: torch.device) -> None:
        self.stats.seconds = time.perf_counter() - self.started
        if self.gpu is not None:
            spans, self.stats.gpu_seconds = self.gpu.finish(torch.cuda.current_stream(device))
            self.stats.gpu_timeline = [Span(*span) for span in spans]
