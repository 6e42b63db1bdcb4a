"""A plain progress line for long runs: count, rate and ETA, printed at most every few seconds.

Plain log lines instead of a terminal progress bar, because Kaggle's saved notebook log keeps every
redraw of a bar; and no extra dependency.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

log = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``12s``."""
    seconds = int(round(max(seconds, 0)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLine:
    """Logs ``[done/total] pct, s/unit, elapsed, ETA`` every ``every_seconds`` and at the end."""

    def __init__(
        self, total: int, unit: str = "videos", every_seconds: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.unit = unit
        self.every_seconds = every_seconds
        self.clock = clock
        self.started = clock()
        self.last_logged = self.started
        self.done = 0

    def advance(self, count: int = 1) -> None:
        self.done += count
        now = self.clock()
        if self.done >= self.total or now - self.last_logged >= self.every_seconds:
            self.last_logged = now
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = (self.clock() if now is None else now) - self.started
        rate = elapsed / self.done if self.done else 0.0
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"[{self.done}/{self.total} {self.unit}] {percent:.0f}% {rate:.2f} s/{self.unit[:-1] or self.unit}, "
            f"elapsed {format_duration(elapsed)}, ETA {format_duration(rate * (self.total - self.done))}"
        )
