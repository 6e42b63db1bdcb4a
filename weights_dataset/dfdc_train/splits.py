"""Train / validation / test: by chunk number (DFDC: 0-39, 40-44, 45-49), by identity and by fake method.

Splitting by chunk, not by video, keeps an original and its fakes (and so the same actor, room and
light) out of two splits at once: a fake in validation whose original was trained on would
measure memory, not detection. DFDC keeps each original with its fakes in one chunk; this module
checks that the chosen split respects that and stops with the offending pair otherwise.

Generalisation needs more than new scenes: ``val_identities`` / ``test_identities`` move every video
of those people (an original and all its fakes, from any chunk) into validation / test, so the
model never sees their faces; a training fake whose face-swap ``donor`` is a held-out person is
left out too. ``val_methods`` / ``test_methods`` keep those fake methods' videos out of training
(and, for test methods, out of validation), so a split can score a manipulation never trained on.
Identities and methods come from the crop index's ``identity``, ``method`` and ``donor`` columns
(metadata.json keys the sample generator writes).
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


def column(table: pd.DataFrame, name: str) -> pd.Series:
    """``table[name]`` as strings, "" where the column is missing or empty (DFDC has no identities)."""
    if name not in table.columns:
        return pd.Series("", index=table.index, dtype=object)
    return table[name].fillna("").astype(str)


def split_by_chunk(crops: pd.DataFrame, videos: pd.DataFrame, config: TrainConfig) -> dict[str, Split]:
    """The non-empty splits by name; ``test`` is left out when it has neither chunks nor identities.

    Errors (``DataError``, one line): two splits sharing a chunk, an original and one of its fakes
    in two splits, an unknown identity or method, a name held out for both validation and test, a
    split asked for that ends up without crops; with ``--persons``, a validation or test split without REAL or FAKE crops.
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
    held_identities = {"val": set(config.names("val_identities")), "test": set(config.names("test_identities"))}
    held_methods = {"val": set(config.names("val_methods")), "test": set(config.names("test_methods"))}
    check_names(videos, "identity", held_identities["val"] | held_identities["test"], "--val-identities/--test-identities")
    check_names(videos, "method", held_methods["val"] | held_methods["test"], "--val-methods/--test-methods")
    for kind, held in (("identities", held_identities), ("methods", held_methods)):
        both = held["val"] & held["test"]
        if both:
            raise DataError(f"{kind} {', '.join(sorted(both))} are held out for both validation and test")

    assignment = assign(crops, split_of_chunk, held_identities, held_methods)
    splits = {}
    for name in SPLIT_NAMES:
        asked = bool(chunks[name]) or bool(held_identities.get(name))
        if name == "test" and not asked:
            log.info("no test split (no test chunks or identities)")
            continue
        part = crops[assignment == name].reset_index(drop=True)
        if part.empty:
            raise DataError(empty_split_message(name, specs[name], videos, held_identities, held_methods))
        lacking = [label for label in ("REAL", "FAKE") if not (part["label"] == label).any()]
        if config.persons and name != "train" and lacking:  # people dealt out: AUC and balanced logloss need both labels
            raise DataError(f"the {name} split (chunks {specs[name] or 'none'}) has no {lacking[0]} crops, so it cannot be scored; "
                            f"give it other chunks or people")
        splits[name] = Split(name, chunks[name], part, videos[videos["video"].isin(set(part["video"]))].reset_index(drop=True))
        log.info("%s split: chunks %s%s, %d crops of %d videos (%d REAL, %d FAKE)", name, specs[name] or "none",
                 f", identities {','.join(sorted(held_identities[name]))}" if held_identities.get(name) else "", len(part),
                 part["video"].nunique(), part.loc[part["label"] == "REAL", "video"].nunique(),
                 part.loc[part["label"] == "FAKE", "video"].nunique())
    return splits


def empty_split_message(name: str, spec: str, videos: pd.DataFrame, held_identities: dict[str, set[str]],
                        held_methods: dict[str, set[str]]) -> str:
    """One line: which split has no crops, after which hold-outs, and what to change."""
    people = held_identities.get(name, set())
    where = f"chunks {spec or 'none'}" + (f", identities {','.join(sorted(people))}" if people else "")
    held = [f"{kind} {','.join(sorted(values['val'] | values['test']))}" for kind, values in (("identities", held_identities),
                                                                                            ("methods", held_methods))
            if values["val"] | values["test"]]
    after = f" after holding out {' and '.join(held)}" if held else ""
    extracted = format_chunk_spec(set(videos["chunk"])) or "none"
    return f"the {name} split ({where}) has no face crops{after}; extracted chunks: {extracted}; set --{name}-chunks" + (
        " or hold out fewer" if held else "")


def assign(crops: pd.DataFrame, split_of_chunk: dict[int, str], held_identities: dict[str, set[str]],
           held_methods: dict[str, set[str]]) -> pd.Series:
    """Each crop's split name ("" for none): by chunk, then by identity, minus held-out methods and donors."""
    split = crops["chunk"].map(split_of_chunk).fillna("").astype(str)
    identity, method, donor = column(crops, "identity"), column(crops, "method"), column(crops, "donor")
    for name in ("val", "test"):  # test last: a person held out for test is never validated on
        split = split.where(~identity.isin(held_identities[name]), name)
    dropped = pd.Series(False, index=crops.index)
    later = {"train": held_identities["val"] | held_identities["test"], "val": held_identities["test"]}
    for name, people in later.items():
        dropped |= (split == name) & donor.isin(people) & (donor != "")  # a held-out face swapped into a trained video
    dropped |= (split == "train") & method.isin(held_methods["val"] | held_methods["test"]) & (method != "")
    dropped |= (split == "val") & method.isin(held_methods["test"]) & (method != "")
    if dropped.any():
        log.info("left out %d crops of %d fake videos whose method or face-swap donor is held out of their split",
                 int(dropped.sum()), crops.loc[dropped, "video"].nunique())
    return split.where(~dropped, "")


def check_names(videos: pd.DataFrame, name: str, wanted: set[str], flags: str) -> None:
    """``DataError`` for held-out names the index does not have, listing those it has."""
    known = set(column(videos, name)) - {""}
    unknown = sorted(wanted - known)
    if unknown:
        raise DataError(f"{flags}: unknown {name} {', '.join(unknown)}; the crop index has "
                        f"{', '.join(sorted(known)) or f'no {name} column (metadata.json has no {name!r} keys)'}")


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
