"""How per-crop probabilities become one label per video: written down here, and only here.

1. per model: the mean probability over every scored face crop of the video (all frames, all
   faces that were selected);
2. across models: the plain mean of those per-model means (the write-ups' simple averaging);
3. clip to ``[clip_min, clip_max]`` (default [0.01, 0.99]) so one confident mistake cannot cost
   more than -log(0.01) = 4.6 in logloss.

Training's evaluation calls ``video_probability`` too, so validation scores mean what the kernel
will submit.
"""

from __future__ import annotations

import numpy as np


def video_probability(crop_probabilities: np.ndarray, clip_min: float = 0.01, clip_max: float = 0.99) -> float:
    """One video's label from a (models, crops) array of P(fake); needs at least one crop."""
    probabilities = np.asarray(crop_probabilities, dtype=np.float64)
    if probabilities.ndim != 2 or probabilities.shape[1] == 0:
        raise ValueError(f"expected a (models, crops) array with crops > 0, got shape {probabilities.shape}")
    per_model = probabilities.mean(axis=1)
    return float(np.clip(per_model.mean(), clip_min, clip_max))
