"""Resume: every finished video is appended to a progress file, so a restarted run skips it.

The file sits next to the output (``submission.csv.progress``). Its first line is a fingerprint of
what determines the labels (settings, checkpoint hashes, detector); a progress file from another
run is ignored and replaced, never mixed in. Each later line is ``filename,label,status``, written
and flushed as soon as the video is done, so an interrupted run loses at most the line being
written (an incomplete last line is dropped when reading). Videos that only got the fallback
because time ran out are not recorded: a rerun with more time scores them.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
from pathlib import Path
from typing import Sequence, TextIO

from .config import InferenceConfig
from .manifest import sha256_file
from .results import STATUSES, VideoResult

log = logging.getLogger(__name__)

NOT_RECORDED = {"out_of_time"}


def run_fingerprint(config: InferenceConfig, checkpoints: Sequence[Path], filenames: Sequence[str]) -> str:
    """Hash of the settings, the checkpoint contents and the video list."""
    content = {
        "config": config.to_dict(),
        "checkpoints": [sha256_file(Path(path)) for path in checkpoints],
        "filenames": list(filenames),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


class ProgressFile:
    """Append-only record of finished videos for one run fingerprint."""

    def __init__(self, path: Path, fingerprint: str) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._handle: TextIO | None = None

    def load(self) -> dict[str, VideoResult]:
        """Results recorded by an earlier run with the same fingerprint ({} if none or another run's)."""
        if not self.path.is_file():
            return {}
        lines = self.path.read_text().split("\n")
        if lines[0] != f"# run {self.fingerprint}":
            log.warning("%s belongs to another run (other settings, checkpoints or videos): starting over", self.path)
            return {}
        done = {}
        for row in csv.reader(lines[1:-1]):  # the last element is "" after a complete line, else a torn line
            if len(row) == 3 and row[2] in STATUSES:
                done[row[0]] = VideoResult(row[0], float(row[1]), row[2], "resumed")
        return done

    def open(self, keep: dict[str, VideoResult]) -> None:
        """Start writing: rewrite the header and the results kept, then append as videos finish."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.path, "w", newline="")
        self._handle.write(f"# run {self.fingerprint}\n")
        for result in keep.values():
            self.record(result)

    def record(self, result: VideoResult) -> None:
        if self._handle is None or result.status in NOT_RECORDED:
            return
        csv.writer(self._handle, lineterminator="\n").writerow([result.filename, repr(result.label), result.status])
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
