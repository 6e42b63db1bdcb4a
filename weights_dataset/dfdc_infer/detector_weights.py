"""Find, or fetch once and cache, the MTCNN weights.

The weights are the three state_dicts shipped as data files in the facenet-pytorch 2.6.0 wheel on
PyPI (MIT licence). We never install that package: it would pull torchvision and its own MTCNN into
the inference environment. Instead the three files are fetched from the wheel, checked against
pinned sha256 digests and kept, byte for byte, in the command's cache folder (``--cache-dir``,
``InferenceConfig.cache_dir``; ``fetched_files``):

    ``CACHE_DIR/mtcnn/{pnet,rnet,onet}.pt``

On Kaggle there is no internet, so the packed dataset carries the same three files in a folder of
its own and passes that folder explicitly. Fetch by hand with
``python -m dfdc_infer.detector_weights [--dest DIR]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import add_cache_dir_argument
from .console import USER_ERRORS, fail
from .fetched_files import fetch_verified

MTCNN_WEIGHT_FILES = ("pnet.pt", "rnet.pt", "onet.pt")

_WHEEL_REQUIREMENT = "facenet-pytorch==2.6.0"
_WHEEL_DATA_DIR = "facenet_pytorch/data/"
# Digests of the files inside facenet_pytorch-2.6.0-py3-none-any.whl, so a tampered or different
# release is refused instead of silently producing other detections.
_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
_FETCH_HINT = "fetch them with `python -m dfdc_infer.detector_weights --dest DIR`"


def cached_weights_dir(cache_dir: Path) -> Path:
    """Where the weights sit in a cache folder: ``CACHE_DIR/mtcnn``."""
    return Path(cache_dir) / "mtcnn"


def mtcnn_weights(weights_dir: Path | None, cache_dir: Path) -> Path:
    """The folder of the three weight files: ``weights_dir`` when given (it must hold them: a packed dataset's folder
    is never fetched into behind the user's back), else ``cache_dir``'s, fetched once."""
    if weights_dir is not None:
        return find_mtcnn_weights(weights_dir)
    return fetch_mtcnn_weights(cached_weights_dir(cache_dir))


def find_mtcnn_weights(weights_dir: Path) -> Path:
    """Return ``weights_dir`` if it holds all three weight files.

    Only checks presence; whether the files are the right ones shows when they are loaded.
    """
    folder = Path(weights_dir)
    missing = [name for name in MTCNN_WEIGHT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MTCNN weights {', '.join(missing)} not found in {folder}; {_FETCH_HINT}"
        )
    return folder


def fetch_mtcnn_weights(folder: Path) -> Path:
    """The three weight files of the facenet-pytorch 2.6.0 wheel, checked and kept in ``folder`` (``fetch_verified``)."""
    fetch_verified(_WHEEL_REQUIREMENT, _WHEEL_DATA_DIR, _SHA256, Path(folder))
    return Path(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_infer.detector_weights", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=None, help="target folder (default: mtcnn/ of --cache-dir)")
    add_cache_dir_argument(parser, "the MTCNN weights in mtcnn/")
    args = parser.parse_args(argv)
    try:
        print(fetch_mtcnn_weights(args.dest or cached_weights_dir(args.cache_dir)))
    except USER_ERRORS as error:  # FetchError: no network, or a release that is not the one pinned
        return fail(error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
