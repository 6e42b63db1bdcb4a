"""The dataset manifest: what ``build_submission.py`` packed, and the kernel's proof it is intact.

``manifest.json`` lists every file of the Kaggle dataset with its size and sha256, the versions
the build used (and the Python its wheels are for), the ensemble with each model's provenance, and
the inference settings with the preset they started from. The kernel finds the dataset by this file
(not by a slug), checks every hash before scoring, and takes its settings from it, so what was
validated locally is what runs on Kaggle. Standard library only: the kernel verifies before it
imports anything heavy.

Every path the manifest names (its files, the models, the detector's folder, the wheels) must stay
inside the dataset folder: ``read_manifest`` refuses one that leaves it (``../``, an absolute path,
a link out of the folder) before any of them is opened.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

MANIFEST_NAME = "manifest.json"
PRODUCT = "dfdc-offline"
NOT_LISTED = {MANIFEST_NAME, "dataset-metadata.json"}


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """The hex sha256 of a file, read in ``chunk_size`` pieces (checkpoints and wheels are too large to read whole)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"bytes", "sha256"}}`` for every file under ``root`` but the manifests, sorted."""
    root = Path(root)
    return {
        path.relative_to(root).as_posix(): {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.relative_to(root).as_posix() not in NOT_LISTED and "__pycache__" not in path.parts
    }


def write_manifest(root: Path, content: dict[str, Any]) -> dict[str, Any]:
    """Write ``content`` plus the file list; keys sorted and no timestamps, so builds are reproducible."""
    manifest = {"product": PRODUCT, **content, "files": list_files(root)}
    (Path(root) / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(root: Path) -> dict[str, Any]:
    """The manifest of dataset ``root``; ``ValueError`` if it is another product's or names a path outside ``root``."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {root}: not a dataset made by build_submission.py")
    manifest = json.loads(path.read_text())
    if manifest.get("product") != PRODUCT:
        raise ValueError(f"{path}: not a {PRODUCT} manifest")
    named = [*manifest.get("files", {}), *(model.get("file", "") for model in manifest.get("ensemble", [])),
             manifest.get("detector", {}).get("weights_dir", "."), *manifest.get("wheels", {}).values()]
    leaving = [name for name in named if not inside(Path(root), name)]
    if leaving:
        raise ValueError(f"{path}: refused, entries leave the dataset folder: {', '.join(map(repr, leaving[:3]))}")
    return manifest


def inside(root: Path, relative: str) -> bool:
    """Whether the relative posix path ``relative`` names something inside ``root``, links resolved."""
    parts = PurePosixPath(relative).parts
    if PurePosixPath(relative).is_absolute() or PureWindowsPath(relative).drive or "\\" in relative or ".." in parts:
        return False
    root = Path(root).resolve()
    return (root / relative).resolve().is_relative_to(root)


def verify_manifest(root: Path) -> list[str]:
    """Problems found (missing files, wrong sizes or hashes); an empty list means intact."""
    problems = []
    for name, expected in read_manifest(root)["files"].items():
        path = Path(root) / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != expected["bytes"]:
            problems.append(f"{name}: {path.stat().st_size} bytes, expected {expected['bytes']}")
        elif sha256_file(path) != expected["sha256"]:
            problems.append(f"{name}: sha256 differs from the manifest")
    return problems
