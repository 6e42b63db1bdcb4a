"""The one configuration object passed down through every stage, and the named presets of it.

The defaults are the ``seed`` preset, the recipe this product started from: every 10th frame, the
largest face, square crops enlarged 1.3x, the mean over crops and models, predictions clipped to
[0.01, 0.99], 0.5 for any video we cannot score. A preset (``PRESETS``, ``--preset NAME``) is a
named bundle of field values, e.g. ``dfdc-1st``, the DFDC 1st place's published inference recipe;
flags given on the command line override it. The CLI maps its flags onto these fields; nothing
reads settings from anywhere else, with one documented exception: the default of ``--cache-dir``
(``cache_dir``, where files fetched at run time are kept: ``fetched_files``) is the environment
variable ``DFDC_CACHE_DIR`` when set, else ``~/.cache/dfdc_infer``, read by ``default_cache_dir``
alone when a config is made.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

from .registry import Registry

Config = TypeVar("Config")


def setting(default: Any, help: str, *, kind: type | None = None, parse: Callable[[str], Any] | None = None,
            choices: tuple[str, ...] | None = None, metavar: str | None = None) -> Any:
    """A config field carrying what its CLI flag needs (``add_dataclass_arguments``).

    ``help`` is the flag's help; ``kind`` the flag's type where the default is None; ``parse`` turns
    the flag's text into the value (``"0/4"`` -> ``(0, 4)``) with the caller's own error message.
    Training's configs use the same helper, so every CLI of the project maps flags the same way.
    """
    return field(default=default, metadata={"help": help, "kind": kind, "parse": parse, "choices": choices, "metavar": metavar})


CACHE_DIR_VARIABLE = "DFDC_CACHE_DIR"


def default_cache_dir() -> Path:
    """``$DFDC_CACHE_DIR`` if set, else ``~/.cache/dfdc_infer``: the default of every ``cache_dir`` setting, and the one
    place the project reads the environment, so a cache folder is otherwise always passed down explicitly."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or Path.home() / ".cache" / "dfdc_infer")


def cache_dir_setting(fetched: str) -> Any:
    """The ``cache_dir`` field (``--cache-dir``) of a config whose command fetches ``fetched`` at run time.

    Its default is resolved when the config is made (``default_cache_dir``), so the environment of
    the run counts, not that of the import. It is not recorded (``recorded_fields``): where this
    machine keeps its downloads changes neither a result nor a recipe.
    """
    return field(default_factory=default_cache_dir, metadata={"help": _cache_dir_help(fetched), "kind": Path, "metavar": "DIR",
                                                              "recorded": False})


def add_cache_dir_argument(parser: argparse.ArgumentParser, fetched: str) -> None:
    """``--cache-dir`` for a command without a config dataclass (the sample generator, an export): the flag, default
    and help of ``cache_dir_setting``."""
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir(), metavar="DIR",
                        help=f"{_cache_dir_help(fetched)} (default: %(default)s)")


def _cache_dir_help(fetched: str) -> str:
    return (f"Folder keeping files fetched once at run time and checked by sha256: {fetched} ({CACHE_DIR_VARIABLE} if set, "
            "else ~/.cache/dfdc_infer).")


def recorded_fields(config: Any) -> list[Field]:
    """The fields of a config that a record of it (manifest, checkpoint, run fingerprint, ``to_dict``) keeps:
    all but the machine's own paths (``cache_dir_setting``), so the same work records the same bytes anywhere."""
    return [item for item in fields(config) if item.metadata.get("recorded", True)]


def _detector_scale(text: str) -> float | str:
    """``--detector-scale``: ``auto`` or a number (range checked by ``InferenceConfig``)."""
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"detector_scale must be a number in (0, 1] or 'auto', got {text!r}") from None


