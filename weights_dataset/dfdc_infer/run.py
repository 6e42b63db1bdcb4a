"""The whole job, as the kernel and the CLI run it: inputs checked, videos scored, CSV written.

Inputs are checked before any video is touched (sample submission, checkpoints, detector weights),
so a wrong path fails in the first second with a message naming it, not after hours.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable, Sequence

from .budget import BudgetGuard
from .config import InferenceConfig
from .device import resolve_device
from .face_detection import create_detector
from .models import Ensemble
from .pipeline import VideoScorer
from .results import RunStats
from .report import Report
from .resume import ProgressFile, run_fingerprint
from .submission import read_sample_submission, write_submission

log = logging.getLogger(__name__)


def run_submission(
    config: InferenceConfig,
    video_dir: Path,
    sample_submission: Path,
    checkpoints: Sequence[Path],
    output: Path,
    detector_weights: Path | None = None,
    resume: bool = True,
    clock: Callable[[], float] = time.monotonic,
    report: Path | None = None,
) -> RunStats:
    """Score every video named in ``sample_submission`` and write ``output`` in that order.

    With ``resume`` (default), videos recorded in ``<output>.progress`` by an interrupted run of the
    same settings and checkpoints are not scored again. ``clock`` drives the time budget (tests
    pass a fake one). With ``report``, that folder gets ``index.html`` and a contact sheet per
    video (``report``).
    """
    filenames = read_sample_submission(sample_submission)
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise FileNotFoundError(f"video folder not found: {video_dir}")
    page = Report(report, filenames, config) if report is not None else None  # an unwritable folder fails here
    device = resolve_device(config.device)
    ensemble = Ensemble.load(checkpoints, device, fp16=config.fp16, flip=config.flip_crops)
    detector = create_detector(config, detector_weights)

    progress = ProgressFile(Path(f"{output}.progress"), run_fingerprint(config, checkpoints, filenames))
    done = progress.load() if resume else {}
    if done:
        log.info("resuming: %d of %d videos already done in %s", len(done), len(filenames), progress.path)
    todo = [name for name in filenames if name not in done]
    guard = BudgetGuard(config.budget_hours * 3600, config.budget_margin_hours * 3600, clock=clock)
    scorer = VideoScorer(config, detector, ensemble, guard, evidence=page is not None)
    log.info(
        "scoring %d videos from %s on %s: %d model(s) %s, detector %s, reader %s, crops %s x%.2f, %s",
        len(todo), video_dir, device, len(ensemble.models),
        ", ".join(f"{spec.arch}@{spec.input_size}" for spec in ensemble.specs), config.detector, scorer.state.snapshot().reader,
        config.crop_geometry, config.crop_margin, config.aggregation,
    )
    labels = {name: result.label for name, result in done.items()}
    progress.open(done)
    try:
        for result in scorer.score(video_dir, todo):
            labels[result.filename] = result.label
            progress.record(result)
            if page is not None:
                page.add(result, scorer.evidence.pop(result.filename, None))
    finally:
        progress.close()
        write_submission(output, filenames, labels, config.fallback_label)
        if page is not None:
            for result in done.values():
                page.add(result, None)
            log.info("report: %s", page.finish())
    log.info("%s", scorer.stats.summary())
    log.info("wrote %s (%d rows)", output, len(filenames))
    return scorer.stats
