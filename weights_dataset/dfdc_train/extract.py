"""Face extraction: DFDC training videos -> face crops and difference masks on disk, plus an index.

    python -m dfdc_train.extract ROOT OUT [--frame-step 10] [--crop-size 256] [--shard k/N]
        [--delete-videos] [--chunks 0-39] [--no-reuse-boxes] [--fetch COMMAND --chunks 0-49]
        [any inference flag: --detector, --crop-margin, ...]

Each sampled frame's faces are found by the kernel's detector and cut by the kernel's crop
function (``dfdc_infer``), so a training crop is what the kernel would have scored.

Faces are detected on the originals only. A DFDC fake is its original with the face changed,
frame for frame and pixel for pixel, so each fake is cut at its original's frames with its
original's boxes: a real/fake pair then covers exactly the same pixels (the pair differs by the
manipulation alone, not by detector jitter), the detector runs ~5x less, and the difference of
the two crops is a mask of the manipulation (``difference_masks``), stored next to the fake's crop. A fake
whose original cannot be used (not on disk, unreadable, another frame size or frame count) is
detected on its own; the summary counts those by reason.

Work goes chunk by chunk, each original followed by its fakes; decoding runs ahead in
background threads (``--decode-workers``, ``--prefetch-videos``), and each video is read and
its faces found under the kernel's watchdog (``dfdc_infer.prefetch``): a video whose decoding
or face detection runs past ``--video-timeout`` is given up, counted, and left for a rerun
(never recorded as done), while the run goes on. Finished videos are in a
per-chunk done-list (``crop_index.DoneList``), an original's line with its boxes, so an
interrupted run starts again, skips them, and never detects faces in a finished original again.
``--delete-videos`` frees a chunk's disk space once it is done, and ``--fetch`` downloads each
chunk, extracts it and deletes it (``fetch``), which is how the 470 GB of DFDC fit on a smaller
disk. Bad videos never stop the run: they are logged, recorded and counted.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Sequence

import cv2
import numpy as np

from dfdc_infer.config import add_config_arguments, add_dataclass_arguments, config_from_args, dataclass_from_args
from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.cropping import CROP_GEOMETRIES, crop_face, select_faces
from dfdc_infer.face_detection import MtcnnDetector, create_detector
from dfdc_infer.progress import ProgressLine, format_duration
from dfdc_infer.prefetch import Decoded, WatchedPrefetch
from dfdc_infer.run_state import RunState, Snapshot
from dfdc_infer.video_reading import frames_to_numpy

from .config import ExtractConfig
from .crop_index import DoneList, VideoRecord, check_settings, face_box_in_crop, write_index
from .fetch import FetchLog, delete_videos, fetch_chunk
from .layout import Chunk, DataError, VideoEntry, find_chunks, format_chunk_spec, parse_chunk_spec, read_metadata, shard_chunks
from .difference_masks import difference_mask, save_mask

log = logging.getLogger(__name__)

STAGES = ("decode", "detect", "crop", "mask")
Face = tuple[int, int, np.ndarray]
"""One face to cut: (frame number, rank of the face in its frame, ``[x1, y1, x2, y2, score]``)."""


@dataclass
class ExtractionSummary:
    """Counts for the closing report; ``failures`` and ``own_boxes`` map each reason to its count."""

    already_done: int = 0
    extracted: int = 0
    crops: int = 0
    masks: int = 0
    no_face: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    """Videos (chunk/name) whose decoding or face detection ran past ``video_timeout``: not done, a rerun retries them."""
    deleted: int = 0
    detected: int = 0
    """Videos the face detector ran on."""
    reused: int = 0
    """Fakes cut with their original's boxes."""
    own_boxes: Counter[str] = field(default_factory=Counter)
    """Fakes detected on their own, by why their original's boxes could not be used."""
    seconds: Counter[str] = field(default_factory=Counter)
    """Seconds per stage (``STAGES``, decoding summed over its threads) and ``wall``."""
    fetched: int = 0
    fetch_skipped: int = 0
    fetch_failed: dict[int, str] = field(default_factory=dict)

    def add(self, record: VideoRecord) -> None:
        self.extracted += 1
        self.crops += len(record.crops)
        self.masks += sum(bool(row.get("mask")) for row in record.crops)
        self.no_face += record.status == "no_face"
        if record.status == "failed":
            self.failures[record.reason] += 1

    def report(self) -> str:
        lines = [f"extracted {self.extracted} videos -> {self.crops} crops, {self.masks} difference masks; skipped {self.already_done} "
                 f"already done; no face {self.no_face}, failed {sum(self.failures.values())}, missing on disk {len(self.missing)}, "
                 f"timed out {len(self.timed_out)}"]
        lines += [f"  failed x{count}: {reason}" for reason, count in self.failures.most_common(10)]
        if self.missing:
            lines.append(f"  missing (listed in metadata.json, not on disk; a rerun retries them): {_some(self.missing)}")
        if self.timed_out:
            lines.append(f"  timed out (past --video-timeout; a rerun retries them): {_some(self.timed_out)}")
        lines.append(f"boxes: faces detected in {self.detected} videos; {self.reused} fakes cut with their original's boxes, "
                     f"{sum(self.own_boxes.values())} fakes with their own")
        lines += [f"  own boxes x{count}: {reason}" for reason, count in self.own_boxes.most_common()]
        if self.extracted:
            stages = ", ".join(f"{stage} {self.seconds[stage] / self.extracted:.2f}" for stage in STAGES)
            wall = self.seconds["wall"]
            lines.append(f"seconds per video: {stages}; {self.extracted} videos in {format_duration(wall)} "
                         f"({self.extracted / max(wall, 1e-9):.2f} videos/s)")
        if self.deleted:
            lines.append(f"  deleted {self.deleted} extracted videos")
        if self.fetched or self.fetch_skipped or self.fetch_failed:
            lines.append(f"fetch: {self.fetched} chunks downloaded, {self.fetch_skipped} done before, {len(self.fetch_failed)} failed"
                         + "".join(f"\n  chunk {number} failed: {reason}" for number, reason in sorted(self.fetch_failed.items())))
        return "\n".join(lines)