@dataclass(frozen=True)
class InferenceConfig:
    """Everything that changes what the pipeline computes or how it schedules the work."""

    # Video reading
    reader: str = setting("auto", "Decode backend by name (``video_reading.READERS``): ``auto`` (the first that runs here of "
                          "``nvdec`` on the GPU, ``pyav``, ``decord``), ``nvdec``, ``pyav``, ``decord``, ``opencv``.")
    frame_step: int = setting(10, "Sample every Nth frame (0, N, 2N, ...). Ignored when ``frames_per_video`` is set.")
    frames_per_video: int | None = setting(None, "If set, sample this many evenly spaced frames instead of every ``frame_step``-th.", kind=int)
    frame_rounding: str = setting("round", "How evenly spaced positions become frame numbers: ``round`` to the nearest, or ``floor`` "
                                  "(``np.linspace(..., dtype=int)``, the 1st place's).", choices=("round", "floor"))
    decode_workers: int = setting(2, "Background threads decoding the next videos while faces are detected and classified.")
    prefetch_videos: int = setting(4, "At most this many decoded videos wait in memory (bounds RAM whatever the video count).")

    # Face detection
    detector: str = setting("mtcnn", "Face detector backend by name (``face_detection.DETECTORS``): ``mtcnn`` or ``haar``.")
    detector_scale: float | str = setting("auto", "Frames are resized by this factor before detection (boxes are mapped back to full "
                                          "size), or ``auto``: by the frame's longer side, 2x under 300 px, 1x up to 1000, 0.5x up "
                                          "to 1900, 0.33x above (the 1st place's rule).", parse=_detector_scale,
                                          metavar="auto|X")
    detect_every: int = setting(4, "Run the detector on every Nth sampled frame (and the first and last) and carry each face "
                                "between them, confirmed by MTCNN's O-Net; detect more where unsure (``face_tracking``). 1 "
                                "detects every sampled frame.")
    min_face_size: int = setting(40, "Smallest face side to look for, in full-resolution pixels; never under 20 px of the "
                                 "detector's input (``face_detection.SMALLEST_DETECTOR_FACE``): 60 px at 1080p under ``auto``.")
    detector_thresholds: tuple[float, float, float] = setting((0.6, 0.7, 0.8), "MTCNN's per-stage face-probability thresholds (P-, R-, O-Net).")
    detector_batch_size: int = setting(16, "Frames passed to the detector at once.")
    detector_resize: str = setting("area", "How frames are shrunk for the detector: ``area`` (averaging, where the frames are) or ``pil`` "
                                   "(PIL's ``Image.resize`` with its default filter to floor(side x scale), as the 1st place's kernel).",
                                   choices=("area", "pil"))
    clip_boxes: bool = setting(True, "Clip face boxes to the frame; off keeps the detector's raw boxes (facenet-pytorch's, "
                               "which may reach past the edge), as the 1st place's crops use them.")

    # Cropping
    all_faces: bool = setting(False, "Score every detected face per frame (largest first) instead of only the largest one.")
    crop_geometry: str = setting("square", "How a face box becomes a crop (``cropping.CROP_GEOMETRIES``): ``square`` (crop_margin x the "
                                 "longer side, kept inside the frame), ``deepfake-faces`` (the same square, its centre 0.043 of its side "
                                 "below the box's: the framing of Kaggle's deepfake-faces crops) or ``dfdc-1st`` (the box widened by a third on each side, cut at "
                                 "the frame, resized keeping its aspect and centred on black).")
    crop_margin: float = setting(1.3, "The square crop's side is this factor times the face box's longer side (``square`` and "
                                 "``deepfake-faces`` geometries; under 1 the crop is tighter than the box).")
    max_crops_per_video: int | None = setting(None, "Score at most this many crops per video (the first ones, frame by frame).", kind=int)

    # Classification and aggregation
    batch_size: int = setting(32, "Face crops per model forward pass (crops from several videos share a batch).")
    flip_crops: bool = setting(False, "Also score every crop mirrored left-right and average the two probabilities (test-time "
                               "augmentation; twice the classification work).")
    aggregation: str = setting("mean", "Per-model rule from crop probabilities to one per video (``aggregation.AGGREGATIONS``): ``mean`` "
                               "or ``confident`` (the 1st place's); the models' results are then averaged.")
    clip_min: float = setting(0.01, "Lower clip of every submitted label (bounds logloss per video).")
    clip_max: float = setting(0.99, "Upper clip of every submitted label.")
    fallback_label: float = setting(0.5, "Written for a video that fails to decode, has no face, is missing on disk or outside the "
                                    "videos folder, or times out.")

    # Time budget (see budget.py)
    budget_hours: float = setting(9.0, "Kaggle's run-time limit; the run is planned to finish inside it.")
    budget_margin_hours: float = setting(0.5, "Safety margin: every row is written by budget_hours minus this.")
    min_frames_per_video: int = setting(4, "The budget guard never samples fewer frames per video than this.")
    video_timeout: float = setting(120.0, "Seconds of decoding plus detection one video may take, and as much again per video of a "
                                   "classification batch; past it the video gets ``fallback_label`` with status ``timeout`` and the "
                                   "run goes on (``watchdog``). About 100x a normal video (1.15 s at 1080p on a 2-core CPU).")

    # Hardware
    device: str = setting("auto", "``auto`` picks CUDA when available, else CPU; or any torch device string.")
    fp16: bool = setting(True, "Use fp16 autocast and channels_last on CUDA (ignored on CPU).")
    cache_dir: Path = cache_dir_setting("the MTCNN weights in mtcnn/, unless --detector-weights names their folder")

    def __post_init__(self) -> None:
        if self.frame_step < 1:
            raise ValueError(f"frame_step must be >= 1, got {self.frame_step}")
        if self.frames_per_video is not None and self.frames_per_video < 1:
            raise ValueError(f"frames_per_video must be >= 1, got {self.frames_per_video}")
        if self.detector_scale != "auto" and not (isinstance(self.detector_scale, (int, float)) and 0.0 < self.detector_scale <= 1.0):
            raise ValueError(f"detector_scale must be in (0, 1] or 'auto', got {self.detector_scale!r}")
        if self.detect_every < 1:
            raise ValueError(f"detect_every must be >= 1, got {self.detect_every}")
        if self.max_crops_per_video is not None and self.max_crops_per_video < 1:
            raise ValueError(f"max_crops_per_video must be >= 1, got {self.max_crops_per_video}")
        if not 0.5 <= self.crop_margin <= 4.0:
            raise ValueError(f"crop_margin must be in [0.5, 4], got {self.crop_margin}")
        if not 0.0 <= self.clip_min < self.clip_max <= 1.0:
            raise ValueError(f"need 0 <= clip_min < clip_max <= 1, got {self.clip_min}, {self.clip_max}")
        if not self.video_timeout > 0:
            raise ValueError(f"video_timeout must be > 0 seconds, got {self.video_timeout}")
        if not 0 <= self.budget_margin_hours < self.budget_hours:
            raise ValueError(f"need 0 <= budget_margin_hours < budget_hours, got {self.budget_margin_hours}, {self.budget_hours}")
        if min(self.batch_size, self.detector_batch_size, self.min_frames_per_video, self.decode_workers, self.prefetch_videos) < 1:
            raise ValueError("batch sizes, decode_workers and prefetch_videos must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of the ``recorded_fields`` (packaging writes it into the manifest)."""
        return {f.name: getattr(self, f.name) for f in recorded_fields(self)}

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


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, title: str) -> None:
    """One ``--flag`` per ``setting`` field of ``cls`` (``frame_step`` -> ``--frame-step``), default None.

    Flags left unset stay None, so the dataclass default wins and defaults live in one place only.
    Fields without help (a nested config, e.g. training's ``ExtractConfig.inference``) get no flag.
    """
    group = parser.add_argument_group(title)
    for item in fields(cls):
        if "help" not in item.metadata:
            continue
        default = _default(item)
        flag = "--" + item.name.replace("_", "-")
        help_text = f"{item.metadata['help'].replace('``', '')} (default: {_shown(default)})"
        common = {"help": help_text, "default": None}
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, **common)
        elif item.metadata.get("parse") is not None:
            group.add_argument(flag, type=str, metavar=item.metadata.get("metavar"), **common)
        elif isinstance(default, tuple):
            group.add_argument(flag, type=type(default[0]), nargs=len(default), metavar="X", **common)
        else:
            kind = item.metadata.get("kind") or type(default)
            group.add_argument(flag, type=kind, choices=item.metadata.get("choices"), metavar=item.metadata.get("metavar"), **common)


