"""The competition's metric and AUC, per crop and per video.

Logloss is computed on probabilities clipped to [clip_min, clip_max] (0.01, 0.99), exactly what
the kernel submits, so a validation figure is a leaderboard-comparable figure. Per-video scores
come from ``dfdc_infer.aggregation.video_probability``, the kernel's own rules (``mean`` over crops,
or the 1st place's ``confident``, then clip), not from a re-implementation of them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dfdc_infer.aggregation import video_probability


def clipped_logloss(labels: np.ndarray, probabilities: np.ndarray, clip_min: float = 0.01, clip_max: float = 0.99) -> float:
    """Mean binary logloss after clipping the probabilities (labels may be soft)."""
    labels = np.asarray(labels, dtype=np.float64)
    p = np.clip(np.asarray(probabilities, dtype=np.float64), clip_min, clip_max)
    if len(labels) == 0:
        raise ValueError("logloss of nothing: no labels")
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def balanced_logloss(labels: np.ndarray, probabilities: np.ndarray, clip_min: float = 0.01, clip_max: float = 0.99) -> float:
    """The mean of the REAL half's and the FAKE half's clipped logloss (of whichever halves there are, 0/1 labels).

    DFDC is 83% fake, so a plain logloss flatters a model that leans to FAKE; this one weighs both classes alike.
    """
    labels, probabilities = np.asarray(labels, np.float64), np.asarray(probabilities, np.float64)
    halves = [clipped_logloss(labels[part], probabilities[part], clip_min, clip_max) for part in (labels < 0.5, labels >= 0.5) if part.any()]
    return float(np.mean(halves))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve from ranks (Mann-Whitney U), ties counted half; NaN without both classes.

    AUC is the probability that a random fake scores above a random real; with average ranks,
    the positives' rank sum minus its minimum, over the number of (fake, real) pairs, is that.
    """
    labels = np.asarray(labels) > 0.5
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def per_video(videos: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, clip_min: float = 0.01,
              clip_max: float = 0.99, rule: str = "mean") -> pd.DataFrame:
    """One row per video (``video``, ``label``, ``probability``), aggregated as the kernel does with ``rule``."""
    table = pd.DataFrame({"video": videos, "label": labels, "probability": probabilities})
    rows = [(video, float(group["label"].iloc[0]),
             video_probability(group["probability"].to_numpy()[None, :], clip_min, clip_max, rule))
            for video, group in table.groupby("video", sort=True)]
    return pd.DataFrame(rows, columns=["video", "label", "probability"])


def score(videos: np.ndarray, labels: np.ndarray, probabilities: np.ndarray, clip_min: float = 0.01,
          clip_max: float = 0.99, rule: str = "mean") -> dict[str, float | int]:
    """Logloss and AUC per crop and per video (aggregated with ``rule``), the balanced logloss per video, with the crop and
    video counts."""
    by_video = per_video(videos, labels, probabilities, clip_min, clip_max, rule)
    return {
        "crop_logloss": clipped_logloss(labels, probabilities, clip_min, clip_max),
        "crop_auc": roc_auc(labels, probabilities),
        "video_logloss": clipped_logloss(by_video["label"], by_video["probability"], clip_min, clip_max),
        "video_auc": roc_auc(by_video["label"], by_video["probability"]),
        "video_balanced_logloss": balanced_logloss(by_video["label"], by_video["probability"], clip_min, clip_max),
        "crops": len(labels),
        "videos": len(by_video),
    }
