"""The whole job, as the kernel and the CLI run it: inputs checked, videos scored, CSV written.

Inputs are checked before any video is touched (sample submission, checkpoints, detector weights),
so a wrong path fails in the first second with a message naming it, not after hours.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from .config import InferenceConfig
from .device import resolve_device
from .face_detection import create_detector
from .models import Ensemble
from .pipeline import RunStats, VideoScorer
from .submission import read_sample_submission, write_submission

log = logging.getLogger(__name__)


def run_submission(
    config: InferenceConfig,
    video_dir: Path,
    sample_submission: Path,
    checkpoints: Sequence[Path],
    output: Path,
    detector_weights: Path | None = None,
) -> RunStats:
    """Score every video named in ``sample_submission`` and write ``output`` in that order."""
    filenames = read_sample_submission(sample_submission)
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise FileNotFoundError(f"video folder not found: {video_dir}")
    device = resolve_device(config.device)
    ensemble = Ensemble.load(checkpoints, device, fp16=config.fp16)
    detector = create_detector(config, detector_weights)
    log.info(
        "scoring %d videos from %s on %s: %d model(s) %s, detector %s, reader %s",
        len(filenames), video_dir, device, len(ensemble.models),
        ", ".join(f"{spec.arch}@{spec.input_size}" for spec in ensemble.specs), config.detector, config.reader,
    )
    scorer = VideoScorer(config, detector, ensemble)
    labels = {result.filename: result.label for result in scorer.score(video_dir, filenames)}
    write_submission(output, filenames, labels, config.fallback_label)
    log.info("%s", scorer.stats.summary())
    log.info("wrote %s (%d rows)", output, len(filenames))
    return scorer.stats
