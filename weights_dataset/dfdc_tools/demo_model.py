"""The one command that makes the dry run's demo checkpoint, ``dfdc_tools/demo-model.pt``, from generated data only.

    python -m dfdc_tools.demo_model [--workdir runs/demo-model] [--install]

Generates the multi-identity training set (``DATA``), extracts its faces with the kernel's own
detector and crops (``EXTRACT``), fine-tunes the ImageNet EfficientNet-Lite0 of the ``efficientnet-lite0`` wheel
(``dfdc_train.pretrained``) as ``TRAIN`` says, with ten of the twenty-seven identities held out (four to validate, six to
test) and one fake method held out (so the dry run can show scores on people and a manipulation it never saw), and with
``--install`` writes ``best.pt`` in fp16 over ``DEMO_CHECKPOINT`` (under 10 MB; the kernel loads it in fp32).
Deterministic: the same command gives the same weights (one thread). The model has seen generated videos only; real DFDC
scores need real training (README "Training").
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

import torch

from dfdc_infer.config import InferenceConfig
from dfdc_infer.console import setup_logging
from dfdc_infer.models import load_model, save_checkpoint
from dfdc_sample.generate import generate_dataset
from dfdc_tools.dry_run import DEMO_CHECKPOINT
from dfdc_train.config import ExtractConfig
from dfdc_train.extract import extract
from dfdc_train.train import main as train

DATA = {"videos": 1350, "chunks": 15, "frames": 30, "seed": 2, "layout": "train"}
EXTRACT = {"crop_size": 128, "frame_step": 5}
VAL_IDENTITIES = "feat-f13,feat-group-2,t1-6,tongue"
TEST_IDENTITIES = "feat-beard,feat-group-4,feat-m7,hopper,t1-4,takeo"
TRAIN = ["--train-chunks", "0-14", "--val-chunks", "", "--test-chunks", "", "--val-identities", VAL_IDENTITIES,
         "--test-identities", TEST_IDENTITIES, "--test-methods", "part-warp", "--pretrained", "efficientnet-lite0", "--input-size", "96",
         "--originals-per-batch", "16", "--epochs", "15", "--lr", "5e-4", "--sampler", "synthetic", "--workers", "0", "--threads", "1"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_tools.demo_model", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/demo-model"))
    parser.add_argument("--install", action="store_true", help=f"copy the trained best.pt to {DEMO_CHECKPOINT}")
    args = parser.parse_args(argv)
    setup_logging()
    data, crops, run = args.workdir / "data", args.workdir / "crops", args.workdir / "run"
    if not data.is_dir():
        generate_dataset(data, **DATA)
    if not (crops / "index.csv").is_file():
        inference = InferenceConfig(frame_step=EXTRACT["frame_step"])
        print(extract(data, crops, ExtractConfig(crop_size=EXTRACT["crop_size"], inference=inference)).report())
    code = train([str(crops), str(run), *TRAIN])
    if code == 0 and args.install:
        install_fp16(run / "best.pt", DEMO_CHECKPOINT)
    return code


def install_fp16(best: Path, dest: Path) -> None:
    """Copy a run's ``best.pt`` to ``dest`` in fp16: committed checkpoints stay under 10 MB."""
    model, spec = load_model(best)
    save_checkpoint(dest, model, spec, dtype=torch.float16)
    print(f"installed {best} as {dest} (fp16, {dest.stat().st_size / 2**20:.1f} MB)")


if __name__ == "__main__":
    sys.exit(main())
