"""Score a folder of face crops with checkpoints, exactly as the kernel scores a crop, and report the figures.

    python -m dfdc_train.evaluate CHECKPOINT [CHECKPOINT ...] FOLDER [--out scores.csv] [--chunks 45-49] [--limit N]

FOLDER is a deepfake-faces folder (``faces_folder``) or an extraction output. Each crop is resized to
the model's input with the kernel's own resampling and scored by ``dfdc_infer.models.Ensemble``
(the checkpoint's normalisation and temperature; several checkpoints: the mean over models, as the
kernel's ensemble; each crop with its mirror image too when the checkpoints' preset flips crops, or with
``--flip-crops``), so the figures are those the kernel would give these crops. Writes
``videoname,label,p_fake`` (one row per crop) and prints:

- AUC;
- logloss, each probability clipped to [0.01, 0.99] (the competition's, as the kernel clips);
- balanced logloss: the mean of the REAL crops' and the FAKE crops' loglosses. DFDC is 83% fake, so
  the plain logloss flatters a model that leans to FAKE; the balanced one does not.

``--chunks`` keeps the crops of those (pseudo-)chunks only: the split a training run held out (its
test chunks are in the checkpoint's ``train_config``). An unreadable image is skipped and counted.

``--persons FILE`` (``python -m dfdc_train.identities``) measures the identity leak of a split by original:
the figures again for the crops of people the first checkpoint trained on (a person with an original in its
training chunks) and of people it never saw, and ``person,person_seen`` columns in the scores. The chunks are
dealt as that checkpoint's training dealt them (its ``group``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.config import InferenceConfig, chosen_preset, preset_config
from dfdc_infer.cropping import resize_square
from dfdc_infer.models import Ensemble, checkpoint_presets, read_checkpoint
from dfdc_infer.progress import ProgressLine

from .data import read_rgb
from .layout import parse_chunk_spec
from .metrics import balanced_logloss, clipped_logloss, roc_auc
from .train import read_crops

log = logging.getLogger(__name__)

CHUNK = 256
"""Crops decoded and scored together (bounded memory for 95,634 crops)."""


@dataclass(frozen=True)
class Figures:
    """What ``evaluate`` prints about a crop set's scores."""

    crops: int
    real: int
    fake: int
    auc: float
    logloss: float
    balanced_logloss: float
    skipped: int = 0

    def describe(self) -> str:
        skipped = f", {self.skipped} unreadable skipped" if self.skipped else ""
        return (f"{self.crops} crops ({self.real} REAL, {self.fake} FAKE{skipped}): AUC {self.auc:.4f}, logloss {self.logloss:.4f} "
                f"(clipped to [{InferenceConfig.clip_min}, {InferenceConfig.clip_max}]), balanced logloss {self.balanced_logloss:.4f}")


def figures(labels: np.ndarray, scores: np.ndarray, clip_min: float = InferenceConfig.clip_min,
            clip_max: float = InferenceConfig.clip_max) -> Figures:
    """AUC, clipped logloss and balanced logloss (mean over the two classes) of P(fake) ``scores`` for 0/1 ``labels``."""
    labels = np.asarray(labels, np.float64)
    real, fake = labels == 0, labels == 1
    return Figures(len(labels), int(real.sum()), int(fake.sum()), roc_auc(labels, scores) if real.any() and fake.any() else float("nan"),
                   clipped_logloss(labels, scores, clip_min, clip_max), balanced_logloss(labels, scores, clip_min, clip_max))


def decode(path: Path, size: int) -> np.ndarray | None:
    """A crop file at the model's input size (RGB uint8), or None when it cannot be decoded."""
    image = read_rgb(path)
    return None if image is None else resize_square(image, size)