def dataclass_from_args(cls: Callable[..., Config], args: argparse.Namespace, base: Config | None = None, **extra: Any) -> Config:
    """``base`` (default: ``cls(**extra)``) with every flag the user set; a bad value raises the
    dataclass's own ValueError."""
    chosen = {}
    for item in fields(cls):  # type: ignore[arg-type]
        value = getattr(args, item.name, None)
        if value is not None:
            parse = item.metadata.get("parse")
            chosen[item.name] = parse(value) if parse else tuple(value) if isinstance(value, list) else value
    return replace(base if base is not None else cls(**extra), **chosen)  # type: ignore[type-var]


@dataclass(frozen=True)
class Preset:
    """A named, documented bundle of ``InferenceConfig`` values (the rest keep their defaults)."""

    summary: str
    values: dict[str, Any]

    def config(self) -> InferenceConfig:
        return InferenceConfig().updated(self.values)


PRESETS: Registry[Preset] = Registry("preset")
PRESETS.add("seed", Preset("this product's defaults: every 10th frame, the largest face, a square crop x1.3, the mean, clip [0.01, 0.99]", {}))
PRESETS.add("dfdc-1st", Preset(
    "the DFDC 1st place's kernel (selimsef/dfdc_deepfake_challenge): 32 frames (linspace, truncated), MTCNN 0.7/0.8/0.8 on "
    "frames halved with PIL (every frame detected), every face, the box widened by a third and centred on black, at most "
    "127 crops, the confident strategy per model, no clipping; use with checkpoints from `import-checkpoint --from "
    "dfdc-1st` (input 380)",
    {"frames_per_video": 32, "frame_rounding": "floor", "detector": "mtcnn", "detector_thresholds": (0.7, 0.8, 0.8),
     "min_face_size": 40, "detector_scale": 0.5, "detect_every": 1, "detector_resize": "pil", "clip_boxes": False, "all_faces": True,
     "crop_geometry": "dfdc-1st", "max_crops_per_video": 127, "aggregation": "confident", "clip_min": 0.0, "clip_max": 1.0},
))


