"""The DFDC training download: ``ROOT/dfdc_train_part_{i}/`` chunks, each with ``metadata.json``.

``metadata.json`` maps every video of a chunk to ``{"label": "REAL"|"FAKE", "split": "train",
"original": "y.mp4"}`` (``original`` is null or absent for REAL videos); any other key (DFDC's
``split``, or a generator's ``identity`` or ``method``) is kept and becomes a column of the crop
index, so facts about a video reach training without a code change. Chunks are the unit of
everything downstream: extraction works, resumes, shards and deletes chunk by chunk, and the
train/validation/test split is a split of chunk numbers, because DFDC keeps an original and its
fakes in one chunk.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHUNK_PATTERN = re.compile(r"^dfdc_train_part_(\d+)$")
LABELS = ("REAL", "FAKE")


class DataError(ValueError):
    """Input data that training cannot use; the message is one line naming the file and the fault."""


@dataclass(frozen=True)
class Chunk:
    """One ``dfdc_train_part_{number}`` folder."""

    number: int
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class VideoEntry:
    """One video as its chunk's metadata.json describes it."""

    name: str
    label: str
    original: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    """Every other key of the entry (e.g. ``split``), as given; lists and objects as JSON text."""


def find_chunks(root: Path, spec: str | None = None) -> list[Chunk]:
    """The chunk folders under ``root`` in number order, only those in ``spec`` when given.

    A missing root, no chunk at all, or a chunk number in ``spec`` with no folder is a ``DataError``:
    silently training on fewer chunks than asked for would be worse than stopping.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset folder not found: {root}")
    chunks = sorted((Chunk(int(match.group(1)), path) for path in root.iterdir()
                     if path.is_dir() and (match := CHUNK_PATTERN.match(path.name))), key=lambda chunk: chunk.number)
    if not chunks:
        raise DataError(f"no dfdc_train_part_* folders in {root}")
    if spec is None:
        return chunks
    wanted = parse_chunk_spec(spec)
    absent = sorted(wanted - {chunk.number for chunk in chunks})
    if absent:
        raise DataError(f"chunks {format_chunk_spec(absent)} asked for but not in {root}")
    return [chunk for chunk in chunks if chunk.number in wanted]


def read_metadata(chunk: Chunk) -> dict[str, VideoEntry]:
    """The chunk's metadata.json, checked: every entry needs a REAL/FAKE label, fakes name their original."""
    path = chunk.path / "metadata.json"
    if not path.is_file():
        raise DataError(f"{path} not found: every DFDC chunk folder needs its metadata.json")
    try:
        raw = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected an object of videos, found {type(raw).__name__}")
    entries = {}
    for name, entry in sorted(raw.items()):
        label = entry.get("label") if isinstance(entry, dict) else None
        if label not in LABELS:
            raise DataError(f"{path}: {name} has label {label!r}, expected REAL or FAKE")
        original = entry.get("original") or None
        if label == "FAKE" and original is None:
            raise DataError(f"{path}: FAKE video {name} names no original")
        extra = {key: value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value, sort_keys=True)
                 for key, value in entry.items() if key not in ("label", "original")}
        entries[name] = VideoEntry(name, label, original if label == "FAKE" else None, extra)
    return entries


def parse_chunk_spec(text: str) -> frozenset[int]:
    """``"0-39,45"`` -> {0, ..., 39, 45}; ``""`` -> nothing. Raises ValueError on anything else."""
    numbers: set[int] = set()
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if match is None:
            raise ValueError(f"bad chunk list {text!r}: use numbers and ranges like 0-39,45")
        low, high = int(match.group(1)), int(match.group(2) or match.group(1))
        if high < low:
            raise ValueError(f"bad chunk range {part!r} in {text!r}: the end is before the start")
        numbers.update(range(low, high + 1))
    return frozenset(numbers)


def format_chunk_spec(numbers: set[int] | frozenset[int] | list[int]) -> str:
    """The inverse of ``parse_chunk_spec``, with runs collapsed: {0, 1, 2, 5} -> ``"0-2,5"``."""
    ordered = sorted(numbers)
    runs: list[str] = []
    start = 0
    for position in range(1, len(ordered) + 1):
        if position == len(ordered) or ordered[position] != ordered[position - 1] + 1:
            low, high = ordered[start], ordered[position - 1]
            runs.append(str(low) if low == high else f"{low}-{high}")
            start = position
    return ",".join(runs)


def parse_shard(text: str) -> tuple[int, int]:
    """``"k/N"`` -> (k, N) with 0 <= k < N."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if match is None or not int(match.group(1)) < int(match.group(2)):
        raise ValueError(f"bad shard {text!r}: expected k/N with 0 <= k < N, e.g. 0/4")
    return int(match.group(1)), int(match.group(2))


def shard_chunks(chunks: list[Chunk], shard: tuple[int, int]) -> list[Chunk]:
    """Shard k of N gets chunk i when i % N == k: every chunk goes to exactly one shard."""
    index, count = shard
    return [chunk for chunk in chunks if chunk.number % count == index]
