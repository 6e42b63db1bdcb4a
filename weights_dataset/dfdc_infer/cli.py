"""Command line: ``python -m dfdc_infer predict | init-checkpoint | import-checkpoint ...``.

Every problem with the user's input ends with one line ``error: ...`` on stderr and exit code 2,
never a traceback (``console``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from .config import add_config_arguments, config_from_args
from .console import USER_ERRORS, fail, setup_logging
from .importers import IMPORTERS, import_checkpoint
from .models import checkpoint_presets, init_checkpoint
from .run import run_submission


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dfdc_infer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="score a folder of videos into submission.csv")
    predict.add_argument("--videos", type=Path, required=True, help="folder holding the test .mp4 files")
    predict.add_argument("--sample-submission", type=Path, required=True, help="sample_submission.csv (row order)")
    predict.add_argument("--checkpoint", type=Path, action="append", required=True, help="model checkpoint; repeat for an ensemble")
    predict.add_argument("--out", type=Path, default=Path("submission.csv"), help="where to write the CSV")
    predict.add_argument("--detector-weights", type=Path, default=None, help="folder with MTCNN pnet/rnet/onet.pt (default: mtcnn/ in --cache-dir, fetched once)")
    predict.add_argument("--fresh", action="store_true", help="ignore OUT.progress of an interrupted run: score every video again")
    predict.add_argument("--report", type=Path, default=None, metavar="DIR",
                         help="write DIR/index.html: per video its frames with face boxes, its crops with P(fake), its status")
    add_config_arguments(predict)

    init = commands.add_parser("init-checkpoint", help="write an untrained checkpoint (pipeline runs, scores mean nothing)")
    init.add_argument("out", type=Path)
    init.add_argument("--arch", default="tf_efficientnet_b0", help="timm architecture name")
    init.add_argument("--input-size", type=int, default=None, help="default: the architecture's own")
    init.add_argument("--seed", type=int, default=0)

    imported = commands.add_parser("import-checkpoint", help="convert another project's released weights into our checkpoint format")
    imported.add_argument("file", type=Path, help="the released checkpoint file")
    imported.add_argument("--from", dest="importer", required=True, metavar="NAME", help=f"its layout: {', '.join(IMPORTERS)}")
    imported.add_argument("--out", type=Path, required=True, help="where to write the dfdc-checkpoint/1 file")
    imported.add_argument("--encoder", help="timm encoder name (default: read from a release-style file name)")
    imported.add_argument("--input-size", type=int, default=None, help="default: the importer's (dfdc-1st: 380)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        if args.command == "init-checkpoint":
            path = init_checkpoint(args.out, args.arch, args.input_size, args.seed)
            print(f"wrote untrained {args.arch} checkpoint to {path}")
        elif args.command == "import-checkpoint":
            spec = import_checkpoint(args.importer, args.file, args.out, args.encoder, args.input_size)
            print(f"wrote {args.out}: {spec.arch}@{spec.input_size} imported with {args.importer} from {args.file.name}")
        else:
            run_submission(
                config_from_args(args, trained_for=lambda: checkpoint_presets(args.checkpoint)), args.videos, args.sample_submission, args.checkpoint, args.out, args.detector_weights,
                resume=not args.fresh, report=args.report,
            )
    except USER_ERRORS as error:
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
