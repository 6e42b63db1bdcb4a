"""How per-crop probabilities become one label per video: written down here, and only here.

1. per model: a rule (``AGGREGATIONS``, ``config.aggregation``) turns the probabilities of every
   scored crop of the video (all sampled frames, all selected faces) into one:
   - ``mean`` (the ``seed`` preset): their mean;
   - ``confident`` (the DFDC 1st place's "confident strategy"): when more than 11 crops, and more
     than ``len // 2.5`` of them, are above 0.8, the mean of those; else when more than 90% are
     below 0.2, the mean of those; else the mean. One confidently fake face track outweighs many
     unsure frames, instead of being averaged away;
2. across models: the plain mean of the per-model results;
3. clip to ``[clip_min, clip_max]`` (``seed``: [0.01, 0.99], so one confident mistake cannot cost
   more than -log(0.01) = 4.6 in logloss; ``dfdc-1st``: [0, 1], no clipping).

Training's evaluation calls ``video_probability`` too, so validation scores mean what the kernel
will submit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .registry import Registry

AGGREGATIONS: Registry[Callable[[np.ndarray], float]] = Registry("aggregation rule")
"""Per-model rules: a (crops,) array of P(fake), at least one crop -> one P(fake)."""


@AGGREGATIONS.register("mean")
def mean_rule(probabilities: np.ndarray) -> float:
    return float(np.mean(probabilities))


@AGGREGATIONS.register("confident")
def confident_rule(probabilities: np.ndarray, fake_above: float = 0.8, real_below: float = 0.2) -> float:
    count = len(probabilities)
    fakes = probabilities > fake_above
    if fakes.sum() > count // 2.5 and fakes.sum() > 11:
        return float(probabilities[fakes].mean())
    reals = probabilities < real_below
    if reals.sum() > 0.9 * count:
        return float(probabilities[reals].mean())
    return float(probabilities.mean())


def video_probability(crop_probabilities: np.ndarray, clip_min: float = 0.01, clip_max: float = 0.99, rule: str = "mean") -> float:
    """One video's label from a (models, crops) array of P(fake); needs at least one crop."""
    probabilities = np.asarray(crop_probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] == 0:
        raise ValueError(f"expected a (models, crops) array with crops > 0, got shape {probabilities.shape}")
    per_model = AGGREGATIONS.get(rule)
    return float(np.clip(np.mean([per_model(row) for row in probabilities]), clip_min, clip_max))
