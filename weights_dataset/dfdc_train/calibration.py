"""Temperature scaling: one scalar per model, fitted on the validation split, applied by the kernel.

A network trained to separate its training fakes is over- or under-confident on people and
manipulations it never saw, and logloss punishes confident mistakes hard. Dividing the logits by a
temperature T (Guo et al., 2017) keeps every ranking (AUC) and only sharpens (T < 1) or softens
(T > 1) the probabilities. T is chosen to minimise the validation split's per-video logloss as the
kernel computes it (sigmoid(logit / T) per crop, the aggregation rule, clipping), stored in the
checkpoint's ``meta["temperature"]`` and applied by ``dfdc_infer.models.Ensemble``. Only T >= 1 is
considered (see ``TEMPERATURES``). A run trained with ``--balanced-loss`` aims at a 50/50 prior, so its T
minimises the balanced logloss (the REAL and FAKE halves' mean) instead: on DFDC's 83% fakes the plain one
would soften its sure reals to make up for a prior it was never trained to have.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .metrics import balanced_logloss, clipped_logloss, per_video

TEMPERATURES = np.exp(np.linspace(0.0, np.log(8.0), 36))
"""The candidates: 1 to 8 in equal ratios (about 6% apart). Never below 1: a validation split of a few
people that a model happens to rank well asks for sharper probabilities, which then cost dearly on
the next people (measured: T = 0.45 fitted on one held-out person took two others from logloss 0.83
to 1.25). Softening is safe; sharpening is left to more validation data than a fit of one scalar sees."""


def probabilities(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """P(fake) per crop from logits at ``temperature``."""
    return 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64) / temperature))


def video_logloss(videos: np.ndarray, labels: np.ndarray, logits: np.ndarray, temperature: float, clip_min: float, clip_max: float,
                  rule: str = "mean", balanced: bool = False) -> float:
    """The per-video clipped logloss (``balanced``: the mean of its REAL and FAKE halves) of crop ``logits`` at ``temperature``."""
    table = per_video(videos, labels, probabilities(logits, temperature), clip_min, clip_max, rule)
    return (balanced_logloss if balanced else clipped_logloss)(table["label"], table["probability"], clip_min, clip_max)


def fit_temperature(videos: np.ndarray, labels: np.ndarray, logits: np.ndarray, clip_min: float = 0.01, clip_max: float = 0.99,
                    balanced: bool = False) -> float:
    """The candidate temperature with the lowest per-video logloss (``balanced``: balanced logloss) under the kernel's mean
    rule (the smallest one on ties).

    Per-video means with ``np.bincount``: linear in the crops, so a DFDC-sized validation split fits too.
    """
    codes, names = pd.factorize(pd.Series(videos))
    counts = np.bincount(codes, minlength=len(names))
    truth = np.zeros(len(names))
    truth[codes] = np.asarray(labels, dtype=np.float64)
    loss = balanced_logloss if balanced else clipped_logloss
    losses = []
    for temperature in TEMPERATURES:
        mean = np.bincount(codes, weights=probabilities(logits, float(temperature)), minlength=len(names)) / counts
        losses.append(loss(truth, mean, clip_min, clip_max))
    return float(TEMPERATURES[int(np.argmin(losses))])
