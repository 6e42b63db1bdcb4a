"""``predict --report DIR``: a static page that shows why every video scored what it did.

For each video of the sample submission, highest label first: its status or fallback reason, the
aggregation rule's result per model and for the ensemble, and one PNG contact sheet with the
sampled frames (the detector's face boxes drawn on them) and the face crops exactly as the model
received them, each with its probability. That is where detector false positives (a box on a
poster), missed faces and badly cut crops show.

No server, no network: ``index.html`` has its CSS inline and links ``sheets/NNNN.png`` beside
it (named by the video's row, never by its file name). The pipeline keeps frames and boxes only
when a report is asked for (``VideoScorer(evidence=True)``), so a run without one pays nothing;
each sheet is written as its video finishes, so memory stays flat. Drawn with OpenCV, the one
imaging library the kernel's image is sure to have.
"""

from __future__ import annotations

import html
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import cv2
import numpy as np

from .aggregation import AGGREGATIONS
from .config import InferenceConfig
from .video_reading import SampledFrames, frames_to_numpy

if TYPE_CHECKING:
    from .results import VideoResult

log = logging.getLogger(__name__)

THUMB_HEIGHT = 120
"""Height of a frame on the sheet, in pixels."""
CROP_SIDE = 96
"""Side of a crop on the sheet (crops are cut at the model's input size, up to 380 px)."""
SHEET_WIDTH = 1200
CAPTION = 18
FONT = cv2.FONT_HERSHEY_SIMPLEX
PAGE = "index.html"


class ReportError(ValueError):
    """The report folder cannot be written; raised before any video is scored."""


@dataclass
class Evidence:
    """What one video's sheet shows, kept by the pipeline only when a report is written."""

    thumbnails: np.ndarray
    """(N, h, w, 3) uint8 RGB: the sampled frames shrunk to ``THUMB_HEIGHT``."""
    scale: float
    """Thumbnail pixels per full-resolution pixel."""
    indices: np.ndarray
    """(N,) frame numbers in the video."""
    boxes: list[np.ndarray]
    """Per frame, the detector's (K, 5) [x1, y1, x2, y2, score] in full-resolution pixels."""
    crops: np.ndarray
    """(M, S, S, 3) uint8 RGB crops, as passed to the ensemble."""
    crop_frames: np.ndarray
    """(M,) position in ``thumbnails`` of each crop's frame."""
    probabilities: np.ndarray | None = None
    """(models, M) P(fake), set once the crops are classified."""
    models: tuple[str, ...] = ()
    """``arch@size`` of each row of ``probabilities``."""

    @classmethod
    def of(cls, sample: SampledFrames, boxes: list[np.ndarray], crops: np.ndarray, crop_frames: np.ndarray) -> "Evidence":
        frames = frames_to_numpy(sample.frames)
        scale = THUMB_HEIGHT / frames.shape[1]
        size = (max(round(frames.shape[2] * scale), 1), THUMB_HEIGHT)
        thumbnails = np.stack([cv2.resize(frame, size, interpolation=cv2.INTER_AREA) for frame in frames])
        return cls(thumbnails, scale, np.asarray(sample.indices), [np.asarray(found) for found in boxes], crops, crop_frames)


def contact_sheet(evidence: Evidence) -> np.ndarray:
    """One BGR image: the frames with their face boxes, then the crops with P(fake) per model."""
    frames = [_framed(thumbnail, boxes, evidence.scale, index)
              for thumbnail, boxes, index in zip(evidence.thumbnails, evidence.boxes, evidence.indices)]
    parts = [_title(f"{len(frames)} sampled frames, detected faces boxed (detector score)"), _grid(frames)]
    if len(evidence.crops):
        crops = [_captioned_crop(crop, evidence, number) for number, crop in enumerate(evidence.crops)]
        parts += [_title(f"{len(crops)} crops as the model saw them, P(fake) per model"), _grid(crops)]
    else:
        parts.append(_title("no face crop: nothing was classified"))
    return cv2.cvtColor(np.concatenate(parts), cv2.COLOR_RGB2BGR)


