"""The CUDA stream ordering (``streams``) and its wiring in the pipeline, checked on the CPU.

Stand-in streams, events and tensors record every call into one journal, so the tests read the
order in which the pipeline makes the hand-offs: the decode stream's event before detection's
wait, the frames kept for detection's stream, detection and classification each inside their own
stream, and the GPU timeline built from events on those streams.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import pytest
import torch

from dfdc_infer import pipeline
from dfdc_infer.config import InferenceConfig
from dfdc_infer.face_detection import create_detector
from dfdc_infer.models import Ensemble
from dfdc_infer.streams import GpuTimeline, HandOff
from dfdc_infer.video_reading import READERS, FrameSampling, SampledFrames, create_reader


class FakeEvent:
    def __init__(self, journal: list[str], name: str, at: float = 0.0) -> None:
        self.journal, self.name, self.at = journal, name, at

    def synchronize(self) -> None:
        self.journal.append(f"sync {self.name}")

    def elapsed_time(self, other: "FakeEvent") -> float:
        return (other.at - self.at) * 1000  # milliseconds, as CUDA's


class FakeStream:
    """Records ``record_event``, ``wait_event`` and ``synchronize``; events get increasing times."""

    def __init__(self, journal: list[str], name: str) -> None:
        self.journal, self.name, self.clock = journal, name, [0.0]

    def record_event(self, event: FakeEvent) -> FakeEvent:
        self.clock[0] += 1.0
        event.name, event.at = f"{self.name}@{self.clock[0]:g}", self.clock[0]
        self.journal.append(f"record {event.name}")
        return event

    def wait_event(self, event: FakeEvent) -> None:
        self.journal.append(f"{self.name} waits {event.name}")

    def synchronize(self) -> None:
        self.journal.append(f"sync {self.name}")


class FakeTensor:
    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    def record_stream(self, stream: FakeStream) -> None:
        self.journal.append(f"frames kept for {stream.name}")


def test_a_hand_off_makes_the_consumer_wait_for_the_producers_event_and_keeps_the_memory() -> None:
    journal: list[str] = []
    decode, detect = FakeStream(journal, "decode"), FakeStream(journal, "detect")
    handoff = HandOff.record(decode, [FakeTensor(journal), FakeTensor(journal)], new_event=lambda: FakeEvent(journal, ""))
    assert journal == ["record decode@1"]
    handoff.take(detect)
    assert journal == ["record decode@1", "detect waits decode@1", "frames kept for detect", "frames kept for detect"]


def test_the_gpu_timeline_places_each_stages_events_on_one_clock() -> None:
    journal: list[str] = []
    main, decode, detect = (FakeStream(journal, name) for name in ("main", "decode", "detect"))
    for stream in (decode, detect):
        stream.clock = main.clock  # one device, one clock
    timeline = GpuTimeline(main, new_event=lambda: FakeEvent(journal, ""))  # origin at 1 s
    started = decode.record_event(FakeEvent(journal, ""))  # 2 s
    handoff = HandOff.record(decode, [], started, new_event=lambda: FakeEvent(journal, ""))  # 3 s
    timeline.add("decode", handoff.started, handoff.ready)
    with timeline.span("detect", detect):  # 4 s .. 5 s
        pass
    with timeline.span("crop on the CPU", None):
        pass
    spans, seconds = timeline.finish(main)  # 6 s
    assert spans == [("decode", 1.0, 2.0), ("detect", 3.0, 4.0)]
    assert seconds == 5.0
    assert journal[-3:] == ["sync main@6", "sync decode@3", "sync detect@5"], "every event waited for before it is read"


@contextlib.contextmanager
def journalled(journal: list[str], stream: FakeStream | None) -> Iterator[None]:
    """Stands in for ``streams.on_stream``: the block's work "on" ``stream``."""
    journal.append(f"enter {getattr(stream, 'name', None)}")
    yield
    journal.append(f"leave {getattr(stream, 'name', None)}")


def test_the_pipeline_hands_decoded_frames_to_detection_then_classifies_on_its_own_stream(
    sample_data: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal: list[str] = []
    streams = iter([FakeStream(journal, "detect"), FakeStream(journal, "classify")])
    monkeypatch.setattr(pipeline, "own_stream", lambda device: next(streams))
    monkeypatch.setattr(pipeline, "on_stream", lambda stream: journalled(journal, stream))

    class HandingOff:
        """A GPU reader stand-in: decord's frames, with a hand-off recorded on a decode stream."""

        def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
            sample = create_reader("decord").read(path, sampling)
            journal.append(f"decode {path.name}")
            ready = HandOff.record(FakeStream(journal, "decode"), [FakeTensor(journal)], new_event=lambda: FakeEvent(journal, ""))
            return SampledFrames(torch.from_numpy(sample.frames), sample.indices, sample.total_frames, "nvdec", ready=ready)

    monkeypatch.setitem(READERS, "nvdec", HandingOff)
    detector, ensemble = create_detector(InferenceConfig()), Ensemble.load([checkpoint], torch.device("cpu"))
    detect, predict = detector.detect, ensemble.predict
    monkeypatch.setattr(detector, "detect", lambda *args, **kwargs: journal.append("detect") or detect(*args, **kwargs))
    monkeypatch.setattr(ensemble, "predict", lambda *args: journal.append("classify") or predict(*args))
    scorer = pipeline.VideoScorer(InferenceConfig(reader="nvdec", decode_workers=1, detect_every=1), detector, ensemble)
    monkeypatch.setattr(scorer.state, "check_gpu_reader", lambda *args: None)
    faces = json.loads((sample_data / "faces.json").read_text())
    name = next(name for name, frames in sorted(faces.items()) if all(frames))
    results = list(scorer.score(sample_data / "test_videos", [name]))
    assert results[0].status == "scored"
    until_detect = journal[: journal.index("sync detect") + 1]
    assert until_detect[:4] == [f"decode {name}", "record decode@1", "detect waits decode@1", "frames kept for detect"]
    assert until_detect[4] == "enter detect" and until_detect[-2:] == ["leave detect", "sync detect"]
    assert set(until_detect[5:-2]) == {"detect"}, "every detector call inside detection's stream"
    assert journal[len(until_detect):] == ["enter classify", "classify", "leave classify"]
