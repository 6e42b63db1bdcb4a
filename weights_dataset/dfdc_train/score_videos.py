"""Score a submission against the videos' true labels: the video-level figures of a run of ``predict``.

    python -m dfdc_train.score_videos SUBMISSION.csv METADATA.json [--by labels.csv:method]

METADATA.json is DFDC's (``{"name.mp4": {"label": "FAKE"|"REAL", ...}}``), as a DFDC-layout test
folder of labelled videos has it. Prints AUC, logloss (the competition's: the labels as written,
clipped to [0.01, 0.99] as the kernel clips) and the balanced logloss (the mean of the REAL and
the FAKE videos' loglosses), the same figures ``evaluate`` gives for crops. ``--by FILE:COLUMN``
adds one line per value of a column of a CSV keyed by ``filename`` (e.g. each fake method against
all the real videos).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from dfdc_infer.console import fail

from .evaluate import Figures, figures


def labelled(submission: Path, metadata: Path) -> pd.DataFrame:
    """The submission's rows with a ``fake`` column (1.0 / 0.0) from the metadata; a video it lacks is an error."""
    table = pd.read_csv(submission)
    truth = json.loads(Path(metadata).read_text())
    missing = [name for name in table["filename"] if name not in truth]
    if missing:
        raise ValueError(f"{metadata} has no label for {len(missing)} videos of {submission}, e.g. {missing[0]}")
    table["fake"] = [1.0 if truth[name]["label"] == "FAKE" else 0.0 for name in table["filename"]]
    return table


def by_group(table: pd.DataFrame, groups: pd.Series) -> dict[str, Figures]:
    """Figures of each fake group's videos beside all the real ones (a group of real videos: those alone)."""
    reals = table["fake"] == 0
    result = {}
    for name in sorted(set(groups[table["fake"] == 1])):
        part = table[reals | (groups == name)]
        result[name] = figures(part["fake"].to_numpy(), part["label"].to_numpy())
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.score_videos", description=__doc__.splitlines()[0])
    parser.add_argument("submission", type=Path)
    parser.add_argument("metadata", type=Path, help="metadata.json with each video's label")
    parser.add_argument("--by", default=None, metavar="FILE:COLUMN", help="also per value of COLUMN of a CSV keyed by filename")
    args = parser.parse_args(argv)
    try:
        table = labelled(args.submission, args.metadata)
        print(f"all videos: {figures(table['fake'].to_numpy(), table['label'].to_numpy()).describe().replace('crops', 'videos')}")
        if args.by:
            path, column = args.by.rsplit(":", 1)
            extra = pd.read_csv(path).set_index("filename")[column]
            for name, result in by_group(table, table["filename"].map(extra).fillna("")).items():
                print(f"{name} fakes with every real video: AUC {result.auc:.4f}, logloss {result.logloss:.4f} "
                      f"({result.fake} fake, {result.real} real)")
    except (FileNotFoundError, KeyError, ValueError) as error:
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