def score_crops(ensemble: Ensemble, folder: Path, paths: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """P(fake) per crop file (the mean over the ensemble's models); NaN for a file that cannot be decoded."""
    scores = np.full(len(paths), np.nan, np.float32)
    progress = ProgressLine(len(paths), unit="crops", every_seconds=30)
    with ThreadPoolExecutor(2) as pool:
        for start in range(0, len(paths), CHUNK):
            images = list(pool.map(lambda path: decode(Path(folder) / path, ensemble.crop_size), paths[start:start + CHUNK]))
            good = [position for position, image in enumerate(images) if image is not None]
            if good:
                predicted = ensemble.predict(np.stack([images[position] for position in good]), batch_size).mean(axis=0)
                scores[start + np.array(good)] = predicted
            progress.advance(len(images))
    return scores


def evaluate_folder(checkpoints: Sequence[Path], folder: Path, chunks: str | None = None, limit: int | None = None,
                    seed: int = 0, persons: str = "", flip: bool = False) -> tuple[pd.DataFrame, Figures]:
    """The scores table (``videoname,label,p_fake``) and figures of the crops of ``folder`` (optionally only ``chunks``;
    ``limit``: a random sample of that many, drawn with ``seed``; ``persons``: with each crop's person and whether the
    first checkpoint trained on that person; ``flip``: each crop also scored mirrored, as ``predict --flip-crops``)."""
    trained = read_checkpoint(checkpoints[0])[0].meta.get("train_config", {}) if persons else {}
    crops, _, _ = read_crops(folder, persons=persons, group=trained.get("group", "original"))
    if persons:
        seen = set(crops.loc[crops["chunk"].isin(parse_chunk_spec(trained.get("train_chunks", ""))), "identity"])
        crops = crops.assign(person=crops["identity"], person_seen=crops["identity"].isin(seen).map({True: "seen", False: "unseen"}))
    if chunks:
        crops = crops[crops["chunk"].isin(parse_chunk_spec(chunks))]
    if limit is not None and limit < len(crops):
        crops = crops.iloc[np.sort(np.random.default_rng(seed).permutation(len(crops))[:limit])]
    if crops.empty:
        raise ValueError(f"{folder}: no crops to score{f' in chunks {chunks}' if chunks else ''}")
    ensemble = Ensemble.load(checkpoints, torch.device("cpu"), flip=flip)
    log.info("scoring %d crops of %s with %s", len(crops), folder, ", ".join(f"{spec.arch}@{spec.input_size}" for spec in ensemble.specs))
    scores = score_crops(ensemble, folder, crops["path"].tolist())
    readable = ~np.isnan(scores)
    if not readable.all():
        log.warning("skipped %d crops whose image could not be decoded, e.g. %s", int((~readable).sum()),
                    crops["path"].iloc[int(np.argmin(readable))])
    table = pd.DataFrame({"videoname": crops["video"].to_numpy()[readable], "label": crops["label"].to_numpy()[readable],
                          "p_fake": scores[readable]})
    if persons:
        table[["person", "person_seen"]] = crops[["person", "person_seen"]].to_numpy()[readable]
    result = figures((table["label"] == "FAKE").to_numpy(), table["p_fake"].to_numpy())
    return table, replace(result, skipped=int((~readable).sum()))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("paths", type=Path, nargs="+", metavar="CHECKPOINT ... FOLDER",
                        help="one or more checkpoints, then the crop folder (deepfake-faces layout or an extraction output)")
    parser.add_argument("--out", type=Path, default=Path("scores.csv"), help="the per-crop scores (default: scores.csv)")
    parser.add_argument("--chunks", default=None, metavar="SPEC", help="only the crops of these (pseudo-)chunks, e.g. 45-49")
    parser.add_argument("--limit", type=int, default=None, help="score a random sample of this many crops")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    parser.add_argument("--persons", default="", metavar="FILE",
                        help="original,person table (python -m dfdc_train.identities): figures for seen and unseen people too")
    parser.add_argument("--flip-crops", action=argparse.BooleanOptionalAction, default=None,
                        help="also score every crop mirrored left-right and average the two, as predict --flip-crops (default: "
                             "as the preset the checkpoints were trained for)")
    args = parser.parse_args(argv)
    setup_logging()
    if len(args.paths) < 2:
        parser.error("give at least one CHECKPOINT and the FOLDER")
    try:
        flip = args.flip_crops
        if flip is None:
            flip = preset_config(chosen_preset(args, lambda: checkpoint_presets(args.paths[:-1]))).flip_crops
        table, result = evaluate_folder(args.paths[:-1], args.paths[-1], args.chunks, args.limit, args.seed, args.persons, flip)
    except USER_ERRORS as error:
        return fail(error)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False, float_format="%.6f")
    print(result.describe())
    if args.persons:
        for seen, part in table.groupby("person_seen"):
            labels = (part["label"] == "FAKE").to_numpy()
            print(f"people {seen} in training ({part['person'].nunique()}): {figures(labels, part['p_fake'].to_numpy()).describe()}")
    print(f"wrote {args.out} ({len(table)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