def _framed(thumbnail: np.ndarray, boxes: np.ndarray, scale: float, index: int) -> np.ndarray:
    image = thumbnail.copy()
    for x1, y1, x2, y2, score in boxes.reshape(-1, 5):
        corner, far = (int(x1 * scale), int(y1 * scale)), (int(x2 * scale), int(y2 * scale))
        cv2.rectangle(image, corner, far, (255, 220, 0), 2)
        cv2.putText(image, f"{score:.2f}", (corner[0], max(corner[1] - 3, 10)), FONT, 0.35, (255, 220, 0), 1, cv2.LINE_AA)
    cv2.putText(image, f"#{index}", (3, 12), FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return image


def _captioned_crop(crop: np.ndarray, evidence: Evidence, number: int) -> np.ndarray:
    image = np.full((CROP_SIDE + CAPTION, CROP_SIDE, 3), 255, dtype=np.uint8)
    image[:CROP_SIDE] = cv2.resize(crop, (CROP_SIDE, CROP_SIDE), interpolation=cv2.INTER_AREA)
    frame = evidence.indices[evidence.crop_frames[number]]
    cv2.putText(image, f"#{frame}", (2, 10), FONT, 0.3, (255, 255, 255), 1, cv2.LINE_AA)
    if evidence.probabilities is not None:
        values = evidence.probabilities[:, number]
        colour = (200, 0, 0) if values.mean() > 0.5 else (0, 130, 0)  # red leans fake, green real
        text = " ".join(f"{value:.2f}" for value in values)
        cv2.putText(image, text, (2, CROP_SIDE + 13), FONT, 0.4 if len(values) == 1 else 0.3, colour, 1, cv2.LINE_AA)
    return image


def _grid(tiles: list[np.ndarray], gap: int = 4) -> np.ndarray:
    """Tiles (same height) left to right, wrapped at ``SHEET_WIDTH``, on white."""
    height = tiles[0].shape[0]
    rows: list[list[np.ndarray]] = [[]]
    used = 0
    for tile in tiles:
        if rows[-1] and used + tile.shape[1] + gap > SHEET_WIDTH:
            rows.append([])
            used = 0
        rows[-1].append(tile)
        used += tile.shape[1] + gap
    sheet = np.full((len(rows) * (height + gap), SHEET_WIDTH, 3), 255, dtype=np.uint8)
    for number, row in enumerate(rows):
        left = 0
        for tile in row:
            width = min(tile.shape[1], SHEET_WIDTH - left)
            top = number * (height + gap)
            sheet[top : top + height, left : left + width] = tile[:, :width]
            left += width + gap
    return sheet


def _title(text: str) -> np.ndarray:
    strip = np.full((24, SHEET_WIDTH, 3), 255, dtype=np.uint8)
    cv2.putText(strip, text, (2, 17), FONT, 0.5, (40, 40, 40), 1, cv2.LINE_AA)
    return strip


@dataclass(frozen=True)
class _Entry:
    row: int
    result: "VideoResult"
    per_model: tuple[tuple[str, float], ...]
    sheet: str | None


class Report:
    """The report of one run: ``add`` each result as it comes, ``finish`` writes the page."""

    def __init__(self, folder: Path, filenames: Sequence[str], config: InferenceConfig) -> None:
        """Creates the folder and a placeholder page now: an unwritable folder is a ``ReportError``
        before the first video, not an exception after the last."""
        self.folder = Path(folder)
        self.config = config
        self._rows = {name: row for row, name in enumerate(filenames)}
        self._entries: dict[str, _Entry] = {}
        self._sheet_failed = False
        try:
            (self.folder / "sheets").mkdir(parents=True, exist_ok=True)
            (self.folder / PAGE).write_text(self._page("scoring in progress: this page is rewritten when the run ends"))
        except OSError as error:
            raise ReportError(f"cannot write the report folder {self.folder}: {error.strerror or error}") from None

    def add(self, result: "VideoResult", evidence: Evidence | None) -> None:
        row = self._rows[result.filename]
        sheet = self._write_sheet(row, evidence) if evidence is not None else None
        per_model: tuple[tuple[str, float], ...] = ()
        if evidence is not None and evidence.probabilities is not None and result.status == "scored":
            rule = AGGREGATIONS.get(self.config.aggregation)
            per_model = tuple((name, rule(values)) for name, values in zip(evidence.models, evidence.probabilities))
        self._entries[result.filename] = _Entry(row, result, per_model, sheet)

    def finish(self) -> Path:
        """Write ``index.html`` (a failure is logged: the submission matters more than its picture)."""
        path = self.folder / PAGE
        try:
            path.write_text(self._page(self._body()))
        except OSError as error:
            log.warning("report: cannot write %s (%s)", path, error)
        return path

    def _write_sheet(self, row: int, evidence: Evidence) -> str | None:
        name = f"sheets/{row:05d}.png"
        try:
            if not cv2.imwrite(str(self.folder / name), contact_sheet(evidence)):
                raise OSError("OpenCV could not encode the PNG")
        except OSError as error:
            if not self._sheet_failed:
                log.warning("report: cannot write %s (%s); the page will lack such pictures", self.folder / name, error)
            self._sheet_failed = True
            return None
        return name

    def _body(self) -> str:
        entries = sorted(self._entries.values(), key=lambda entry: (-entry.result.label, entry.row))
        missing = [name for name in self._rows if name not in self._entries]
        counts = Counter(entry.result.status for entry in entries)
        config = self.config
        parts = [
            f"<p>{len(self._rows)} videos, highest label first. Per model: the <b>{html.escape(config.aggregation)}</b> rule "
            f"over the video's crops; the label is their mean, clipped to [{config.clip_min:g}, {config.clip_max:g}]. "
            f"A video not scored gets {config.fallback_label:g}.</p>",
            "<p class='counts'>" + ", ".join(f"{status}: {count}" for status, count in sorted(counts.items())) + "</p>",
        ]
        parts += [self._entry(entry) for entry in entries]
        parts += [f"<section class='video fallback'><h2><code>{html.escape(name)}</code></h2><p>no result recorded</p></section>"
                  for name in missing]
        return "\n".join(parts)

    def _entry(self, entry: _Entry) -> str:
        result = entry.result
        scored = result.status == "scored"
        if result.reason == "resumed":
            status = f"{result.status}, resumed from the progress file (no picture: done by an earlier run)"
        elif scored:
            status = f"scored: {result.frames} frames, {result.faces} crops"
        else:
            status = f"fallback {result.status}: {result.reason}"
        rows = "".join(f"<tr><td>{html.escape(model)}</td><td>{value:.4f}</td></tr>" for model, value in entry.per_model)
        rows += f"<tr class='ensemble'><td>ensemble (label)</td><td>{result.label:.4f}</td></tr>"
        image = (f"<img src='{entry.sheet}' loading='lazy' alt='contact sheet of {html.escape(result.filename, quote=True)}'>"
                 if entry.sheet else "")
        return (f"<section class='video {'scored' if scored else 'fallback'}' id='row{entry.row}'>"
                f"<h2><span class='label'>{result.label:.3f}</span> <code>{html.escape(result.filename)}</code></h2>"
                f"<p class='status'>{html.escape(status)}</p><table>{rows}</table>{image}</section>")

    def _page(self, body: str) -> str:
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scores of {len(self._rows)} videos</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; background: #fafafa; }}
section.video {{ background: #fff; border: 1px solid #ddd; border-left: 6px solid #2a7; margin: 1em 0; padding: .5em 1em; }}
section.fallback {{ border-left-color: #d80; }}
h2 {{ font-size: 15px; margin: .3em 0; }} .label {{ display: inline-block; min-width: 4em; font-weight: bold; }}
.status {{ margin: .2em 0; color: #555; }} section.fallback .status {{ color: #a50; font-weight: bold; }}
table {{ border-collapse: collapse; margin: .3em 0; }} td {{ padding: 1px 10px 1px 0; }} tr.ensemble td {{ font-weight: bold; }}
img {{ max-width: 100%; display: block; margin-top: .4em; }}
</style></head>
<body><h1>Scores of {len(self._rows)} videos</h1>
{body}
</body></html>
"""
