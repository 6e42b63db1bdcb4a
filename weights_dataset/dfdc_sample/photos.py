"""Real face photographs that ship inside Python packages: fetched at run time, cached, never committed.

Sources by name (``PHOTO_SOURCES``), each giving named RGB photos:

- ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, public domain), installed;
- ``matplotlib``: ``mpl-data/sample_data/grace_hopper.jpg`` inside matplotlib, installed;
- ``insightface``: ``insightface/data/images/t1.jpg`` (a group photo of six people) and
  ``Tom_Hanks_54745.png`` from the insightface 2.1 wheel on PyPI. The package is never installed (it
  would pull onnxruntime and more): ``pip download`` fetches the wheel once, the two files are
  checked against pinned sha256 digests and kept in ``$DFDC_CACHE_DIR/photos/`` (default
  ``~/.cache/dfdc_infer/photos/``), the way ``dfdc_infer.detector_weights`` caches the MTCNN weights.

A source that cannot be had (no network, no package) raises ``PhotoUnavailable``; ``load_photos``
logs one warning saying which and why, and goes on with the sources present.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from dfdc_infer.detector_weights import default_weights_dir, download_wheel, write_atomically
from dfdc_infer.registry import Registry

log = logging.getLogger(__name__)

INSIGHTFACE_REQUIREMENT = "insightface==2.1"
_INSIGHTFACE_FILES = {  # name in the wheel's insightface/data/images/ -> (photo name, sha256)
    "t1.jpg": ("t1", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    "Tom_Hanks_54745.png": ("hanks", "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083"),
}


class PhotoUnavailable(RuntimeError):
    """A photo source that cannot be loaded here; the message says why."""


@dataclass(frozen=True)
class Photo:
    """A named (H, W, 3) uint8 RGB photograph."""

    name: str
    image: np.ndarray


PHOTO_SOURCES: Registry[Callable[[], list[Photo]]] = Registry("photo source")


def photo_cache_dir() -> Path:
    """``$DFDC_CACHE_DIR/photos`` (beside the MTCNN weights' ``mtcnn/``)."""
    return default_weights_dir().parent / "photos"


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoUnavailable(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@PHOTO_SOURCES.register("astronaut")
def astronaut() -> list[Photo]:
    from skimage import data

    return [Photo("astronaut", data.astronaut())]


@PHOTO_SOURCES.register("matplotlib")
def grace_hopper() -> list[Photo]:
    try:
        from matplotlib import cbook
    except ImportError as error:
        raise PhotoUnavailable(f"matplotlib is not installed ({error})") from error
    return [Photo("hopper", _read_rgb(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))))]


@PHOTO_SOURCES.register("insightface")
def insightface_images() -> list[Photo]:
    folder = photo_cache_dir() / "insightface-2.1"
    if any(not (folder / name).is_file() for name in _INSIGHTFACE_FILES):
        fetch_insightface_images(folder)
    return [Photo(name, _read_rgb(folder / file)) for file, (name, _) in _INSIGHTFACE_FILES.items()]


def fetch_insightface_images(folder: Path) -> None:
    """Download the insightface wheel, check its two photos' digests, and cache them in ``folder``."""
    log.info("fetching face photos from the %s wheel (once; cached in %s)", INSIGHTFACE_REQUIREMENT, folder)
    with tempfile.TemporaryDirectory(prefix="dfdc_photos_") as tmp:
        try:
            wheel = download_wheel(INSIGHTFACE_REQUIREMENT, Path(tmp))
        except RuntimeError as error:
            raise PhotoUnavailable(str(error).splitlines()[0]) from error
        with zipfile.ZipFile(wheel) as archive:
            payloads = {name: archive.read(f"insightface/data/images/{name}") for name in _INSIGHTFACE_FILES}
    for name, payload in payloads.items():
        digest = hashlib.sha256(payload).hexdigest()
        if digest != _INSIGHTFACE_FILES[name][1]:
            raise PhotoUnavailable(f"{name} in {wheel.name} has sha256 {digest}, expected {_INSIGHTFACE_FILES[name][1]}")
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in payloads.items():
        write_atomically(folder / name, payload)


def load_photos(sources: list[str] | None = None) -> list[Photo]:
    """The photos of ``sources`` (default: every registered source), skipping those unavailable.

    Each unavailable source is one warning naming it and the reason; none available at all is a
    ``PhotoUnavailable`` error.
    """
    photos: list[Photo] = []
    names = PHOTO_SOURCES.names() if sources is None else [PHOTO_SOURCES.check(name) for name in sources]
    for name in names:
        try:
            photos += PHOTO_SOURCES.get(name)()
        except PhotoUnavailable as error:
            log.warning("face photo source %r unavailable (%s); going on with the others", name, error)
    if not photos:
        raise PhotoUnavailable(f"no face photo source could be loaded (tried {', '.join(names)})")
    return photos
