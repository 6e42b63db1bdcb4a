"""The README's first command: a whole local run on generated sample videos, scored by a small trained model.

    python -m dfdc_tools.dry_run [--workdir runs/dry-run] [--videos 40] [--checkpoint a.pt ...] [--untrained]
                                 [--report DIR | --no-report] [inference flags]

1. generates DFDC-format sample videos (unless the work folder already has them) of the identities
   the checkpoint never saw in training (its ``meta["identities_seen"]``), fakes by every method,
2. scores them with the demo checkpoint shipped in this package (``DEMO_CHECKPOINT``: a tiny model
   trained on generated data only, see the README), or the given checkpoints, or ``--untrained``
   (an untrained EfficientNet-B0: the pipeline runs, its scores mean nothing),
3. runs the real inference pipeline and writes ``submission.csv``,
4. prints the CSV and its logloss and AUC against the generated labels,
5. writes the report (``dfdc_infer.report``, default ``WORKDIR/report/index.html``): every video's
   frames, face boxes, crops and their scores.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd

from dfdc_fakes import METHODS
from dfdc_infer.config import add_config_arguments, config_from_args
from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.models import init_checkpoint, read_checkpoint
from dfdc_infer.run import run_submission
from dfdc_sample.faces import heads_by_identity, load_face_sprites
from dfdc_sample.generate import generate_dataset
from dfdc_train.metrics import clipped_logloss, roc_auc

DEMO_CHECKPOINT = Path(__file__).with_name("demo-model.pt")
"""A tiny model trained on generated videos only (``demo_model``: the one command that made it)."""


def unseen_identities(metas: list[dict]) -> tuple[list[str] | None, str]:
    """Identities none of the checkpoints (their ``meta``) trained on (None: all), and a sentence saying so."""
    seen = set().union(*(meta.get("identities_seen", []) for meta in metas))
    available = list(heads_by_identity(load_face_sprites()))
    unseen = [name for name in available if name not in seen]
    if not seen:
        return None, "identities: all available (the checkpoint records none it trained on)"
    if not unseen:
        return None, f"identities: all available; every one was SEEN in training ({', '.join(sorted(seen))})"
    return unseen, f"identities never seen in training: {', '.join(unseen)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_tools.dry_run", description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("runs/dry-run"))
    parser.add_argument("--videos", type=int, default=40,
                        help="sample videos to generate (default 40: enough for a logloss and an AUC that mean something)")
    parser.add_argument("--checkpoint", type=Path, action="append", help=f"checkpoint(s); default: {DEMO_CHECKPOINT.name}")
    parser.add_argument("--untrained", action="store_true", help="score with an untrained EfficientNet-B0 instead (meaningless scores)")
    parser.add_argument("--report", type=Path, default=None, metavar="DIR", help="where to write the report (default: WORKDIR/report)")
    parser.add_argument("--no-report", action="store_true", help="write no report")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    setup_logging()

    checkpoints = args.checkpoint or [DEMO_CHECKPOINT]
    if args.untrained:
        untrained = args.workdir / "untrained-tf_efficientnet_b0.pt"
        if not untrained.is_file():
            init_checkpoint(untrained, "tf_efficientnet_b0")
        print(f"using {untrained}: UNTRAINED weights, its labels are real forward passes but mean nothing")
        checkpoints = [untrained]
    data = args.workdir / "data"
    try:
        metas = [read_checkpoint(path)[0].meta for path in checkpoints]
        identities, who = unseen_identities(metas)
        if not (data / "sample_submission.csv").is_file():
            generate_dataset(data, videos=args.videos, identities=identities, seed=1)
            print(f"generated {args.videos} sample videos in {data / 'test_videos'}; {who}")
        output = args.workdir / "submission.csv"
        report = None if args.no_report else args.report or args.workdir / "report"
        config = config_from_args(args, trained_for=lambda: [meta.get("preset") for meta in metas])
        run_submission(config, data / "test_videos", data / "sample_submission.csv", checkpoints, output,
                       report=report)
    except USER_ERRORS as error:
        return fail(error)

    table = pd.read_csv(output)
    metadata = json.loads((data / "metadata.json").read_text())
    table["truth"] = [metadata[name]["label"] for name in table["filename"]]
    table["identity"] = [metadata[name].get("identity") or "-" for name in table["filename"]]
    table["method"] = [metadata[name].get("method") or "-" for name in table["filename"]]
    print(f"\n{output}:\n{table.to_string(index=False)}\n")
    labels, labels_predicted = (table["truth"] == "FAKE").to_numpy(float), table["label"].to_numpy()
    methods_seen = set().union(*(meta.get("methods_seen", []) for meta in metas))
    held_out = sorted(set(METHODS.names()) - methods_seen) if methods_seen else []
    print(f"logloss against the generated labels: {clipped_logloss(labels, labels_predicted, 1e-15, 1 - 1e-15):.4f} "
          f"(constant 0.5 scores 0.6931), AUC {roc_auc(labels, labels_predicted):.3f} (chance 0.5)")
    print(f"{who}; fake methods held out of training: {', '.join(held_out) or 'none'}")
    if report is not None:
        print(f"report: {report / 'index.html'} (open it in a browser: each video's frames, faces, crops and scores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
