"""Fakes that show no change: left out of training with ``--min-fake-change``.

Some DFDC fakes are near copies of their source frame: audio-only fakes, swaps that failed or were blended back, a
frame where the face was barely touched. In ``dfdc-faces`` a fake whose crop is cut at its original's pixels can be
compared with it; 1,155 of its 19,738 fakes (5.9%) change under half a percent of their crop
(``mask_loss.changed_pixels``: blurred difference over 16 levels; journal, 2026-12-07, sixth session). Training on
them teaches the network that a face it cannot tell from the real one is FAKE, which is noise for the label.
``--min-fake-change F`` leaves out of the training split every fake whose first crop shared with its original (same
frame and face) is pixel-aligned with it and changes less than ``F`` of its pixels. A fake that is not aligned (framed
by its own detection) cannot be measured and stays; validation and test keep every fake, so their figures stay
comparable with every other run's.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from dfdc_infer.progress import ProgressLine

from .data import load_crop
from .mask_loss import changed_pixels
from .sampling import build_pairing
from .splits import Split

log = logging.getLogger(__name__)


def fake_changes(crops: pd.DataFrame, crops_dir: Path, threads: int = 2) -> dict[str, float | None]:
    """Each paired fake video of ``crops`` -> the fraction of its first shared crop that differs from its original's
    (``mask_loss.changed_pixels``), or None when the two are not pixel-aligned."""
    pairs = [(fake, original.crops[min(shared)], shared[min(shared)])
             for original in build_pairing(crops).originals for fake, shared in original.fakes.items()]
    paths = list(crops["path"])
    progress = ProgressLine(len(pairs), unit="fakes", every_seconds=30)

    def change(pair: tuple[str, int, int]) -> float | None:
        _, real_row, fake_row = pair
        changed = changed_pixels(load_crop(crops_dir / paths[real_row]), load_crop(crops_dir / paths[fake_row]))
        return None if changed is None else float(changed.mean())

    changes: dict[str, float | None] = {}
    with ThreadPoolExecutor(threads) as pool:  # decoding and blurring release the GIL
        for (fake, _, _), value in zip(pairs, pool.map(change, pairs)):
            changes[fake] = value
            progress.advance()
    return changes


def drop_unchanged_fakes(split: Split, crops_dir: Path, min_change: float, threads: int = 2) -> Split:
    """``split`` without the fakes that change less than ``min_change`` of their crop (see the module docstring);
    the count left out, and the count that could not be measured, are logged."""
    changes = fake_changes(split.crops, crops_dir, threads)
    dropped = {fake for fake, change in changes.items() if change is not None and change < min_change}
    unmeasured = sum(change is None for change in changes.values())
    log.info("%s split: left out %d of %d paired fakes that change under %.2g of their crop (--min-fake-change); %d fakes not "
             "cut at their original's pixels cannot be measured and stay", split.name, len(dropped), len(changes), min_change,
             unmeasured)
    keep_crops, keep_videos = ~split.crops["video"].isin(dropped), ~split.videos["video"].isin(dropped)
    return replace(split, crops=split.crops[keep_crops].reset_index(drop=True),
                   videos=split.videos[keep_videos].reset_index(drop=True))
