"""A folder of ready face crops in the layout of Kaggle's "deepfake-faces" set, read as a crop index.

    FOLDER/metadata.csv        videoname,original_width,original_height,label,original
    FOLDER/faces_224/NAME.jpg  one square face crop per video (NAME: the video name without .mp4)

Many DFDC competitors trained on this set (95,634 crops, one per training video) instead of
extracting faces themselves. Training reads it as if it were an extraction output
(``crop_index.CROP_COLUMNS``): each crop is frame 0, face 0 of its video, cut over the whole image.

Splits need chunks. The set has none, so each video gets a pseudo-chunk (0-49, as DFDC's parts)
from a stable hash of its group: the original's name for an original and all its fakes, so a fake
never sits on the other side of a split from its source. The default chunk specs (0-39 / 40-44 /
45-49) then split 80 / 10 / 10 by original. DFDC's paid actors recur across originals, so that split
shares people; with a persons table (``python -m dfdc_train.identities``, training's ``--group person``)
the group is the original's person and a split holds people out.

Bad rows are never trained on silently: a label other than REAL/FAKE, a repeated video name or a
missing ``metadata.csv`` stop with a one-line ``DataError``; a row whose image is missing or not a
whole JPEG/PNG (checked by its markers, without decoding) is skipped and counted, and the counts are
logged. A FAKE whose original has no crop stays (it can be scored) and the pairing counts it as a
fake without its original.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dfdc_infer.cropping import DEEPFAKE_FACES_FRAMING

from .crop_index import CROP_COLUMNS, VIDEO_COLUMNS
from .layout import DataError

log = logging.getLogger(__name__)

METADATA = "metadata.csv"
REQUIRED_COLUMNS = ("videoname", "label", "original")
PSEUDO_CHUNKS = 50
"""Pseudo-chunks a faces folder is dealt into, as DFDC's 50 training parts, so its chunk specs keep their meaning."""
FACE_BOX = (0.033, 0.0, 0.941, 1.0)
"""Our MTCNN's face box in a deepfake-faces crop, in crop sides (x1, y1, x2, y2), cut at the crop's edges: medians
over 300 crops of the real DFDC set (``python -m dfdc_train.framing``; ``dfdc_infer.cropping.DEEPFAKE_FACES_FRAMING``):
0.91 wide and 1.11 tall, centred 0.013 left of and 0.043 above the crop's centre. Training needs a face box for
on-the-fly fakes and cutout; inference cuts crops of this framing with the ``deepfake-faces`` preset."""


@dataclass(frozen=True)
class FacesFolder:
    """The folder's crops and videos as crop-index tables, and the rows skipped with their reasons."""

    crops: pd.DataFrame
    videos: pd.DataFrame
    settings: dict
    skipped: dict[str, int] = field(default_factory=dict)


def is_faces_folder(folder: Path) -> bool:
    """Whether ``folder`` looks like a deepfake-faces set (``metadata.csv`` beside a ``faces_*`` folder)."""
    folder = Path(folder)
    return (folder / METADATA).is_file() and any(folder.glob("faces_*/"))


def image_folder(folder: Path) -> Path:
    """The one ``faces_*`` subfolder holding the crops."""
    found = sorted(path for path in Path(folder).glob("faces_*") if path.is_dir())
    if len(found) != 1:
        raise DataError(f"{folder}: expected one faces_* folder of crops beside {METADATA}, found "
                        f"{', '.join(path.name for path in found) or 'none'}")
    return found[0]


def group_chunk(group: str) -> int:
    """The pseudo-chunk of a group name (stable across runs and machines: crc32, not Python's salted hash)."""
    return zlib.crc32(group.encode()) % PSEUDO_CHUNKS


