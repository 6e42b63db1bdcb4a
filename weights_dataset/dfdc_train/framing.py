"""How a crop set frames its faces, measured with our own detector, so inference can cut crops the same way.

    python -m dfdc_train.framing FOLDER [--sample 300] [--seed 0]

A model trained on someone else's face crops (Kaggle's "deepfake-faces": tight 224 px crops) only
works at test time if ``predict`` frames faces as those crops did. This places each sampled crop
in the middle of a black canvas three times its size (so a face touching the crop's edge is still
whole for the detector), runs the kernel's detector on it, and reports where our face box sits in
the crop: its longer side as a fraction of the crop side (the crop margin is the inverse), its
aspect, and the offset of its centre from the crop's centre. The medians become a preset's
``crop_margin`` (``dfdc_infer.config.PRESETS``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.config import InferenceConfig
from dfdc_infer.face_detection import create_detector

from .data import load_crop
from .faces_folder import read_faces_folder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Framing:
    """Medians (and quartiles) of where the detector's face box sits in the crops, in crop sides."""

    measured: int
    """Crops the detector found a face in."""
    missed: int
    """Crops without a face found (not counted in the figures)."""
    box_side: tuple[float, float, float]
    """The box's longer side / the crop side: 25th, 50th, 75th percentile."""
    aspect: float
    """Median box height / width."""
    centre_dx: float
    """Median horizontal offset of the box centre from the crop centre (+: right), in crop sides."""
    centre_dy: float
    """Median vertical offset (+: down), in crop sides."""

    @property
    def margin(self) -> float:
        """The ``square`` geometry's ``crop_margin`` that cuts crops of the same framing: crop side / box side."""
        return 1.0 / self.box_side[1]

    def describe(self) -> str:
        low, mid, high = self.box_side
        return (f"{self.measured} crops measured ({self.missed} without a face): face box longer side {mid:.3f} of the crop "
                f"(quartiles {low:.3f}-{high:.3f}) -> crop margin {self.margin:.2f}; box aspect h/w {self.aspect:.2f}; "
                f"box centre off the crop centre by {self.centre_dx:+.3f} across, {self.centre_dy:+.3f} down (crop sides)")


def face_box(image: np.ndarray, detector) -> np.ndarray | None:
    """The most confident face box of a crop in its own pixels (x1, y1, x2, y2), found on a padded canvas."""
    side = image.shape[0]
    canvas = np.zeros((3 * side, 3 * side, 3), np.uint8)
    canvas[side:2 * side, side:2 * side] = image
    found = detector.detect(canvas[None])[0]
    if len(found) == 0:
        return None
    return found[0, :4] - side


def measure(images: Sequence[np.ndarray], config: InferenceConfig | None = None, weights_dir: Path | None = None) -> Framing:
    """The framing of ``images`` (square crops), by the kernel's detector of ``config`` (MTCNN by default)."""
    detector = create_detector(config or InferenceConfig(detector_scale=1.0, min_face_size=20), weights_dir)
    sides, aspects, dx, dy, missed = [], [], [], [], 0
    for image in images:
        box = face_box(image, detector)
        if box is None:
            missed += 1
            continue
        side = image.shape[0]
        width, height = box[2] - box[0], box[3] - box[1]
        sides.append(max(width, height) / side)
        aspects.append(height / width)
        dx.append(((box[0] + box[2]) / 2 - side / 2) / side)
        dy.append(((box[1] + box[3]) / 2 - side / 2) / side)
    if not sides:
        raise ValueError(f"the detector found no face in any of the {len(images)} sampled crops")
    quartiles = np.percentile(sides, [25, 50, 75])
    return Framing(len(sides), missed, tuple(float(value) for value in quartiles), float(np.median(aspects)),
                   float(np.median(dx)), float(np.median(dy)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.framing", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a deepfake-faces folder (metadata.csv, faces_224/)")
    parser.add_argument("--sample", type=int, default=300, help="crops to measure, drawn at random (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup_logging()
    try:
        folder = read_faces_folder(args.folder)
        rows = np.random.default_rng(args.seed).permutation(len(folder.crops))[:args.sample]
        images = [load_crop(args.folder / folder.crops["path"].iloc[row]) for row in rows]
        print(measure(images).describe())
    except USER_ERRORS as error:
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
