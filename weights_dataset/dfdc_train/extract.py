"""Face extraction: DFDC training videos -> square face crops on disk, plus an index of them.

    python -m dfdc_train.extract ROOT OUT [--frame-step 10] [--crop-size 256] [--shard k/N]
        [--delete-videos] [--chunks 0-39] [any inference flag: --detector, --crop-margin, ...]

Each sampled frame's faces are found by the kernel's detector and cut by the kernel's crop
function (``dfdc_infer``), so a training crop is what the kernel would have scored. Work goes
chunk by chunk and video by video; finished videos are in a per-chunk done-list
(``crop_index.DoneList``), so an interrupted run simply starts again and skips them.
``--delete-videos`` frees a chunk's disk space once it is done, which is how the 470 GB of DFDC
fits on a smaller disk. Bad videos never stop the run: they are logged, recorded and counted.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from dfdc_infer.cli import EXIT_USAGE, USER_ERRORS
from dfdc_infer.config import add_config_arguments, add_dataclass_arguments, config_from_args, dataclass_from_args
from dfdc_infer.cropping import CROP_GEOMETRIES, crop_face, select_faces
from dfdc_infer.face_detection import FaceDetector, create_detector
from dfdc_infer.progress import ProgressLine, format_duration
from dfdc_infer.video_reading import VideoReadError, frames_to_numpy, read_video

from .config import ExtractConfig
from .crop_index import DoneList, VideoRecord, check_settings, write_index
from .layout import Chunk, VideoEntry, find_chunks, format_chunk_spec, read_metadata, shard_chunks

log = logging.getLogger(__name__)


@dataclass
class ExtractionSummary:
    """Counts for the closing report; ``failures`` maps each distinct reason to its count."""

    already_done: int = 0
    extracted: int = 0
    crops: int = 0
    no_face: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    missing: list[str] = field(default_factory=list)
    deleted: int = 0

    def add(self, record: VideoRecord) -> None:
        self.extracted += 1
        self.crops += len(record.crops)
        self.no_face += record.status == "no_face"
        if record.status == "failed":
            self.failures[record.reason] += 1

    def report(self) -> str:
        lines = [f"extracted {self.extracted} videos -> {self.crops} crops; skipped {self.already_done} already done; "
                 f"no face {self.no_face}, failed {sum(self.failures.values())}, missing on disk {len(self.missing)}"]
        lines += [f"  failed x{count}: {reason}" for reason, count in self.failures.most_common(10)]
        if self.missing:
            lines.append(f"  missing (listed in metadata.json, not on disk; a rerun retries them): {', '.join(self.missing[:10])}"
                         + (" ..." if len(self.missing) > 10 else ""))
        if self.deleted:
            lines.append(f"  deleted {self.deleted} extracted videos (--delete-videos)")
        return "\n".join(lines)


def crop_settings(config: ExtractConfig) -> dict[str, Any]:
    """The settings that decide what a crop looks like; one output folder must not mix them."""
    inference = config.inference
    return {"crop_size": config.crop_size, "image_format": config.image_format, "jpeg_quality": config.jpeg_quality,
            "frame_step": inference.frame_step, "frames_per_video": inference.frames_per_video, "detector": inference.detector,
            "detector_scale": inference.detector_scale, "min_face_size": inference.min_face_size,
            "detector_thresholds": list(inference.detector_thresholds), "all_faces": inference.all_faces,
            "crop_margin": inference.crop_margin, "crop_geometry": inference.crop_geometry, "frame_rounding": inference.frame_rounding,
            "detector_resize": inference.detector_resize, "clip_boxes": inference.clip_boxes}


def extract(root: Path, out_dir: Path, config: ExtractConfig, detector_weights: Path | None = None) -> ExtractionSummary:
    """Extract every not-yet-done video of this shard's chunks, then rebuild OUT's index tables.

    Every chunk's metadata.json is read before any video, so a broken download fails at once.
    """
    out_dir = Path(out_dir)
    chunks = shard_chunks(find_chunks(root, config.chunks), config.shard)
    summary = ExtractionSummary()
    if not chunks:
        log.warning("shard %d/%d has no chunks under %s; nothing to do", *config.shard, root)
        return summary
    metadata = {chunk: read_metadata(chunk) for chunk in chunks}
    check_settings(out_dir, crop_settings(config), defaults=crop_settings(ExtractConfig()))
    done = {chunk: DoneList(out_dir, chunk.name) for chunk in chunks}
    finished = {chunk: done[chunk].load() for chunk in chunks}
    todo = {chunk: [entry for name, entry in metadata[chunk].items() if name not in finished[chunk]] for chunk in chunks}
    summary.already_done = sum(len(records) for records in finished.values())
    log.info("chunks %s (shard %d/%d): %d videos, %d already done, %d to extract", format_chunk_spec([c.number for c in chunks]),
             *config.shard, sum(map(len, metadata.values())), summary.already_done, sum(map(len, todo.values())))
    started = time.monotonic()
    detector = create_detector(config.inference, detector_weights)
    progress = ProgressLine(sum(map(len, todo.values())), unit="videos")
    for chunk in chunks:
        for entry in todo[chunk]:
            path = chunk.path / entry.name
            if not path.is_file():
                log.warning("%s/%s: listed in metadata.json but not on disk; skipped (a rerun retries it)", chunk.name, entry.name)
                summary.missing.append(f"{chunk.name}/{entry.name}")
            else:
                record = extract_video(path, entry, chunk, detector, config, out_dir)
                if record.status != "ok":
                    log.warning("%s/%s: %s, recorded as %s", chunk.name, entry.name, record.reason, record.status)
                done[chunk].add(record)
                finished[chunk][entry.name] = record
                summary.add(record)
            progress.advance()
        if config.delete_videos:
            summary.deleted += delete_extracted(chunk, finished[chunk])
    crops, videos = write_index(out_dir)
    log.info("wrote %s (%d crops) and %s (%d videos) in %s", out_dir / "index.csv", len(crops), out_dir / "videos.csv", len(videos),
             format_duration(time.monotonic() - started))
    return summary


def extract_video(path: Path, entry: VideoEntry, chunk: Chunk, detector: FaceDetector, config: ExtractConfig,
                  out_dir: Path) -> VideoRecord:
    """Decode, detect, crop and save one video's faces; a failure is a record, not an exception.

    Decoding and detection errors are the video's fault (corrupt file, odd frames) and become a
    ``failed`` record with the reason; an error writing the crops is the disk's and stops the run.
    """
    base = {"video": entry.name, "label": entry.label, "original": entry.original, "chunk": chunk.number}
    try:
        sample = read_video(path, config.inference)
    except VideoReadError as error:
        return VideoRecord(**base, status="failed", reason=f"unreadable ({error})")
    frames = frames_to_numpy(sample.frames)  # crops go to disk through OpenCV, so host memory
    try:
        detections = detector.detect(frames)
    except Exception as error:  # like the kernel: one odd video must not end a days-long run
        return VideoRecord(**base, status="failed", reason=f"face detection failed ({type(error).__name__}: {error})")
    height, width = frames.shape[1:3]
    folder = Path("crops") / chunk.name / Path(entry.name).stem
    margin, geometry = config.inference.crop_margin, config.inference.crop_geometry
    rows = []
    for frame, frame_number, found in zip(frames, sample.indices.tolist(), detections):
        for face, box in enumerate(select_faces(found, config.inference.all_faces)):
            crop = crop_face(frame, box, config.crop_size, margin, geometry)
            if crop is None:  # a degenerate box
                continue
            relative = folder / f"{frame_number:05d}_{face}.{config.image_format}"
            save_crop(out_dir / relative, crop, config)
            left, top, right, bottom = CROP_GEOMETRIES.get(geometry).region(box, width, height, margin)
            rows.append({**base, "frame": frame_number, "face": face, "x1": round(float(box[0]), 2), "y1": round(float(box[1]), 2),
                         "x2": round(float(box[2]), 2), "y2": round(float(box[3]), 2), "score": round(float(box[4]), 4),
                         "crop_x1": left, "crop_y1": top, "crop_x2": right, "crop_y2": bottom, "path": relative.as_posix()})
    if not rows:
        return VideoRecord(**base, status="no_face", reason=f"no face in {len(sample.indices)} sampled frames")
    return VideoRecord(**base, status="ok", crops=rows)


def save_crop(path: Path, crop: np.ndarray, config: ExtractConfig) -> None:
    """Write an RGB crop as jpg (``jpeg_quality``) or png; raises OSError when it cannot be written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality] if config.image_format == "jpg" else []
    if not cv2.imwrite(str(path), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), params):
        raise OSError(f"could not write {path}")


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
    parser.add_argument("root", type=Path, help="DFDC training data: the folder holding dfdc_train_part_*/")
    parser.add_argument("out", type=Path, help="output folder: crops/, progress/, index.csv, videos.csv")
    parser.add_argument("--detector-weights", type=Path, default=None, help="folder with MTCNN pnet/rnet/onet.pt (default: the cache)")
    add_dataclass_arguments(parser, ExtractConfig, "extraction settings")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        config = dataclass_from_args(ExtractConfig, args, inference=config_from_args(args))
        summary = extract(args.root, args.out, config, args.detector_weights)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE
    print(summary.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
