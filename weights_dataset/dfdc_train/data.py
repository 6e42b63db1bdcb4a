"""Crop images on disk -> model-ready tensors, for training batches and for scoring a split.

Every crop ends at the model's input size through ``dfdc_infer.cropping.resize_square``, the very
resampling the kernel's square geometry applies when it cuts a face at the model's size; ``dfdc_infer.models.preprocess`` then only normalises. Both datasets return float
tensors in [0, 1], (N, 3, S, S), and run inside DataLoader workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from dfdc_fakes import DONOR_METHODS, landmarks_from_box, make_fake
from dfdc_infer.cropping import resize_square

from .augment import RECIPES, draw_params, mixup, random_merge
from .config import TrainConfig
from .crop_index import face_box_in_crop, landmarks_in_crop
from .layout import DataError
from .difference_masks import blank, difference_mask, load_mask, most_changed_box
from .mask_loss import MASK_SIDE_DIVISOR, batch_targets
from .sampling import Batch, Group


@contextmanager
def single_threaded_opencv() -> Iterator[None]:
    """Run OpenCV on one thread inside the block (DataLoader workers forked there inherit it).

    OpenCV's thread pool and torch's compete for the same cores: with crops loaded in the
    training process, epochs ran 5x slower on 2 cores. Small crops gain nothing from threads.
    The previous setting is restored on exit.
    """
    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


@contextmanager
def torch_threads(count: int | None) -> Iterator[None]:
    """Run torch's CPU ops on ``count`` threads inside the block (None: leave it), restoring the setting after.

    A fixed count makes training bit-identical from run to run: the thread count decides how
    reductions are split, and so the last bits of every sum.
    """
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def read_rgb(path: Path) -> np.ndarray | None:
    """An image file as (H, W, 3) uint8 RGB, or None when it is missing or cannot be decoded."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def load_crop(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB; a missing or unreadable file is a ``DataError`` naming it."""
    image = read_rgb(path)
    if image is None:
        raise DataError(f"crop image missing or unreadable: {path} (re-run extraction for its video)")
    return image


