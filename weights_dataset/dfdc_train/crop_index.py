"""What extraction leaves on disk, and how training reads it back.

    OUT/extract.json                      the extraction settings (crop geometry must not change mid-way)
    OUT/progress/dfdc_train_part_N.jsonl  the done-list: one JSON line per finished video, with its crops
    OUT/crops/dfdc_train_part_N/VIDEO/FRAME_FACE.jpg
    OUT/crops/dfdc_train_part_N/VIDEO/FRAME_FACE_mask.png   a fake crop's difference mask (``difference_masks``)
    OUT/index.csv                         one row per crop  (CROP_COLUMNS), rebuilt from the done-lists
    OUT/videos.csv                        one row per video (VIDEO_COLUMNS): status, reason, crop count
    OUT/fetch.jsonl                       with --fetch: one line per chunk fetched and done, or failed

Both tables end with one column per extra metadata.json key (``VideoEntry.extra``; a key that
clashes with a column above gets a ``meta_`` prefix).

The done-list is the single source of truth, so resuming needs no other state: a video is done
exactly when its line is complete. An original's line holds its face boxes, frame size and frame
count, which is all its fakes need, so a resumed run never detects faces in it again. Each line is
appended in one write, flushed and fsynced; a line torn by a crash is dropped (and the video redone)
on the next start. ``index.csv`` and ``videos.csv`` are written to a temporary file and renamed, so
readers never see half a table.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .layout import DataError

log = logging.getLogger(__name__)

CROP_COLUMNS = ["video", "label", "original", "chunk", "frame", "face", "x1", "y1", "x2", "y2", "score",
                "crop_x1", "crop_y1", "crop_x2", "crop_y2", "path", "mask", "landmarks"]
"""Per crop: its video, the frame number in the video, the face's rank in the frame, the face box
(the detector's, on the video itself or on its original: see ``boxes_from``) and its score, the
frame region cut (the crop geometry's ``region``), the image path under OUT, the difference
mask's path under OUT ("" for REAL crops and for fakes cut with their own boxes), and MTCNN's five
landmarks (left eye, right eye, nose, mouth corners) as ten numbers "x y x y ..." in the saved
crop's pixels ("" without an MTCNN detector; a fake cut with its original's boxes has its
original's landmarks, so a real/fake pair shares them)."""
OPTIONAL_COLUMNS = ("landmarks",)
"""Crop columns an older extraction lacks; read as "" (part cutout then places the parts from the face box)."""
VIDEO_COLUMNS = ["video", "label", "original", "chunk", "status", "reason", "crops", "width", "height", "frames",
                 "boxes_from", "boxes_note"]
"""Per video: the outcome, the decoded frame size and frame count, the video whose detections cut
it (itself, or a fake's original), and for a fake cut with its own boxes, why not its original's."""
STATUSES = ("ok", "no_face", "failed")
INDEX_FILE, VIDEOS_FILE, SETTINGS_FILE, PROGRESS_DIR = "index.csv", "videos.csv", "extract.json", "progress"


@dataclass(frozen=True)
class VideoRecord:
    """The outcome of one video: its crops (rows of ``CROP_COLUMNS``), or why there are none."""

    video: str
    label: str
    original: str | None
    chunk: int
    status: str
    reason: str = ""
    crops: list[dict[str, Any]] = field(default_factory=list)
    width: int = 0
    height: int = 0
    frames: int = 0
    """Decoded frame size and the decoder's frame count (0: never decoded)."""
    boxes_from: str = ""
    """The video whose face detections cut this one: itself, or (a fake) its original; "" if none ran."""
    boxes_note: str = ""
    """For a fake cut with its own detections: why not with its original's."""
    extra: dict[str, Any] = field(default_factory=dict)
    """The video's other metadata.json keys (``VideoEntry.extra``)."""


class DoneList:
    """One chunk's done-list file (see the module docstring for why it is crash-safe)."""

    def __init__(self, out_dir: Path, chunk_name: str) -> None:
        self.path = Path(out_dir) / PROGRESS_DIR / f"{chunk_name}.jsonl"

    def load(self) -> dict[str, VideoRecord]:
        """The finished videos by name; a torn last line is cut off the file (its video gets redone)."""
        if not self.path.is_file():
            return {}
        text = self.path.read_text()
        records: dict[str, VideoRecord] = {}
        lines = text.split("\n")
        complete, tail = lines[:-1], lines[-1]
        for number, line in enumerate(complete, start=1):
            try:
                record = VideoRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as error:
                raise DataError(f"{self.path}:{number}: not a done-list record ({error}); delete the line to redo its video") from error
            records[record.video] = record
        if tail:
            log.warning("%s: dropped an incomplete last record (interrupted write); that video will be redone", self.path)
            _write_atomic(self.path, "".join(line + "\n" for line in complete))
        return records

    def add(self, record: VideoRecord) -> None:
        """Append one finished video (one write, flushed to disk before returning)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as handle:
            handle.write(json.dumps(asdict(record)) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


def check_settings(out_dir: Path, settings: dict[str, Any], defaults: dict[str, Any] | None = None) -> None:
    """Record the crop settings in OUT, or refuse when OUT already holds crops made differently.

    Crops of two geometries in one index would train a model on inputs the kernel never produces.
    A setting missing from OUT's record (written by an older version) counts as its value in
    ``defaults``, the value that older version had.
    """
    path = Path(out_dir) / SETTINGS_FILE
    if path.is_file():
        before = {**(defaults or {}), **json.loads(path.read_text())}
        changed = sorted(key for key in settings if before.get(key) != settings[key])
        if changed:
            details = ", ".join(f"{key} {before.get(key)} -> {settings[key]}" for key in changed)
            raise DataError(f"{out_dir} holds crops made with other settings ({details}); use a new output folder")
    _write_atomic(path, json.dumps(settings, indent=2, sort_keys=True) + "\n")


def read_settings(crops_dir: Path) -> dict[str, Any]:
    """The settings ``check_settings`` recorded."""
    path = Path(crops_dir) / SETTINGS_FILE
    if not path.is_file():
        raise DataError(f"{path} not found: {crops_dir} is not an extraction output (run python -m dfdc_train.extract first)")
    return json.loads(path.read_text())


def write_index(out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rebuild ``index.csv`` and ``videos.csv`` from every chunk's done-list in ``out_dir``.

    Every chunk present is included, not only this run's, so after sharded runs into one folder
    the last one to finish writes the complete index.
    """
    records = [record for path in sorted((Path(out_dir) / PROGRESS_DIR).glob("*.jsonl"))
               for record in DoneList(out_dir, path.stem).load().values()]
    extra = sorted({key for record in records for key in record.extra})
    names = [f"meta_{key}" if key in CROP_COLUMNS or key in VIDEO_COLUMNS else key for key in extra]
    crops = pd.DataFrame([[row.get(column, "") for column in CROP_COLUMNS] + [record.extra.get(key) for key in extra]
                          for record in records for row in record.crops], columns=CROP_COLUMNS + names)
    videos = pd.DataFrame([[r.video, r.label, r.original, r.chunk, r.status, r.reason, len(r.crops), r.width, r.height, r.frames,
                            r.boxes_from, r.boxes_note] + [r.extra.get(key) for key in extra] for r in records],
                          columns=VIDEO_COLUMNS + names)
    _write_atomic(Path(out_dir) / INDEX_FILE, crops.to_csv(index=False))
    _write_atomic(Path(out_dir) / VIDEOS_FILE, videos.to_csv(index=False))
    return crops, videos


def read_index(crops_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(crops, videos)`` tables of an extraction output; ``original`` is None for REAL videos."""
    tables = []
    for name, columns in ((INDEX_FILE, CROP_COLUMNS), (VIDEOS_FILE, VIDEO_COLUMNS)):
        path = Path(crops_dir) / name
        if not path.is_file():
            raise DataError(f"{path} not found: run python -m dfdc_train.extract first")
        table = pd.read_csv(path, dtype={"video": str, "original": str, "reason": str, "mask": str, "landmarks": str, "boxes_from": str,
                                         "boxes_note": str}, keep_default_na=False)
        for column in OPTIONAL_COLUMNS:
            if columns is CROP_COLUMNS and column not in table.columns:
                log.info("%s has no %r column (extracted before it was recorded): training goes on without it", path, column)
                table.insert(CROP_COLUMNS.index(column), column, "")
        missing = [column for column in columns if column not in table.columns]
        if missing:
            raise DataError(f"{path}: missing columns {missing} (an older extraction: rerun python -m dfdc_train.extract "
                            "with the same ROOT and OUT, which rebuilds the tables without redoing any video)")
        table["original"] = pd.Series([original or None for original in table["original"]], index=table.index, dtype=object)
        tables.append(table)
    return tables[0], tables[1]


def face_box_in_crop(row: pd.Series | dict[str, Any], side: int) -> tuple[float, float, float, float]:
    """The detector's face box in the pixels of its saved ``side``-px crop (for on-the-fly fakes and part cutout)."""
    scale = side / (row["crop_x2"] - row["crop_x1"])
    return ((row["x1"] - row["crop_x1"]) * scale, (row["y1"] - row["crop_y1"]) * scale,
            (row["x2"] - row["crop_x1"]) * scale, (row["y2"] - row["crop_y1"]) * scale)


def landmarks_in_crop(row: pd.Series | dict[str, Any]) -> np.ndarray | None:
    """The row's five MTCNN landmarks as a (5, 2) float32 array in saved-crop pixels; None when not recorded."""
    text = row.get("landmarks", "")
    if not isinstance(text, str) or not text.strip():
        return None
    return np.array(text.split(), np.float32).reshape(5, 2)


def _write_atomic(path: Path, text: str) -> None:
    """Write a temporary sibling and rename it over ``path`` (readers see the old or the new file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
