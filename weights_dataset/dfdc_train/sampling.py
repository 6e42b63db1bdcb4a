"""Batches of real/fake groups: each original shown next to a fake of itself.

A DFDC fake differs from its original only inside the swapped face; showing both in one batch,
cut at the same frame and augmented with the same draws, leaves the manipulation as the only
difference to learn from (instead of actor, room or light). Samplers (``TrainConfig.sampler``):

- ``pairs``: each original with one random fake of it, at a random frame both have a face in;
- ``all-fakes``: each original with every fake of it that has a face at the chosen frame, or with
  ``fakes_per_original`` of them (each fake once before any twice), so batches without on-the-fly
  fakes keep one size: on the 2-core CPU, batches of changing size took 1.5x the pairs sampler's
  time per crop (journal, 2026-12-07);
- ``synthetic``: each original with a fake made on the fly from the same crop by a random method
  of ``dfdc_fakes.METHODS`` (self-blend, face swap with another original of the batch, ...):
  needs no fake video at all.

With ``synthetic_prob``, ``pairs`` and ``all-fakes`` replace a group's fake videos by one on-the-fly
fake that often: many new manipulations every epoch next to the real fakes.

An epoch shows every usable original exactly once, in a random order that depends only on
(seed, epoch), so every process of a distributed run computes the same batches and takes its share
(``rank_share``) without any communication, and pairs are never split across processes.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

T = TypeVar("T")
FrameKey = tuple[int, int]
"""(frame number, face rank in the frame): which crops of two videos show the same moment."""


@dataclass(frozen=True)
class Item:
    """One crop of a batch: a row of the split's crop table, its label, and the fake method to apply
    to it on the fly (None: the crop as it is)."""

    row: int
    label: float
    method: str | None = None


@dataclass(frozen=True)
class Group:
    """One original's crops in a batch, real first; one frame, one augmentation ``seed``."""

    items: tuple[Item, ...]
    seed: int


Batch = tuple[Group, ...]


@dataclass(frozen=True)
class Original:
    """A REAL video's crops and, per fake of it, the fake's crops at frames the real also has."""

    video: str
    crops: dict[FrameKey, int]
    fakes: dict[str, dict[FrameKey, int]]


@dataclass(frozen=True)
class Pairing:
    """Every REAL video of a split with its fakes, and what could not be paired (counted, logged)."""

    originals: tuple[Original, ...]
    fakes_without_original: int
    """FAKE videos whose original has no crops here (not extracted, no face, or in no split)."""
    fakes_without_shared_frame: int
    """FAKE videos with crops, none of them at a frame where the original has one."""

    def usable(self, sampler: str) -> list[Original]:
        """The originals a sampler can use: all of them for synthetic, those with a fake otherwise."""
        return [original for original in self.originals if sampler == "synthetic" or original.fakes]

    def describe(self, sampler: str) -> str:
        usable = self.usable(sampler)
        if sampler == "synthetic":
            return f"{len(usable)} originals, each with on-the-fly fakes (fake videos not used)"
        return (f"{len(usable)} originals paired with {sum(len(o.fakes) for o in usable)} fakes; left out: "
                f"{self.fakes_without_original} fakes whose original is missing, {self.fakes_without_shared_frame} fakes "
                f"without a frame in common with their original, {len(self.originals) - len(usable)} originals without a fake")


def build_pairing(crops: pd.DataFrame) -> Pairing:
    """Group a split's crops (``crop_index.CROP_COLUMNS``, row positions as ids) by original."""
    keys: dict[str, dict[FrameKey, int]] = {}
    for row, (video, frame, face) in enumerate(zip(crops["video"], crops["frame"], crops["face"])):
        keys.setdefault(video, {})[(int(frame), int(face))] = row
    videos = crops.drop_duplicates("video")
    originals = {video: Original(video, keys[video], {}) for video in videos.loc[videos["label"] == "REAL", "video"]}
    without_original = without_shared = 0
    for fake, original in zip(*videos.loc[videos["label"] == "FAKE", ["video", "original"]].to_numpy().T):
        if original not in originals:
            without_original += 1
            continue
        shared = {key: row for key, row in keys[fake].items() if key in originals[original].crops}
        if shared:
            originals[original].fakes[fake] = shared
        else:
            without_shared += 1
    return Pairing(tuple(originals[video] for video in sorted(originals)), without_original, without_shared)


def epoch_batches(pairing: Pairing, sampler: str, originals_per_batch: int, seed: int, epoch: int,
                  methods: tuple[str, ...] = (), synthetic_prob: float = 0.0, fakes_per_original: int = 0) -> list[Batch]:
    """The epoch's batches: every usable original once, in an order fixed by (seed, epoch).

    ``methods`` are the on-the-fly fake methods (needed by ``synthetic`` or ``synthetic_prob`` > 0).
    """
    if (sampler == "synthetic" or synthetic_prob > 0) and not methods:
        raise ValueError("on-the-fly fakes need at least one fake method")
    originals = pairing.usable(sampler)
    rng = np.random.default_rng([seed, epoch])
    groups = [make_group(originals[position], sampler, rng, methods, synthetic_prob, fakes_per_original)
              for position in rng.permutation(len(originals))]
    return [tuple(groups[start:start + originals_per_batch]) for start in range(0, len(groups), originals_per_batch)]


def make_group(original: Original, sampler: str, rng: np.random.Generator, methods: tuple[str, ...] = (),
               synthetic_prob: float = 0.0, fakes_per_original: int = 0) -> Group:
    """The crops ``sampler`` shows for one original (see the module docstring)."""
    synthetic = sampler == "synthetic" or rng.random() < synthetic_prob  # always drawn: one stream whatever the setting
    method = methods[int(rng.integers(len(methods)))] if methods else None
    if synthetic:
        row = original.crops[_pick(sorted(original.crops), rng)]
        items = (Item(row, 0.0), Item(row, 1.0, method=method))
    elif sampler == "pairs":
        fake = _pick(sorted(original.fakes), rng)
        key = _pick(sorted(original.fakes[fake]), rng)
        items = (Item(original.crops[key], 0.0), Item(original.fakes[fake][key], 1.0))
    elif sampler == "all-fakes":
        key = _pick(sorted(set().union(*original.fakes.values())), rng)
        fakes = [crops[key] for _, crops in sorted(original.fakes.items()) if key in crops]
        if fakes_per_original:  # a shuffled cycle through the fakes: each once before any twice
            fakes = [fakes[i] for i in np.resize(rng.permutation(len(fakes)), fakes_per_original)]
        items = (Item(original.crops[key], 0.0), *(Item(row, 1.0) for row in fakes))
    else:
        raise ValueError(f"unknown sampler {sampler!r}")
    return Group(items, int(rng.integers(2**63)))


def _pick(options: list[T], rng: np.random.Generator) -> T:
    """One of ``options`` (sorted by the caller, so the draw does not depend on dict order)."""
    return options[int(rng.integers(len(options)))]


def batches_per_rank(batches: int, world_size: int) -> int:
    """How many batches each of ``world_size`` processes runs per epoch (see ``rank_share``)."""
    return math.ceil(batches / world_size)


def rank_share(batches: list[Batch], rank: int, world_size: int) -> list[Batch]:
    """Process ``rank``'s batches: every ``world_size``-th, the list first wrapped around so all
    processes run the same number of steps (as torch's DistributedSampler pads; a process with
    fewer steps would leave the others waiting in the gradient all-reduce)."""
    total = batches_per_rank(len(batches), world_size) * world_size
    padded = [batches[position % len(batches)] for position in range(total)] if batches else []
    return padded[rank::world_size]