def to_input_size(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a square crop to ``size`` with the kernel's own crop resampling."""
    return resize_square(image, size)


def to_tensor(images: list[np.ndarray]) -> torch.Tensor:
    """(N, 3, S, S) float32 in [0, 1], the layout ``preprocess`` takes."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(255.0)


class TrainBatches(Dataset):
    """Batch ``i`` of an epoch's plan (``sampling.epoch_batches``), loaded and augmented.

    Everything random derives from the groups' seeds, so a batch is the same whichever worker
    loads it, and a real and its fake get the same draws. An on-the-fly fake that needs another
    person's face (a face swap) takes the real crop of the next group of the batch (of itself,
    mirrored, in a batch of one).
    """

    def __init__(self, batches: list[Batch], crops: pd.DataFrame, crops_dir: Path, config: TrainConfig,
                 crop_margin: float, input_size: int) -> None:
        self.batches = batches
        self.crops = crops
        self.crops_dir = Path(crops_dir)
        self.config = config
        self.crop_margin = crop_margin
        self.input_size = input_size
        self.recipe = RECIPES.get(config.augmentation)(config, input_size)
        self.targets = crops["target"].to_numpy(dtype=np.float64) if "target" in crops.columns else None  # distillation's

    def __len__(self) -> int:
        return len(self.batches)

    def donor(self, batch: tuple, position: int, load: Callable[[int], np.ndarray]) -> tuple[np.ndarray, tuple[float, float, float, float]]:
        """The real crop of the group after ``position`` (wrapping), with its face box."""
        if len(batch) == 1:
            row = self.crops.iloc[batch[0].items[0].row]
            image = np.ascontiguousarray(load(batch[0].items[0].row)[:, ::-1])
            x1, y1, x2, y2 = self.fake_box(row, image.shape[0])
            return image, (image.shape[1] - x2, y1, image.shape[1] - x1, y2)
        item = batch[(position + 1) % len(batch)].items[0]
        image = load(item.row)
        return image, self.fake_box(self.crops.iloc[item.row], image.shape[0])

    def fake_box(self, row: pd.Series, side: int) -> tuple[float, float, float, float]:
        """The face box an on-the-fly fake is made on: the row's, scaled by ``synthetic_box_scale`` about its centre."""
        x1, y1, x2, y2 = face_box_in_crop(row, side)
        grow = (self.config.synthetic_box_scale - 1) / 2
        return x1 - grow * (x2 - x1), y1 - grow * (y2 - y1), x2 + grow * (x2 - x1), y2 + grow * (y2 - y1)

    def loader(self) -> Callable[[int], np.ndarray]:
        """A reader of crops by row for one batch: each file decoded once (a synthetic pair is one crop twice, a
        swap's donor another group's real), handed out read-only so no step can change it for its next user."""
        loaded: dict[int, np.ndarray] = {}

        def load(row: int) -> np.ndarray:
            if row not in loaded:
                loaded[row] = load_crop(self.crops_dir / self.crops.iloc[row]["path"])
                loaded[row].flags.writeable = False
            return loaded[row]
        return load

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """(images, targets), and with ``mask_loss_weight`` the crops' difference-mask targets (``mask_loss``) third.

        A target is the crop's label, or its ``target`` column where the split has one (``distillation``: a teacher's
        share in it); an on-the-fly fake's is always 1."""
        batch = self.batches[index]
        images: list[np.ndarray] = []
        labels: list[float] = []
        soft: list[float] = []
        merge: list[bool] = []
        reals: list[int | None] = []  # the index in ``images`` of each crop's group's real, for the mask targets
        load = self.loader()
        for position, group in enumerate(batch):
            rng = np.random.default_rng(group.seed)
            params = draw_params(rng, self.config, self.crop_margin)
            crops = []
            for item in group.items:
                row = self.crops.iloc[item.row]
                image = load(item.row)
                if item.method is not None:
                    donor = self.donor(batch, position, load) if item.method in DONOR_METHODS else None
                    image = make_fake(item.method, image, self.fake_box(row, image.shape[0]), rng, donor)
                crops.append(image)
            first = self.crops.iloc[group.items[0].row]
            landmarks = landmarks_in_crop(first)
            if landmarks is None:
                landmarks = landmarks_from_box(face_box_in_crop(first, crops[0].shape[0]))
            real = next((len(images) + i for i, item in enumerate(group.items) if item.label == 0.0 and item.method is None), None)
            for item, image in zip(group.items, self.cutout(group, crops), strict=True):
                images.append(self.recipe(image, params, landmarks, group.seed))
                labels.append(item.label)
                soft.append(item.label if item.method is not None or self.targets is None else float(self.targets[item.row]))
                merge.append(params.merge)
                reals.append(real)
        rng = np.random.default_rng([group.seed for group in batch])
        merged = random_merge(images, labels, merge, rng)
        usable = [after is before for after, before in zip(merged, images, strict=True)]
        sized = [to_input_size(image, self.input_size) for image in merged]
        tensor = to_tensor(sized)
        targets = torch.tensor(soft, dtype=torch.float32)
        if rng.random() < self.config.mixup_prob:
            weight = float(rng.beta(self.config.mixup_alpha, self.config.mixup_alpha))
            tensor, targets = mixup(tensor, targets, weight, torch.from_numpy(rng.permutation(len(labels))))
            usable = [False] * len(usable)
        if not self.config.mask_loss_weight:
            return tensor, targets
        return tensor, targets, batch_targets(sized, labels, reals, usable, self.input_size // MASK_SIDE_DIVISOR)

    def cutout(self, group: Group, crops: list[np.ndarray]) -> list[np.ndarray]:
        """With ``cutout_prob``, every crop of the group (the real too) with the square where its first
        fake changed most blanked (``difference_masks.most_changed_box``); else the crops as they are.

        The box comes from the fake's difference mask on disk or, without one (an on-the-fly fake, a
        deepfake-faces crop), from its difference to the group's real crop, computed here. A deepfake-faces
        fake is often cut at the same pixels as its original, so the square lands on the swapped face; where
        the two were cut apart the difference is everywhere and the square is a plain cutout. Crops of two
        sizes give no box. Blanking the real alike keeps a black square from meaning FAKE;
        it runs before the recipe, so flips and zooms move the square with the face. Its draws come
        from their own stream (``[seed, 2]``), so the setting changes no other draw.
        """
        rng = np.random.default_rng([group.seed, 2])
        if rng.random() >= self.config.cutout_prob:
            return crops
        for position, item in enumerate(group.items):
            if item.label != 1.0:
                continue
            mask_path = self.crops.iloc[item.row]["mask"]
            if item.method is None and mask_path:
                mask = load_mask(self.crops_dir / mask_path)
            elif crops[0].shape == crops[position].shape:
                mask = difference_mask(crops[0], crops[position])
            else:
                return crops
            box = most_changed_box(mask, rng)
            return crops if box is None else [blank(image, box) for image in crops]
        return crops


class SplitCrops(Dataset):
    """Every crop of ``paths`` in order, un-augmented, for scoring a split."""

    def __init__(self, paths: list[str], crops_dir: Path, input_size: int) -> None:
        self.paths = paths
        self.crops_dir = Path(crops_dir)
        self.input_size = input_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return to_tensor([to_input_size(load_crop(self.crops_dir / self.paths[index]), self.input_size)])[0]