PRESETS.add("deepfake-faces", Preset(
    "for models trained on Kaggle's deepfake-faces crops (the starter detector): the seed's frames and mean, each crop cut "
    "as those crops were (a square 0.90 x the MTCNN box's longer side, centred 0.043 of its side below the box's centre) "
    "and scored with its mirror image too",
    {"crop_geometry": "deepfake-faces", "crop_margin": 0.90, "flip_crops": True},
))


def preset_config(name: str) -> InferenceConfig:
    """The configuration of preset ``name``; an unknown name lists the known ones."""
    return PRESETS.get(name).config()


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--preset`` and the ``InferenceConfig`` flags, shared by every command that runs the pipeline."""
    listing = "; ".join(f"{name}: {PRESETS.get(name).summary}" for name in PRESETS)
    parser.add_argument("--preset", default=None, metavar="NAME",
                        help="named bundle of inference settings that the flags below override (default: the one the checkpoints "
                             f"were trained for, recorded in their meta, else seed). {listing}")
    add_dataclass_arguments(parser, InferenceConfig, "inference settings")


def chosen_preset(args: argparse.Namespace, trained_for: Callable[[], Sequence[str | None]] = tuple) -> str:
    """``--preset`` when given; else the preset the checkpoints were trained for (``trained_for()``, e.g. reading
    ``models.checkpoint_presets``, called only then; they must agree); else ``seed``. A model trained on crops of one
    framing must be shown crops of that framing."""
    if getattr(args, "preset", None):
        return args.preset
    named = sorted({name for name in trained_for() if name})
    if len(named) > 1:
        raise ValueError(f"the checkpoints were trained for different presets ({', '.join(named)}): pass --preset NAME")
    return named[0] if named else "seed"


def config_from_args(args: argparse.Namespace, base: InferenceConfig | None = None,
                     trained_for: Callable[[], Sequence[str | None]] = tuple) -> InferenceConfig:
    """``base`` (default: the ``chosen_preset``'s) with every inference flag the user did set."""
    if base is None:
        base = preset_config(chosen_preset(args, trained_for))
    return dataclass_from_args(InferenceConfig, args, base)


def _default(item: Field) -> Any:
    """A field's default as its flag's help shows it (a ``default_factory``'s, e.g. ``cache_dir``'s, as resolved now)."""
    if item.default_factory is not MISSING:
        return item.default_factory()
    return item.default if item.default is not MISSING else None


def _shown(default: Any) -> str:
    """A default as the help shows it: ``(0, 4)`` shard pairs as ``0/4``, strings quoted."""
    if isinstance(default, tuple) and len(default) == 2 and all(isinstance(v, int) for v in default):
        return f"{default[0]}/{default[1]}"
    return repr(default) if isinstance(default, str) else str(default)
