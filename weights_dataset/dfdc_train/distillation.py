"""A teacher's scores as soft training targets: ``--teacher-scores FILE --teacher-weight W`` (knowledge distillation).

An ensemble ranks DFDC crops better than any of its members (two seeds of the starter: 0.946 AUC against 0.935 and
0.939) but is twice the size of one, and the committed starter must fit in 10 MB. Distillation (Hinton et al., 2015)
trains one network on a teacher's probabilities as well as on the labels, so a single checkpoint can take part of an
ensemble's gain; the teacher's probability also says which fakes are near copies of their source (the starter gives
them 0.58 where the other fakes get 0.81), so the label stops insisting on what cannot be seen.

The teacher's scores are what ``python -m dfdc_train.evaluate TEACHER [TEACHER ...] FOLDER --out scores.csv`` writes
for the training folder (``videoname,label,p_fake``, one row per crop; several rows of one video are averaged). Each
training crop's target becomes ``(1 - W) * label + W * p_fake``; W stays under 0.5, so every target keeps its label's
side of 0.5, by which the balanced loss and OHEM group crops. Only the training split takes them: validation and test
keep their labels, so held-out figures stay comparable with every run's. A crop the file does not score, and an
on-the-fly fake, keeps its label; the counts are logged. A file whose labels disagree with the folder's is refused
(scores of another folder), as is one that scores none of the training crops. The teacher must not have trained on the
run's validation or test crops (a person fold's, say): its scores would carry what it learnt from them into training.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from .layout import DataError
from .splits import Split

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("videoname", "label", "p_fake")


def read_teacher_scores(path: Path) -> pd.DataFrame:
    """``evaluate``'s scores file as one row per video (``label``, mean ``p_fake``), indexed by video name; a missing file,
    missing columns or a probability outside [0, 1] is a one-line ``DataError``."""
    try:
        table = pd.read_csv(path, dtype={"videoname": str, "label": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise DataError(f"--teacher-scores {path}: cannot read it ({error})") from error
    missing = [name for name in SCORE_COLUMNS if name not in table.columns]
    if missing:
        raise DataError(f"--teacher-scores {path}: missing columns {missing} (expected {','.join(SCORE_COLUMNS)}, as "
                        "`python -m dfdc_train.evaluate` writes)")
    scores = pd.to_numeric(table["p_fake"], errors="coerce")
    if scores.isna().any() or not scores.between(0.0, 1.0).all():
        raise DataError(f"--teacher-scores {path}: p_fake must be a probability in [0, 1] on every row")
    table = table.assign(p_fake=scores)
    if table.groupby("videoname")["label"].nunique().max() > 1:
        raise DataError(f"--teacher-scores {path}: one video has rows with two labels")
    return table.groupby("videoname").agg(label=("label", "first"), p_fake=("p_fake", "mean"))


def with_teacher_targets(split: Split, scores: pd.DataFrame, weight: float, source: Path) -> Split:
    """``split`` with a ``target`` column: ``(1 - weight) * label + weight * p_fake`` where ``scores`` has the crop's
    video, the label where it has not (see the module docstring)."""
    crops = split.crops
    labels = (crops["label"] == "FAKE").to_numpy(dtype=np.float64)
    known = crops["video"].isin(scores.index).to_numpy()
    if not known.any():
        raise DataError(f"--teacher-scores {source}: none of the {len(crops)} {split.name} crops is scored there "
                        "(scores of another folder?)")
    matched = scores.loc[crops["video"][known]]
    disagree = matched["label"].to_numpy() != crops["label"][known].to_numpy()
    if disagree.any():
        first = crops["video"][known][disagree].iloc[0]
        raise DataError(f"--teacher-scores {source}: {int(disagree.sum())} videos have another label there than in the "
                        f"folder (first: {first}); scores of another folder?")
    targets = labels.copy()
    targets[known] = (1 - weight) * labels[known] + weight * matched["p_fake"].to_numpy()
    log.info("%s split: %d of %d crops train on (1 - %.2g) x label + %.2g x the teacher's P(fake) from %s (--teacher-scores); "
             "%d the file does not score keep their label", split.name, int(known.sum()), len(crops), weight, weight, source,
             int((~known).sum()))
    return replace(split, crops=crops.assign(target=targets))
