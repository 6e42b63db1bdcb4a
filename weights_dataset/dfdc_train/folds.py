"""K-fold over people: every identity tested once, so recipes are ranked by a mean and its spread, not by one split.

    python -m dfdc_train.folds CROPS OUT --folds 3 [--seeds 0,1] [any dfdc_train.train flag, e.g. --pretrained efficientnet-lite0]

The identities of the crop index (sorted) are dealt into ``--folds`` groups, identity ``n`` into group ``n % K``. Fold
``i`` tests group ``i``, validates on every other person of group ``i + 1`` (best epoch, early stopping, calibration), and
trains on everyone else; the held-out fake methods (``--test-methods``) stay out of every fold's training. Each fold is
an ordinary training run in ``OUT/fold-I[-seed-S]``. ``OUT/folds.csv`` gets one row per run (test AUC, logloss and
balanced logloss per video, the held-out methods' AUC, the best epoch) and ``OUT/summary.csv`` their mean and standard
deviation, as printed.
``--teacher-scores`` is refused: one scores file would serve every fold, so a teacher trained on this folder would
bring each fold's held-out people into its training (distil inside one run of ``dfdc_train.train`` instead).
Needs identities: the ``identity`` column of an extraction (metadata.json ``identity``, which the sample generator
writes; DFDC has none), or a deepfake-faces folder's people (``--persons FILE`` from ``python -m dfdc_train.identities``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from dfdc_infer.console import USER_ERRORS, fail
from dfdc_infer.models import read_checkpoint

from .layout import DataError
from .splits import column
from .train import BEST, read_crops
from .train import main as train_main

FIGURES = ("test_auc", "test_logloss", "test_balanced_logloss", "held_out_method_auc")


def fold_identities(identities: Sequence[str], folds: int, fold: int) -> tuple[list[str], list[str]]:
    """(test, validation) identities of ``fold``: group ``fold`` and every other person of the next group.

    Every other, not the first half: ``identities`` names people by size (``p0000`` has the most originals), so a first
    half would validate on the largest people, nearly a third of the crops, and train on what is left.
    """
    people = sorted(set(identities) - {""})
    if folds < 2 or len(people) < 2 * folds:
        raise DataError(f"--folds {folds} needs K >= 2 and at least 2K identities; the index has {len(people)}")
    groups = [people[group::folds] for group in range(folds)]
    following = groups[(fold + 1) % folds]
    return groups[fold], following[::2]


def run_figures(run: Path) -> dict[str, float]:
    """A finished fold's test figures: from its best.pt meta, and the held-out methods' row of evaluation.csv."""
    spec, _ = read_checkpoint(run / BEST)
    metrics = spec.meta["metrics"]
    table = pd.read_csv(run / "evaluation.csv")
    held_out = table[table["slice"].str.contains(r"\(held out\)", regex=True)]
    return {"test_auc": metrics["test_video_auc"], "test_logloss": metrics["test_video_logloss"],
            "test_balanced_logloss": metrics.get("test_video_balanced_logloss", float("nan")),
            "held_out_method_auc": float(held_out["auc"].mean()) if len(held_out) else float("nan"), "best_epoch": spec.meta["epoch"]}


def summarise(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation (over folds and seeds) of each figure."""
    return pd.DataFrame({"figure": FIGURES, "mean": [rows[name].mean() for name in FIGURES],
                         "std": [rows[name].std(ddof=1) if len(rows) > 1 else 0.0 for name in FIGURES]})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.folds", description=__doc__.splitlines()[0])
    parser.add_argument("crops", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; every fold runs once per seed")
    parser.add_argument("--persons", default="", metavar="FILE",
                        help="a deepfake-faces folder's people (python -m dfdc_train.identities): the identities to fold over")
    args, train_flags = parser.parse_known_args(argv)
    if any(flag.split("=")[0].startswith("--teacher-s") for flag in train_flags):
        return fail("--teacher-scores cannot be used with folds: one scores file serves every fold, so a teacher that trained "
                    "on this folder has seen each fold's held-out people; distil within one dfdc_train.train run")
    if args.persons:
        train_flags += ["--persons", args.persons]
    try:
        crops, _, _ = read_crops(args.crops, persons=args.persons)
        identities = column(crops, "identity").tolist()
        plans = [(fold, int(seed), *fold_identities(identities, args.folds, fold))
                 for fold in range(args.folds) for seed in args.seeds.split(",")]
    except USER_ERRORS as error:
        return fail(error)
    rows = []
    for fold, seed, test, val in plans:
        run = args.out / (f"fold-{fold}" if args.seeds == "0" else f"fold-{fold}-seed-{seed}")
        if not (run / "evaluation.csv").is_file():  # a finished fold is not trained again: the driver resumes
            code = train_main([str(args.crops), str(run), "--train-chunks", "0-999", "--val-chunks", "", "--test-chunks", "",
                               "--test-identities", ",".join(test), "--val-identities", ",".join(val), "--seed", str(seed), *train_flags])
            if code != 0:
                return code
        rows.append({"fold": fold, "seed": seed, **run_figures(run), "test_identities": ",".join(test)})
        pd.DataFrame(rows).to_csv(args.out / "folds.csv", index=False)
    table = pd.DataFrame(rows)
    summary = summarise(table)
    summary.to_csv(args.out / "summary.csv", index=False)
    print(table.drop(columns="test_identities").to_string(index=False, float_format=lambda value: f"{value:.3f}"))
    print("; ".join(f"{row.figure} {row.mean:.3f} ± {row.std:.3f}" for row in summary.itertuples()),
          f"(mean ± sd over {len(table)} runs: {args.folds} folds x {len(args.seeds.split(','))} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