def _some(names: list[str], shown: int = 10) -> str:
    return ", ".join(names[:shown]) + (" ..." if len(names) > shown else "")


@dataclass(frozen=True)
class VideoFaces:
    """A video as the watched thread hands it on: its decoding and, if it decoded, its frames in
    host memory and the faces to cut, from its original's record (``original``) or the detector."""

    decoded: Decoded
    frames: np.ndarray | None = None
    faces: list[Face] = field(default_factory=list)
    original: VideoRecord | None = None
    why_not: str = ""
    """Why a fake has its own boxes (``Extractor.original_boxes``)."""
    detect_seconds: float = 0.0
    failure: str = ""
    """Why face detection failed."""


def crop_settings(config: ExtractConfig) -> dict[str, Any]:
    """The settings that decide what a crop looks like; one output folder must not mix them."""
    inference = config.inference
    return {"crop_size": config.crop_size, "image_format": config.image_format, "jpeg_quality": config.jpeg_quality,
            "frame_step": inference.frame_step, "frames_per_video": inference.frames_per_video, "detector": inference.detector,
            "detector_scale": inference.detector_scale, "min_face_size": inference.min_face_size,
            "detector_thresholds": list(inference.detector_thresholds), "all_faces": inference.all_faces,
            "crop_margin": inference.crop_margin, "crop_geometry": inference.crop_geometry, "frame_rounding": inference.frame_rounding,
            "detector_resize": inference.detector_resize, "clip_boxes": inference.clip_boxes, "mask_method": config.mask_method}


def extract(root: Path, out_dir: Path, config: ExtractConfig, detector_weights: Path | None = None) -> ExtractionSummary:
    """Extract every not-yet-done video of this shard's chunks, then rebuild OUT's index tables.

    Every chunk's metadata.json is read before any video, so a broken download fails at once.
    With ``config.fetch`` the chunks are downloaded first, one by one (``extract_fetched``).
    """
    if config.fetch is not None:
        return extract_fetched(root, out_dir, config, detector_weights)
    chunks = shard_chunks(find_chunks(root, config.chunks), config.shard)
    if not chunks:
        log.warning("shard %d/%d has no chunks under %s; nothing to do", *config.shard, root)
        return ExtractionSummary()
    metadata = {chunk: read_metadata(chunk) for chunk in chunks}
    extractor = Extractor(out_dir, config, detector_weights)
    log.info("chunks %s (shard %d/%d): %d videos", format_chunk_spec([c.number for c in chunks]), *config.shard,
             sum(map(len, metadata.values())))
    for chunk in chunks:
        extractor.extract_chunk(chunk, metadata[chunk])
    return extractor.finish()


