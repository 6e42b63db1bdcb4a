# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # DFDC offline submission
# Scores the competition's test videos with the ensemble packed by `build_submission.py` and writes
# `/kaggle/working/submission.csv`. No internet: the inference code, weights and wheels all come from
# the attached dataset, found by its `manifest.json`. All logic lives in the packed `dfdc_infer`
# package; this notebook only finds the inputs and calls it.
#
# Local dry run: `python dfdc_kernel.py --dataset DIR --videos DIR --sample-submission CSV --out CSV`
# (or the environment variables `DFDC_DATASET`, `DFDC_VIDEOS`, `DFDC_SAMPLE_SUBMISSION`, `DFDC_OUTPUT`);
# `--report DIR` (`DFDC_REPORT`) adds the page of every video's faces, crops and scores (off by default:
# Kaggle hides a submission run's outputs).

# %%
import argparse
import json
import logging
import os
import sys
from pathlib import Path

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S", force=True)
parser = argparse.ArgumentParser(description="DFDC offline submission kernel")
parser.add_argument("--dataset", default=os.environ.get("DFDC_DATASET"), help="the packed dataset folder")
parser.add_argument("--videos", default=os.environ.get("DFDC_VIDEOS"), help="folder of test videos")
parser.add_argument("--sample-submission", default=os.environ.get("DFDC_SAMPLE_SUBMISSION"))
parser.add_argument("--out", default=os.environ.get("DFDC_OUTPUT", "/kaggle/working/submission.csv"))
parser.add_argument("--report", default=os.environ.get("DFDC_REPORT"), help="folder for the report page (default: none)")
args, _ = parser.parse_known_args()  # a notebook's kernel passes its own flags: ignore them


def fail(message: str) -> None:
    """One line on stderr and exit code 2, like every other command of the project."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)

# %% [markdown]
# ## Find the packed dataset by its manifest (not by its slug)

# %%
def find_dataset(search_root: Path = Path("/kaggle/input")) -> Path:
    for pattern in ("*/manifest.json", "*/*/manifest.json", "*/*/*/manifest.json"):
        for manifest in sorted(search_root.glob(pattern)):
            if json.loads(manifest.read_text()).get("product") == "dfdc-offline":
                return manifest.parent
    fail(f"no dataset with a dfdc-offline manifest.json under {search_root}; attach the one build_submission.py made")


dataset = Path(args.dataset) if args.dataset else find_dataset()
if not (dataset / "manifest.json").is_file():
    fail(f"{dataset} holds no manifest.json")
sys.path.insert(0, str(dataset))
from dfdc_infer import kaggle_env  # noqa: E402  (importable only once the dataset is on sys.path)

# %% [markdown]
# ## Competition inputs, then score every video

# %%
if args.videos and args.sample_submission:
    videos, sample_submission = Path(args.videos), Path(args.sample_submission)
else:
    videos, sample_submission = kaggle_env.find_competition_inputs()
try:
    kaggle_env.run_dataset(dataset, videos, sample_submission, Path(args.out), Path(args.report) if args.report else None)
except (FileNotFoundError, ValueError, kaggle_env.DatasetError) as error:
    fail(str(error))
