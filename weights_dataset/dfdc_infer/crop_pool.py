"""Classification: crops of several videos pooled so the ensemble sees full batches.

A video's crops wait in the pool until it holds ``batch_size`` crops (or the run ends); then all
are scored at once and each video's label is the aggregate of its own crops (``aggregation``).
Every video is scored by the models of its own run state (``run_state.Snapshot``): crops cut for
other models (after the budget guard dropped one) are scored as a pool of their own. A batch
that runs past its timeout (``video_timeout`` per video in it) or fails costs its videos the
fallback label, not the run.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .aggregation import video_probability
from .config import InferenceConfig
from .models import Ensemble
from .report import Evidence
from .results import StageClock, VideoResult, fallback
from .run_state import Snapshot
from .watchdog import VideoTimeout, call_with_timeout

log = logging.getLogger(__name__)

Predict = Callable[[Ensemble, np.ndarray], np.ndarray]
"""(models, N) P(fake) of ``ensemble`` for N crops."""


@dataclass(frozen=True)
class _Pending:
    """A video whose crops wait for a model batch."""

    filename: str
    crops: np.ndarray
    frames: int
    state: Snapshot


class CropPool:
    """Pools crops, scores them in shared batches with ``predict`` (called with a timeout), records
    the classify stage on ``clock`` and, with ``evidence``, each video's crop probabilities."""

    def __init__(self, config: InferenceConfig, predict: Predict, clock: StageClock, evidence: dict[str, Evidence] | None) -> None:
        self.config = config
        self.predict = predict
        self.clock = clock
        self.evidence = evidence
        self._pending: list[_Pending] = []

    def add(self, filename: str, crops: np.ndarray, frames: int, state: Snapshot) -> list[VideoResult]:
        """Pool one video's crops; the results of the videos scored now (a full batch, or a pool
        for other models that had to be scored first)."""
        results = self.flush() if self._pending and self._pending[0].state.ensemble is not state.ensemble else []
        self._pending.append(_Pending(filename, crops, frames, state))
        if sum(len(item.crops) for item in self._pending) >= self.config.batch_size:
            results += self.flush()
        return results

    def flush(self) -> list[VideoResult]:
        """Score every pooled crop, then give each pooled video its label."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        started = time.perf_counter()
        try:
            probabilities = call_with_timeout(self.predict, self.config.video_timeout * len(pending),  # each video its own bound
                                              pending[0].state.ensemble, np.concatenate([item.crops for item in pending]))
        except VideoTimeout as error:
            results = [self._fallback(item, "timeout", f"timeout: {error}", f"timeout ({error})") for item in pending]
        except Exception as error:  # e.g. out of memory on a huge batch: these videos fall back
            results = [self._fallback(item, "failed", f"classification: {error}", f"classification failed ({type(error).__name__}: {error})")
                       for item in pending]
        else:
            bounds = np.cumsum([0] + [len(item.crops) for item in pending])
            results = [self._scored(item, probabilities[:, start:stop]) for item, start, stop in zip(pending, bounds[:-1], bounds[1:])]
        self.clock.record([self.clock.span("classify", started, time.perf_counter())])
        return results

    def _scored(self, item: _Pending, probabilities: np.ndarray) -> VideoResult:
        config = self.config
        label = video_probability(probabilities, config.clip_min, config.clip_max, config.aggregation)
        if self.evidence is not None and item.filename in self.evidence:
            self.evidence[item.filename].probabilities = probabilities
            self.evidence[item.filename].models = tuple(f"{spec.arch}@{spec.input_size}" for spec in item.state.ensemble.specs)
        log.info("%s: %.4f from %d crops of %d frames [%s]", item.filename, label, len(item.crops), item.frames, item.state)
        return VideoResult(item.filename, label, "scored", frames=item.frames, faces=len(item.crops))

    def _fallback(self, item: _Pending, status: str, reason: str, said: str) -> VideoResult:
        return fallback(item.filename, self.config.fallback_label, status, reason, item.state, said, item.frames)