def extract_fetched(root: Path, out_dir: Path, config: ExtractConfig, detector_weights: Path | None = None) -> ExtractionSummary:
    """The download -> unzip -> extract -> delete loop over ``config.chunks`` (this shard's share).

    A chunk done before (``OUT/fetch.jsonl``) is never downloaded again; a chunk already unzipped
    under ROOT (an interrupted run, or videos that timed out) is extracted without downloading; a
    chunk whose download fails every try is recorded and the loop goes on.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    chunks = shard_chunks([Chunk(number, root / f"dfdc_train_part_{number}") for number in sorted(parse_chunk_spec(config.chunks or ""))],
                          config.shard)
    extractor = Extractor(out_dir, config, detector_weights)
    history = FetchLog(out_dir)
    done = history.done()
    summary = extractor.summary
    for chunk in chunks:
        number = chunk.number
        if number in done:
            summary.fetch_skipped += 1
            continue
        if not (chunk.path / "metadata.json").is_file():
            reason = fetch_chunk(chunk, config.fetch or "", config.fetch_retries)
            if reason:
                log.error("chunk %d: giving up (%s); going on with the next chunk, a rerun tries it again", number, reason)
                summary.fetch_failed[number] = reason
                history.add(number, "failed", reason=reason)
                continue
            summary.fetched += 1
        try:
            entries = read_metadata(chunk)
        except DataError as error:
            summary.fetch_failed[number] = str(error)
            history.add(number, "failed", reason=str(error))
            continue
        timed_out = extractor.extract_chunk(chunk, entries)
        deleted = delete_videos(chunk, keep=timed_out)
        summary.deleted += deleted
        if timed_out:  # not done: a rerun extracts what is left on disk without downloading the chunk again
            log.warning("%s: deleted %d videos, kept the %d that timed out for a rerun", chunk.name, deleted, len(timed_out))
            history.add(number, "failed", reason=f"{len(timed_out)} videos timed out", videos=len(entries))
            continue
        log.info("%s: done, deleted its %d videos", chunk.name, deleted)
        history.add(number, "done", videos=len(entries))
    return extractor.finish()


class Extractor:
    """Extracts chunks into one output folder with one detector, keeping the counts."""

    def __init__(self, out_dir: Path, config: ExtractConfig, detector_weights: Path | None = None) -> None:
        CROP_GEOMETRIES.check(config.inference.crop_geometry)
        self.out_dir = Path(out_dir)
        self.config = config
        check_settings(self.out_dir, crop_settings(config), defaults=crop_settings(ExtractConfig()))
        self.detector = create_detector(config.inference, detector_weights)
        self.landmarker = self.detector.mtcnn if isinstance(self.detector, MtcnnDetector) else None
        """O-Net on each saved crop gives its five landmarks (part cutout in training); None: not MTCNN."""
        self.state = RunState(config.inference)
        """The reader, chosen once for the run (the watchdog may move it on: ``dfdc_infer.run_state``)."""
        self.summary = ExtractionSummary()
        self._started = time.monotonic()
        self._stored: tuple[str, dict[tuple[int, int], np.ndarray]] = ("", {})
        """The last original's crops as stored on disk (chunk/video, by (frame, face)), for its fakes' masks."""

    def extract_chunk(self, chunk: Chunk, entries: dict[str, VideoEntry]) -> set[str]:
        """Extract the chunk's videos that are not done yet, each original followed by its fakes;
        return the names of those that timed out (not recorded: a rerun retries them).

        A video's faces are found only once the videos before it are recorded (``ahead=False``),
        so a fake finds its original's boxes."""
        done = DoneList(self.out_dir, chunk.name)
        finished = done.load()
        self.summary.already_done += sum(name in finished for name in entries)
        todo = [entry for entry in work_order(entries) if entry.name not in finished]
        log.info("%s: %d videos, %d already done, %d to extract", chunk.name, len(entries), len(entries) - len(todo), len(todo))
        progress = ProgressLine(len(todo), unit="videos")
        timed_out: set[str] = set()
        find = functools.partial(self.find_faces, finished=finished, entries=entries, timed_out=timed_out)
        jobs = ((entry, path if (path := chunk.path / entry.name).is_file() else None) for entry in todo)
        for item in WatchedPrefetch(self.state, find, ahead=False).run(jobs):
            entry, name = item.job, f"{chunk.name}/{item.job.name}"
            if item.timeout is not None:
                log.warning("%s: timeout (%s); not recorded, a rerun retries it", name, item.timeout)
                self.summary.timed_out.append(name)
                timed_out.add(entry.name)
            elif item.prepared is None:
                log.warning("%s: listed in metadata.json but not on disk; skipped (a rerun retries it)", name)
                self.summary.missing.append(name)
            else:
                record = self.extract_video(entry, chunk, item.prepared)
                if record.status != "ok":
                    log.warning("%s: %s, recorded as %s", name, record.reason, record.status)
                done.add(record)
                finished[entry.name] = record
                self.summary.add(record)
            progress.advance()
        if self.config.delete_videos:
            self.summary.deleted += delete_extracted(chunk, finished)
        return timed_out

    def finish(self) -> ExtractionSummary:
        """Rebuild OUT's index tables from every done-list; return the counts."""
        crops, videos = write_index(self.out_dir)
        self.summary.seconds["wall"] = time.monotonic() - self._started
        log.info("wrote %s (%d crops) and %s (%d videos) in %s", self.out_dir / "index.csv", len(crops), self.out_dir / "videos.csv",
                 len(videos), format_duration(self.summary.seconds["wall"]))
        return self.summary

    def find_faces(self, entry: VideoEntry, state: Snapshot, decoded: Decoded | None, *, finished: dict[str, VideoRecord],
                   entries: dict[str, VideoEntry], timed_out: Collection[str]) -> VideoFaces | None:
        """The watched thread's work on one video (None: not on disk): the faces to cut, from its
        original's record when they fit it (``original_boxes``), else from the detector."""
        if decoded is None:
            return None
        if decoded.sample is None:
            return VideoFaces(decoded)
        frames = frames_to_numpy(decoded.sample.frames)  # crops go to disk through OpenCV, so host memory
        height, width = frames.shape[1:3]
        original, why_not = self.original_boxes(entry, finished, entries, width, height, decoded.sample.total_frames, timed_out)
        if original is not None:
            faces = [(row["frame"], row["face"], np.array([row[k] for k in ("x1", "y1", "x2", "y2", "score")])) for row in original.crops]
            return VideoFaces(decoded, frames, faces, original)
        started = time.perf_counter()
        try:
            detections = self.detector.detect(frames)
        except Exception as error:  # like the kernel: one odd video must not end a days-long run
            return VideoFaces(decoded, frames, why_not=why_not, detect_seconds=time.perf_counter() - started,
                              failure=f"face detection failed ({type(error).__name__}: {error})")
        faces = [(frame, rank, box) for frame, found in zip(decoded.sample.indices.tolist(), detections)
                 for rank, box in enumerate(select_faces(found, self.config.inference.all_faces))]
        return VideoFaces(decoded, frames, faces, why_not=why_not, detect_seconds=time.perf_counter() - started)

    def extract_video(self, entry: VideoEntry, chunk: Chunk, found: VideoFaces) -> VideoRecord:
        """Cut and save one video's faces (and a fake's masks); a failure is a record, not an exception.

        Decoding and detection errors are the video's fault (corrupt file, odd frames) and become a
        ``failed`` record with the reason; an error writing the crops is the disk's and stops the run.
        """
        base = {"video": entry.name, "label": entry.label, "original": entry.original, "chunk": chunk.number, "extra": entry.extra}
        sample = found.decoded.sample
        self.summary.seconds["decode"] += found.decoded.ended - found.decoded.started
        if sample is None:
            return VideoRecord(**base, status="failed", reason=f"unreadable ({found.decoded.reason})")
        height, width = found.frames.shape[1:3]
        base.update(width=width, height=height, frames=sample.total_frames)
        original = found.original
        if original is not None:
            self.summary.reused += 1
            base.update(boxes_from=original.video)
            if not found.faces:
                return VideoRecord(**base, status="no_face", reason=f"its original {original.video}: {original.reason}")
        else:
            if found.why_not:
                self.summary.own_boxes[found.why_not.split(":")[0]] += 1
                log.info("%s/%s: cut with its own boxes (%s)", chunk.name, entry.name, found.why_not)
            self.summary.detected += 1
            self.summary.seconds["detect"] += found.detect_seconds
            if found.failure:
                return VideoRecord(**base, status="failed", reason=found.failure)
            base.update(boxes_from=entry.name, boxes_note=found.why_not)
        rows, stored = self.cut(found.frames, sample.indices, found.faces, Path("crops") / chunk.name / Path(entry.name).stem, base)
        if original is not None:
            self.add_masks(rows, stored, self.original_crops(chunk, original))
            shared = {(row["frame"], row["face"]): row.get("landmarks", "") for row in original.crops}
            for row in rows:
                row["landmarks"] = shared.get((row["frame"], row["face"]), "")
        else:
            self.add_landmarks(rows, stored)
        if entry.label == "REAL":
            self._stored = (f"{chunk.name}/{entry.name}", stored)
        if not rows:
            return VideoRecord(**base, status="no_face", reason=f"no face in {len(sample.indices)} sampled frames")
        return VideoRecord(**base, status="ok", crops=rows)

    def original_boxes(self, entry: VideoEntry, finished: dict[str, VideoRecord], entries: dict[str, VideoEntry],
                       width: int, height: int, frames: int, timed_out: Collection[str] = ()) -> tuple[VideoRecord | None, str]:
        """A fake's original's record when its boxes fit the fake (same frame size and frame count),
        else ``(None, why not)``; ``(None, "")`` for a REAL video. ``timed_out``: the chunk's videos
        given up by the watchdog in this run."""
        if entry.label != "FAKE":
            return None, ""
        if not self.config.reuse_boxes:
            return None, "box reuse off (--no-reuse-boxes)"
        original = finished.get(entry.original or "")
        if original is None:
            if entry.original in timed_out:
                return None, f"original timed out: {entry.original}"
            if entry.original in entries:
                return None, f"original not on disk: {entry.original}"
            return None, f"original not in this chunk's metadata.json: {entry.original}"
        if original.status == "failed":
            return None, f"original unreadable: {original.reason}"
        if original.frames == 0:
            return None, f"original extracted by an older version: {original.video} has no frame size on record"
        if (original.width, original.height) != (width, height):
            return None, f"frame size differs from the original's: {width}x{height}, {original.video} {original.width}x{original.height}"
        if original.frames != frames:
            return None, f"frame count differs from the original's: {frames}, {original.video} {original.frames}"
        return original, ""

    def cut(self, frames: np.ndarray, indices: np.ndarray, faces: list[Face], folder: Path, base: dict[str, Any]
            ) -> tuple[list[dict[str, Any]], dict[tuple[int, int], np.ndarray]]:
        """Cut and save ``faces`` from the video's sampled ``frames``: the index rows, and each crop
        as stored (after JPEG) by (frame, face)."""
        started = time.perf_counter()
        inference = self.config.inference
        height, width = frames.shape[1:3]
        position = {frame: number for number, frame in enumerate(indices.tolist())}
        rows, stored = [], {}
        for frame, rank, box in faces:
            crop = crop_face(frames[position[frame]], box, self.config.crop_size, inference.crop_margin, inference.crop_geometry)
            if crop is None:  # a degenerate box
                continue
            relative = folder / f"{frame:05d}_{rank}.{self.config.image_format}"
            stored[(frame, rank)] = save_crop(self.out_dir / relative, crop, self.config)
            left, top, right, bottom = CROP_GEOMETRIES.get(inference.crop_geometry).region(box, width, height, inference.crop_margin)
            rows.append({**{k: base[k] for k in ("video", "label", "original", "chunk")}, "frame": frame, "face": rank,
                         "x1": float(box[0]), "y1": float(box[1]), "x2": float(box[2]), "y2": float(box[3]),
                         "score": round(float(box[4]), 4), "crop_x1": left, "crop_y1": top, "crop_x2": right, "crop_y2": bottom,
                         "path": relative.as_posix(), "mask": "", "landmarks": ""})
        self.summary.seconds["crop"] += time.perf_counter() - started
        return rows, stored

    def add_landmarks(self, rows: list[dict[str, Any]], stored: dict[tuple[int, int], np.ndarray]) -> None:
        """Each crop's five MTCNN landmarks, from O-Net alone on the saved crop around its face box
        (one batch per video, a few ms), in the crop's pixels as "x y x y ..."."""
        if self.landmarker is None or not rows:
            return
        started = time.perf_counter()
        crops = np.stack([stored[(row["frame"], row["face"])] for row in rows])
        boxes = [np.array([face_box_in_crop(row, self.config.crop_size)], np.float32) for row in rows]
        for row, faces in zip(rows, self.landmarker.score_boxes(crops, boxes), strict=True):
            row["landmarks"] = " ".join(f"{value:.1f}" for value in faces.landmarks[0].reshape(-1))
        self.summary.seconds["crop"] += time.perf_counter() - started

    def original_crops(self, chunk: Chunk, original: VideoRecord) -> dict[tuple[int, int], np.ndarray]:
        """The original's crops as stored: kept from when it was cut, or (a resumed run) read back."""
        name, stored = self._stored
        if name == f"{chunk.name}/{original.video}":
            return stored
        crops = {}
        for row in original.crops:
            image = cv2.imread(str(self.out_dir / row["path"]), cv2.IMREAD_COLOR)
            if image is not None:  # a lost original crop costs its fakes' masks there, nothing else
                crops[(row["frame"], row["face"])] = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        self._stored = (f"{chunk.name}/{original.video}", crops)
        return crops

    def add_masks(self, rows: list[dict[str, Any]], stored: dict[tuple[int, int], np.ndarray],
                  originals: dict[tuple[int, int], np.ndarray]) -> None:
        """Save each fake crop's difference mask against its original's crop and list it in its row."""
        started = time.perf_counter()
        for row in rows:
            key = (row["frame"], row["face"])
            if key in originals:
                relative = Path(row["path"]).with_name(f"{row['frame']:05d}_{row['face']}_mask.png")
                save_mask(self.out_dir / relative, difference_mask(originals[key], stored[key], self.config.mask_method))
                row["mask"] = relative.as_posix()
        self.summary.seconds["mask"] += time.perf_counter() - started


