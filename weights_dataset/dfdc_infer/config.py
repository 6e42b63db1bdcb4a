"""The one configuration object passed down through every stage.

Defaults are the competition's (DFDC write-ups): every 10th frame, the largest face, crops enlarged
1.3x, predictions clipped to [0.01, 0.99], 0.5 for any video we cannot score. The CLI maps its
flags onto these fields; nothing reads settings from anywhere else.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any


def setting(default: Any, help: str) -> Any:
    """A config field with its help text, which ``add_config_arguments`` turns into a CLI flag."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class InferenceConfig:
    """Everything that changes what the pipeline computes or how it schedules the work."""

    # Video reading
    reader: str = setting("decord", "Decode backend by name (``video_reading.READERS``): ``decord`` (default), ``opencv``.")
    frame_step: int = setting(10, "Sample every Nth frame (0, N, 2N, ...). Ignored when ``frames_per_video`` is set.")
    frames_per_video: int | None = setting(None, "If set, sample this many evenly spaced frames instead of every ``frame_step``-th.")
    decode_workers: int = setting(2, "Background threads decoding the next videos while faces are detected and classified.")
    prefetch_videos: int = setting(4, "At most this many decoded videos wait in memory (bounds RAM whatever the video count).")

    # Face detection
    detector: str = setting("mtcnn", "Face detector backend by name (``face_detection.DETECTORS``): ``mtcnn`` or ``haar``.")
    detector_scale: float = setting(0.5, "Frames are resized by this factor before detection; boxes are mapped back to full size.")
    min_face_size: int = setting(40, "Smallest face side to look for, in full-resolution pixels.")
    detector_thresholds: tuple[float, float, float] = setting((0.6, 0.7, 0.8), "MTCNN's per-stage face-probability thresholds (P-, R-, O-Net).")
    detector_batch_size: int = setting(16, "Frames passed to the detector at once.")

    # Cropping
    all_faces: bool = setting(False, "Score every detected face per frame instead of only the largest one.")
    crop_margin: float = setting(1.3, "The square crop's side is this factor times the face box's longer side.")

    # Classification and aggregation
    batch_size: int = setting(32, "Face crops per model forward pass (crops from several videos share a batch).")
    clip_min: float = setting(0.01, "Lower clip of every submitted label (bounds logloss per video).")
    clip_max: float = setting(0.99, "Upper clip of every submitted label.")
    fallback_label: float = setting(0.5, "Written for a video that fails to decode, has no face, or is missing on disk.")

    # Time budget (see budget.py)
    budget_hours: float = setting(9.0, "Kaggle's run-time limit; the run is planned to finish inside it.")
    budget_margin_hours: float = setting(0.5, "Safety margin: every row is written by budget_hours minus this.")
    min_frames_per_video: int = setting(4, "The budget guard never samples fewer frames per video than this.")

    # Hardware
    device: str = setting("auto", "``auto`` picks CUDA when available, else CPU; or any torch device string.")
    fp16: bool = setting(True, "Use fp16 autocast and channels_last on CUDA (ignored on CPU).")

    def __post_init__(self) -> None:
        if self.frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {self.frame_step}")
        if self.frames_per_video is not None and self.frames_per_video < 1:
            raise ValueError(f"frames_per_video must be >= 1, got {self.frames_per_video}")
        if not 0.0 < self.detector_scale <= 1.0:
            raise ValueError(f"detector_scale must be in (0, 1], got {self.detector_scale}")
        if self.crop_margin < 1.0:
            raise ValueError(f"crop_margin must be >= 1, got {self.crop_margin}")
        if not 0.0 <= self.clip_min < self.clip_max <= 1.0:
            raise ValueError(f"need 0 <= clip_min < clip_max <= 1, got {self.clip_min}, {self.clip_max}")
        if not 0 <= self.budget_margin_hours < self.budget_hours:
            raise ValueError(f"need 0 <= budget_margin_hours < budget_hours, got {self.budget_margin_hours}, {self.budget_hours}")
        if min(self.batch_size, self.detector_batch_size, self.min_frames_per_video, self.decode_workers, self.prefetch_videos) < 1:
            raise ValueError("batch sizes, decode_workers and prefetch_videos must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (packaging writes it into the manifest)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "InferenceConfig":
        """Rebuild from ``to_dict`` output (e.g. a manifest); missing keys keep their defaults."""
        return cls().updated(values)

    def updated(self, values: dict[str, Any]) -> "InferenceConfig":
        """A copy with ``values`` changed; unknown keys are an error, not silently dropped."""
        unknown = set(values) - {f.name for f in fields(self)}
        if unknown:
            raise ValueError(f"unknown InferenceConfig fields: {sorted(unknown)}")
        if "detector_thresholds" in values:
            values = {**values, "detector_thresholds": tuple(values["detector_thresholds"])}
        return replace(self, **values)


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per ``InferenceConfig`` field (``frame_step`` -> ``--frame-step``), default None.

    Flags left unset keep the dataclass default, so the defaults live in one place only.
    """
    group = parser.add_argument_group("inference settings")
    for item in fields(InferenceConfig):
        flag = "--" + item.name.replace("_", "-")
        help_text = f"{item.metadata['help'].replace('``', '')} (default: {_default(item)})"
        if isinstance(_default(item), bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif isinstance(_default(item), tuple):
            group.add_argument(flag, type=float, nargs=len(_default(item)), default=None, metavar="X", help=help_text)
        else:
            kind = int if item.name == "frames_per_video" else type(_default(item))
            group.add_argument(flag, type=kind, default=None, help=help_text)


def config_from_args(args: argparse.Namespace, base: InferenceConfig | None = None) -> InferenceConfig:
    """``base`` (default: the competition defaults) with every flag the user did set."""
    chosen = {item.name: getattr(args, item.name) for item in fields(InferenceConfig) if getattr(args, item.name, None) is not None}
    return (base or InferenceConfig()).updated(chosen)


def _default(item: Field) -> Any:
    return item.default if item.default is not MISSING else None
