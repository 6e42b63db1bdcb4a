"""CUDA streams: decode, detection and classification each queue on their own, and every hand-off
of GPU memory between them is ordered.

- Decode: each decode thread has its own stream (``NvdecReader``); the NV12 -> RGB conversion and
  the rotation upright (``upright``) run on it, then it records a ``HandOff``.
- Decode -> detection: detection's stream waits for the hand-off's event before its first kernel
  (``HandOff.take``) and the frames are marked as used on that stream (``record_stream``), so the
  caching allocator cannot give their memory to the next video's decode while detection still reads
  it (without this, detection could read another video's pixels, and nothing would say so).
- Detection -> classification: the crops leave the GPU as a host array (``crop_frames`` copies
  them down, which waits for detection's stream) and the ensemble copies them up on its own stream;
  the copies themselves order it. Its probabilities come down the same way.

Classification no longer shares the default stream with decoding, so a decode thread's
synchronize waits for its own work only, and per-model timings (which ``without_slowest`` uses) hold
only model work. ``GpuTimeline`` times each stage's stream work with CUDA events on the GPU's own
clock, for the benchmark's idle share. Everything here takes streams, events and tensors by the
torch methods it calls, so the CPU tests check the ordering with stand-ins that record the calls.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch

Event = Any
"""A ``torch.cuda.Event`` (or a stand-in with ``synchronize`` and ``elapsed_time``)."""

Stream = Any
"""A ``torch.cuda.Stream`` (or a stand-in with ``record_event`` and ``wait_event``)."""


def timing_event() -> Event:
    """A CUDA event that can be timed (created lazily: safe to build without a GPU)."""
    return torch.cuda.Event(enable_timing=True)


def own_stream(device: torch.device) -> torch.cuda.Stream | None:
    """A new stream on ``device`` for one stage, or None on the CPU (work runs in order there)."""
    return torch.cuda.Stream(device) if device.type == "cuda" else None


@contextlib.contextmanager
def on_stream(stream: Stream | None) -> Iterator[None]:
    """Queue the block's CUDA work on ``stream`` (this thread only); nothing to do for None."""
    if stream is None:
        yield
        return
    with torch.cuda.stream(stream):
        yield


@dataclass(frozen=True)
class HandOff:
    """Tensors a producer stream wrote, with the event after its last write to them.

    ``started`` marks the producer's first work on them, so the timeline can show it.
    """

    tensors: tuple[torch.Tensor, ...]
    ready: Event
    started: Event | None = None

    @classmethod
    def record(cls, stream: Stream, tensors: Sequence[torch.Tensor], started: Event | None = None,
               new_event: Callable[[], Event] = timing_event) -> "HandOff":
        """Call after queueing the last write to ``tensors`` on ``stream``."""
        return cls(tuple(tensors), stream.record_event(new_event()), started)

    def take(self, stream: Stream) -> None:
        """Before ``stream`` uses the tensors: it waits for the producer, and their memory stays
        theirs until ``stream``'s work on them is done."""
        stream.wait_event(self.ready)
        for tensor in self.tensors:
            tensor.record_stream(stream)


class GpuTimeline:
    """When each stage's stream had work, in seconds on the GPU's clock since the timeline began.

    Each span is a pair of events on the stage's stream: the first completes when the stream
    reaches the stage's work, the second when that work is done, so NVDEC decoding, kernels queued
    behind each other and transfers count as busy, and host-side waiting does not. Thread-safe:
    decode, detect and classify threads add spans as they go.
    """

    def __init__(self, stream: Stream, new_event: Callable[[], Event] = timing_event) -> None:
        self._new_event = new_event
        self._origin = stream.record_event(new_event())
        self._marks: list[tuple[str, Event, Event]] = []
        self._lock = threading.Lock()

    def add(self, stage: str, start: Event, end: Event) -> None:
        with self._lock:
            self._marks.append((stage, start, end))

    @contextlib.contextmanager
    def span(self, stage: str, stream: Stream | None) -> Iterator[None]:
        """Time the block's work on ``stream`` as ``stage`` (nothing for None: a CPU stage)."""
        if stream is None:
            yield
            return
        start = stream.record_event(self._new_event())
        try:
            yield
        finally:
            self.add(stage, start, stream.record_event(self._new_event()))

    def finish(self, stream: Stream) -> tuple[list[tuple[str, float, float]], float]:
        """((stage, start, end) seconds per span, seconds from the origin to now on ``stream``);
        waits for every recorded event."""
        end = stream.record_event(self._new_event())
        end.synchronize()
        with self._lock:
            marks = list(self._marks)
        spans = []
        for stage, start, stop in marks:
            stop.synchronize()
            spans.append((stage, self._origin.elapsed_time(start) / 1000, self._origin.elapsed_time(stop) / 1000))
        return sorted(spans, key=lambda span: span[1]), self._origin.elapsed_time(end) / 1000