def work_order(entries: dict[str, VideoEntry]) -> list[VideoEntry]:
    """Every entry once: each REAL video followed by its fakes (so the fakes find its boxes and its
    crops are still in memory for their masks), then the fakes whose original is not listed."""
    fakes: dict[str, list[VideoEntry]] = {}
    for entry in entries.values():
        if entry.label == "FAKE":
            fakes.setdefault(entry.original or "", []).append(entry)
    order = []
    for name in sorted(entries):
        if entries[name].label == "REAL":
            order += [entries[name], *sorted(fakes.pop(name, []), key=lambda entry: entry.name)]
    return order + sorted((entry for orphans in fakes.values() for entry in orphans), key=lambda entry: entry.name)


def save_crop(path: Path, crop: np.ndarray, config: ExtractConfig) -> np.ndarray:
    """Write an RGB crop as jpg (``jpeg_quality``) or png; return it as a reader of the file gets it
    (JPEG is lossy, and a mask must compare the crops training will see). Raises OSError when it
    cannot be written."""
    params = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality] if config.image_format == "jpg" else []
    ok, data = cv2.imencode(f".{config.image_format}", cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())
    if config.image_format == "png":
        return crop
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def delete_extracted(chunk: Chunk, finished: dict[str, VideoRecord]) -> int:
    """Delete the chunk's videos that have a record (metadata.json stays, so reruns still skip them)."""
    deleted = 0
    for name in finished:
        path = chunk.path / name
        if path.is_file():
            path.unlink()
            deleted += 1
    if deleted:
        log.info("%s: deleted %d extracted videos (--delete-videos)", chunk.name, deleted)
    return deleted


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.extract", description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path, help="DFDC training data: the folder holding dfdc_train_part_*/ (with --fetch: where they are downloaded)")
    parser.add_argument("out", type=Path, help="output folder: crops/, progress/, index.csv, videos.csv")
    parser.add_argument("--detector-weights", type=Path, default=None, help="folder with MTCNN pnet/rnet/onet.pt (default: mtcnn/ in --cache-dir, fetched once)")
    add_dataclass_arguments(parser, ExtractConfig, "extraction settings")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = dataclass_from_args(ExtractConfig, args, inference=config_from_args(args))
        summary = extract(args.root, args.out, config, args.detector_weights)
    except USER_ERRORS as error:
        return fail(error)
    except OSError as error:  # the disk, not the data: full, read-only, gone
        return fail(error, code=1)
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
