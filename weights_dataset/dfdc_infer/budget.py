"""The time budget: project the finish from the observed rate and say when to cut work.

Kaggle kills a notebook at 9 hours and a killed notebook scores nothing, so the pipeline asks the
guard before every video. Ladder of cuts, cheapest loss of accuracy first:

1. ``"fewer_frames"``: halve the frames sampled per video (down to ``min_frames_per_video``);
2. ``"drop_model"``: leave out the slowest model of the ensemble (never the last one);
3. ``"stop"``: the deadline (budget less the safety margin) is reached: every remaining video
   gets the fallback label, so a complete ``submission.csv`` exists in time.

The rate is measured only over videos processed after the last cut took effect (videos already
decoded ahead under the old setting are let through first), so each cut is judged on its own
effect; a cut is considered only after ``min_videos`` videos at the current setting.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

from .progress import format_duration

log = logging.getLogger(__name__)


@dataclass
class BudgetGuard:
    """Decides, from the clock and the videos done, whether the run must get cheaper or stop."""

    budget_seconds: float
    margin_seconds: float
    min_videos: int = 5
    clock: Callable[[], float] = time.monotonic
    started: float = field(init=False)
    _since_time: float = field(init=False)
    _since_done: int = field(init=False, default=0)
    _settle_until: int | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.started = self.clock()
        self._since_time = self.started

    @property
    def deadline(self) -> float:
        """Seconds after start by which every row must be written."""
        return self.budget_seconds - self.margin_seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def out_of_time(self) -> bool:
        return self.elapsed() >= self.deadline

    def check(self, done: int, remaining: int) -> str:
        """``"ok"``, ``"slow"`` (projected finish past the deadline) or ``"stop"``."""
        if self.out_of_time():
            return "stop"
        elapsed = self.elapsed()
        if self._settle_until is not None:
            if done < self._settle_until:
                return "ok"
            self._settle_until = None
            self._since_time, self._since_done = self.clock(), done
        measured = done - self._since_done
        if remaining == 0 or measured < self.min_videos:
            return "ok"
        rate = (self.clock() - self._since_time) / measured
        projected = elapsed + remaining * rate
        if projected <= self.deadline:
            return "ok"
        log.warning(
            "budget: %.2f s/video x %d videos left -> finish at %s, past the deadline %s",
            rate, remaining, format_duration(projected), format_duration(self.deadline),
        )
        return "slow"

    def restart_rate(self, done: int, in_flight: int = 0) -> None:
        """Measure the rate afresh once the ``in_flight`` videos prepared before a cut are through."""
        self._settle_until = done + in_flight