def whole_image(path: Path) -> str:
    """"" for a file that starts and ends like a whole JPEG or PNG, else why not (missing, empty, cut, not an image)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(size - 12, 0))
            tail = handle.read()
    except FileNotFoundError:
        return "image missing"
    except OSError as error:
        return f"image unreadable ({error.strerror})"
    if head[:2] == b"\xff\xd8":
        return "" if b"\xff\xd9" in tail[-4:] else "JPEG cut short"
    if head == b"\x89PNG\r\n\x1a\n":
        return "" if tail.endswith(b"IEND\xaeB`\x82") else "PNG cut short"
    return "image missing" if size == 0 else "not a JPEG or PNG"


def read_metadata(folder: Path) -> pd.DataFrame:
    """``metadata.csv`` checked: its columns, unique names, labels REAL or FAKE (anything else is an error)."""
    path = Path(folder) / METADATA
    if not path.is_file():
        raise DataError(f"{path} not found: a deepfake-faces folder holds {METADATA} and faces_224/")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [name for name in REQUIRED_COLUMNS if name not in table.columns]
    if missing:
        raise DataError(f"{path}: missing columns {missing} (expected videoname,original_width,original_height,label,original)")
    bad = table[~table["label"].isin(["REAL", "FAKE"])]
    if len(bad):
        first = bad.iloc[0]
        raise DataError(f"{path}: {len(bad)} rows have a label other than REAL/FAKE, e.g. line {bad.index[0] + 2} "
                        f"({first['videoname']}: {first['label']!r}); fix or remove them")
    repeated = table["videoname"][table["videoname"].duplicated()]
    if len(repeated):
        raise DataError(f"{path}: video {repeated.iloc[0]} appears more than once ({len(repeated)} repeated names)")
    fakes_without_name = table[(table["label"] == "FAKE") & (table["original"] == "")]
    if len(fakes_without_name):
        raise DataError(f"{path}: {len(fakes_without_name)} FAKE rows name no original, e.g. {fakes_without_name['videoname'].iloc[0]}")
    return table


def read_faces_folder(folder: Path, persons: dict[str, str] | None = None, group: str = "original") -> FacesFolder:
    """The crops and videos of a deepfake-faces folder as crop-index tables (see the module docstring).

    ``persons`` (original -> person, ``identities.read_persons``) adds the ``identity`` column, each fake taking
    its original's person, so the evaluation reports seen and unseen people; ``group="person"`` also deals the
    pseudo-chunks by person, so a split holds people out. An original the table lacks is its own person (logged).
    """
    folder = Path(folder)
    table = read_metadata(folder)
    images = image_folder(folder)
    paths = [f"{images.name}/{Path(name).stem}.jpg" for name in table["videoname"]]
    reasons = pd.Series([whole_image(folder / path) for path in paths], index=table.index)
    skipped = reasons[reasons != ""].value_counts().to_dict()
    for reason, count in skipped.items():
        example = table.loc[reasons == reason, "videoname"].iloc[0]
        log.warning("%s: skipped %d rows, %s (e.g. %s)", folder, count, reason, example)
    kept = table[reasons == ""]
    present_originals = set(kept.loc[kept["label"] == "REAL", "videoname"])
    orphans = int(((kept["label"] == "FAKE") & ~kept["original"].isin(present_originals)).sum())
    if orphans:
        log.info("%s: %d FAKE crops whose original has no crop here: scored, never paired in training", folder, orphans)
    original = [name if label == "FAKE" else None for name, label in zip(kept["original"], kept["label"])]
    groups = [source or video for source, video in zip(original, kept["videoname"])]
    people = people_of(groups, persons, folder) if persons is not None else None
    if group == "person" and people is None:
        raise DataError("--group person needs --persons FILE (python -m dfdc_train.identities FOLDER FILE makes it)")
    chunk = [group_chunk(name) for name in (people if group == "person" else groups)]
    side = 224  # the crop region's side; the face box is in its pixels (a crop of another size scales with it)
    x1, y1, x2, y2 = (side * value for value in FACE_BOX)
    crops = pd.DataFrame({
        "video": kept["videoname"].to_numpy(), "label": kept["label"].to_numpy(), "original": original, "chunk": chunk,
        "frame": 0, "face": 0, "x1": x1, "y1": y1, "x2": x2, "y2": y2, "score": 1.0,
        "crop_x1": 0, "crop_y1": 0, "crop_x2": side, "crop_y2": side,
        "path": [path for path, reason in zip(paths, reasons) if reason == ""], "mask": "", "landmarks": ""})
    assert list(crops.columns[:len(CROP_COLUMNS)]) == CROP_COLUMNS
    videos = pd.DataFrame({"video": crops["video"], "label": crops["label"], "original": original, "chunk": chunk, "status": "ok",
                           "reason": "", "crops": 1, "width": 0, "height": 0, "frames": 0, "boxes_from": "", "boxes_note": ""})
    assert list(videos.columns) == VIDEO_COLUMNS
    if people is not None:  # on both tables, as an extraction's metadata.json identities: the splits check names on videos
        crops["identity"] = videos["identity"] = people
    settings = {"layout": "deepfake-faces", "folder": folder.name, "crops": int(len(crops)), "skipped": skipped, "group": group,
                "crop_geometry": "deepfake-faces", "crop_margin": DEEPFAKE_FACES_FRAMING["margin"], "preset": "deepfake-faces"}
    log.info("%s: %d crops of %d originals and %d fakes (deepfake-faces layout)%s", folder, len(crops),
             int((crops["label"] == "REAL").sum()), int((crops["label"] == "FAKE").sum()),
             f"; skipped {sum(skipped.values())}" if skipped else "")
    return FacesFolder(crops, videos, settings, skipped)


def people_of(groups: list[str], persons: dict[str, str], folder: Path) -> list[str]:
    """Each row's person: its group's (original's) entry in ``persons``, else the original itself (logged)."""
    missing = sorted({name for name in groups if name not in persons})
    if missing:
        log.warning("%s: %d originals are in no person of the persons table: each is its own person (grouped by original), "
                    "e.g. %s", folder, len(missing), missing[0])
    return [persons[name] if name in persons else own_person(name) for name in groups]


def own_person(original: str) -> str:
    """The person of an original no cluster holds (unknown, or its image unreadable): itself, as in a split by original."""
    return f"original:{original}"
