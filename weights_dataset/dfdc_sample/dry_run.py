"""The README's first command: a whole local run on generated sample videos.

    python -m dfdc_sample.dry_run [--workdir runs/dry-run] [--checkpoint a.pt ...] [inference flags]

1. generates DFDC-format sample data (unless the work folder already has it),
2. writes an untrained EfficientNet-B0 checkpoint when none is given (its scores mean nothing:
   train one with the training pipeline for real predictions),
3. runs the real inference pipeline and writes ``submission.csv``,
4. prints the CSV and its logloss against the generated labels.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from dfdc_infer.cli import EXIT_USAGE, USER_ERRORS
from dfdc_infer.config import add_config_arguments, config_from_args
from dfdc_infer.models import init_checkpoint
from dfdc_infer.run import run_submission
from dfdc_sample.generate import generate_dataset


def logloss(labels: np.ndarray, predictions: np.ndarray) -> float:
    """The competition metric on P(fake), with predictions clipped away from 0 and 1."""
    p = np.clip(predictions, 1e-15, 1 - 1e-15)
    return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_sample.dry_run", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/dry-run"))
    parser.add_argument("--videos", type=int, default=8, help="sample videos to generate (default 8)")
    parser.add_argument("--checkpoint", type=Path, action="append", help="trained checkpoint(s); default: an untrained B0")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")

    data = args.workdir / "data"
    if not (data / "sample_submission.csv").is_file():
        generate_dataset(data, videos=args.videos)
        print(f"generated {args.videos} sample videos in {data / 'test_videos'}")
    checkpoints = args.checkpoint
    if not checkpoints:
        untrained = args.workdir / "untrained-tf_efficientnet_b0.pt"
        if not untrained.is_file():
            init_checkpoint(untrained, "tf_efficientnet_b0")
        print(f"using {untrained}: UNTRAINED weights, its labels are real forward passes but mean nothing")
        checkpoints = [untrained]
    output = args.workdir / "submission.csv"
    try:
        run_submission(config_from_args(args), data / "test_videos", data / "sample_submission.csv", checkpoints, output)
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_USAGE

    table = pd.read_csv(output)
    metadata = json.loads((data / "metadata.json").read_text())
    table["truth"] = [metadata[name]["label"] for name in table["filename"]]
    print(f"\n{output}:\n{table.to_string(index=False)}\n")
    score = logloss((table["truth"] == "FAKE").to_numpy(float), table["label"].to_numpy())
    print(f"logloss against the generated labels: {score:.4f} (constant 0.5 scores 0.6931)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
