"""The submission file: every filename of ``sample_submission.csv`` once, in its order.

A missing row scores nothing on Kaggle, so ``write_submission`` cannot leave one out: any filename
without a result gets the fallback label. The file is written to a temporary name and renamed, so
an interrupted run never leaves a half-written CSV behind.

A filename is the name of a file *inside* the videos folder (``outside_videos_folder``): one that
is a path (``../x.mp4``, ``/data/x.mp4``, ``sub/x.mp4``, ``C:x.mp4``) is never opened and gets the
fallback label. Symlinks inside the folder are followed: users link their datasets.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import pandas as pd


class SubmissionError(ValueError):
    """The sample submission is missing or malformed; the message names the path."""


def outside_videos_folder(name: str) -> bool:
    """Whether ``name`` reaches past a plain file name: a path separator (``/`` or Windows' ``\\``),
    a parent segment, a drive, an absolute path."""
    return "/" in name or "\\" in name or name == ".." or re.match(r"[A-Za-z]:", name) is not None


def read_sample_submission(path: Path) -> list[str]:
    """Filenames in the order Kaggle expects; duplicates and a missing column are errors."""
    path = Path(path)
    if not path.is_file():
        raise SubmissionError(f"sample submission not found: {path}")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise SubmissionError(f"{path}: not a readable CSV ({error})") from error
    if "filename" not in table.columns:
        raise SubmissionError(f"{path}: no 'filename' column (columns: {', '.join(map(str, table.columns))})")
    filenames = table["filename"].astype(str)
    counts = filenames.value_counts()
    duplicated = sorted(counts[counts > 1].index)
    if duplicated:
        raise SubmissionError(f"{path}: duplicated filenames, e.g. {duplicated[:3]}")
    return filenames.tolist()


def write_submission(path: Path, filenames: list[str], labels: Mapping[str, float], fallback: float = 0.5) -> pd.DataFrame:
    """Write ``filename,label`` for every name in ``filenames``, in order; absent labels get ``fallback``."""
    table = pd.DataFrame({"filename": filenames, "label": [float(labels.get(name, fallback)) for name in filenames]})
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    table.to_csv(temporary, index=False)
    os.replace(temporary, path)
    return table
