"""Train / validation / test by chunk number (DFDC: 0-39, 40-44, 45-49).

Splitting by chunk, not by video, keeps an original and its fakes (and so the same actor, room and
light) out of two splits at once: a fake in validation whose original was trained on would
measure memory, not detection. DFDC keeps each original with its fakes in one chunk; this module
checks that the chosen split respects that and stops with the offending pair otherwise.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pandas as pd

from .config import TrainConfig
from .layout import DataError, format_chunk_spec, parse_chunk_spec

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """One split's crops (rows of ``crop_index.CROP_COLUMNS``) and its videos."""

    name: str
    chunks: frozenset[int]
    crops: pd.DataFrame
    videos: pd.DataFrame


def split_by_chunk(crops: pd.DataFrame, videos: pd.DataFrame, config: TrainConfig) -> dict[str, Split]:
    """The non-empty splits by name; ``test`` is left out when ``test_chunks`` is ``""``.

    Errors (``DataError``): two splits sharing a chunk, an original and one of its fakes in two
    splits, a split that was asked for but has no crops.
    """
    specs = {"train": config.train_chunks, "val": config.val_chunks, "test": config.test_chunks}
    chunks = {name: parse_chunk_spec(spec) for name, spec in specs.items()}
    for position, first in enumerate(SPLIT_NAMES):
        for second in SPLIT_NAMES[position + 1:]:
            shared = chunks[first] & chunks[second]
            if shared:
                raise DataError(f"chunks {format_chunk_spec(shared)} are in both the {first} and the {second} split")
    split_of_chunk = {number: name for name, numbers in chunks.items() for number in numbers}
    check_originals_with_fakes(videos, split_of_chunk)
    unused = sorted(set(videos["chunk"]) - set(split_of_chunk))
    if unused:
        log.info("chunks %s are in no split: their %d crops are not used", format_chunk_spec(unused),
                 int(crops["chunk"].isin(unused).sum()))
    splits = {}
    for name in SPLIT_NAMES:
        if name == "test" and not chunks[name]:
            log.info("no test split (test_chunks is empty)")
            continue
        part = crops[crops["chunk"].isin(chunks[name])].reset_index(drop=True)
        if part.empty:
            raise DataError(f"the {name} split (chunks {specs[name] or 'none'}) has no face crops; "
                            f"extracted chunks: {format_chunk_spec(set(videos['chunk'])) or 'none'}; set --{name}-chunks")
        splits[name] = Split(name, chunks[name], part, videos[videos["chunk"].isin(chunks[name])].reset_index(drop=True))
        log.info("%s split: chunks %s, %d crops of %d videos (%d REAL, %d FAKE)", name, specs[name], len(part),
                 part["video"].nunique(), part.loc[part["label"] == "REAL", "video"].nunique(),
                 part.loc[part["label"] == "FAKE", "video"].nunique())
    return splits


def check_originals_with_fakes(videos: pd.DataFrame, split_of_chunk: dict[int, str]) -> None:
    """Raise ``DataError`` naming the first fake whose original is in another split.

    Only pairs where both videos are in some split are checked; a fake whose original is absent
    altogether is the pairing's business (left out and counted there).
    """
    chunk_of = dict(zip(videos["video"], videos["chunk"]))
    fakes = videos[(videos["label"] == "FAKE") & videos["original"].isin(chunk_of.keys())]
    for fake, chunk, original in zip(fakes["video"], fakes["chunk"], fakes["original"]):
        fake_split, original_split = split_of_chunk.get(chunk), split_of_chunk.get(chunk_of[original])
        if fake_split and original_split and fake_split != original_split:
            raise DataError(f"{fake} (chunk {chunk}, {fake_split} split) is a fake of {original} (chunk {chunk_of[original]}, "
                            f"{original_split} split): an original and its fakes must be in the same split")
