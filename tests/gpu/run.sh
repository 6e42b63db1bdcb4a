#!/usr/bin/env bash
# Prepare an offline GPU machine from the packed dataset folder, then run the GPU suite and the benchmark.
#
#   tests/gpu/run.sh DATASET [CACHE]
#
# DATASET  the dataset folder build_submission.py packs (BUILD/weights_dataset): its wheels/ (timm, av,
#          decord, pynvvideocodec) are installed where their module is missing, offline, and its mtcnn/
#          weights are copied into the cache, so nothing is downloaded.
# CACHE    a copy of a prepared machine's cache folder ($DFDC_CACHE_DIR, default ~/.cache/dfdc_infer) holding
#          photos/, the faces the generator draws the test videos with (default: DATASET/../cache).
# EXTRA_WHEELS (optional) a folder of more wheels to install first (pytest, pandas, imageio-ffmpeg, ...)
#          for a machine whose Python lacks them.
#
# Runs from the repository root. Writes ${DFDC_GPU_OUT:-runs/gpu}/: pytest.log, junit.xml and
# benchmark-report.json. Exits with pytest's status (2 for a machine that is not ready). It must
# finish in under 5 minutes: a lent GPU gives 15 in all.
set -euo pipefail

dataset=${1:?usage: tests/gpu/run.sh DATASET [CACHE]  (DATASET: the weights_dataset folder build_submission.py packs)}
cache=${2:-$dataset/../cache}
python=${PYTHON:-python3}
out=${DFDC_GPU_OUT:-runs/gpu}
started=$(date +%s)
fail() { echo "error: $*" >&2; exit 2; }

[ -d "$dataset/wheels" ] && [ -d "$dataset/mtcnn" ] && [ -f "$dataset/manifest.json" ] \
  || fail "$dataset is not a packed dataset folder (needs wheels/, mtcnn/ and manifest.json: run build_submission.py)"
[ -d "$cache/photos" ] || fail "no $cache/photos: copy a prepared machine's ~/.cache/dfdc_infer/photos there (the generator's faces)"
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
  || fail "no CUDA for $python's torch: this script is for a GPU machine"

mkdir -p "$out"
out=$(cd "$out" && pwd)
export DFDC_GPU_OUT=$out DFDC_CACHE_DIR=$out/cache PYTHONPATH=$PWD/weights_dataset:$PWD/tests${PYTHONPATH:+:$PYTHONPATH}
mkdir -p "$DFDC_CACHE_DIR/mtcnn"
cp "$dataset"/mtcnn/*.pt "$DFDC_CACHE_DIR/mtcnn/"
cp -r "$cache/photos" "$DFDC_CACHE_DIR/"

if [ -n "${EXTRA_WHEELS:-}" ]; then
  "$python" -m pip install --no-index --no-deps --quiet "$EXTRA_WHEELS"/*.whl
fi
"$python" - "$dataset" <<'PY' || exit 2
import json, logging, sys
from pathlib import Path
from dfdc_infer.kaggle_env import DatasetError, install_missing_wheels
logging.basicConfig(level=logging.INFO, format="%(message)s")
dataset = Path(sys.argv[1])
try:
    install_missing_wheels(dataset, json.loads((dataset / "manifest.json").read_text()), required=("timm", "av", "PyNvVideoCodec"))
except DatasetError as error:
    sys.exit(f"error: {error}")
PY
"$python" - <<'PY' || exit 2
import importlib.util, sys
needed = ["pytest", "pandas", "cv2", "imageio_ffmpeg", "matplotlib", "timm", "av", "decord", "PyNvVideoCodec"]
missing = [name for name in needed if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"error: missing on this machine: {', '.join(missing)} (put their wheels in a folder, pass EXTRA_WHEELS=DIR)")
PY
echo "prepared in $(( $(date +%s) - started )) s; running the GPU suite and the benchmark"

status=0
timeout 270 "$python" -m pytest -m gpu -q -rs -p no:cacheprovider --durations=8 --junitxml="$out/junit.xml" \
  tests/test_gpu_acceptance.py tests/test_gpu_decode.py 2>&1 | tee "$out/pytest.log" || status=${PIPESTATUS[0]}
echo "GPU suite exit $status after $(( $(date +%s) - started )) s in all; logs in $out"
exit "$status"
