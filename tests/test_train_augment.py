"""Augmentations one by one, their shared draws within a real/fake group, and batches as tensors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from dfdc_infer.cropping import crop_face
from dfdc_fakes import METHODS, landmarks_from_box
from dfdc_train.augment import (AugmentParams, adjust_brightness, augment, crappify, draw_params, heavy_pipeline, hflip, landmark_cutout,
                                margin_zoom, recompress, merge_halves, mixup, random_merge, zoom)
from dfdc_train.config import TrainConfig
from dfdc_train.crop_index import CROP_COLUMNS
from dfdc_train.data import TrainBatches, face_box_in_crop, to_input_size
from dfdc_train.layout import DataError
from dfdc_train.difference_masks import save_mask
from dfdc_train.mask_loss import UNKNOWN
from dfdc_train.sampling import Group, Item

NO_AUGMENT = TrainConfig(flip_prob=0, brightness_prob=0, zoom_prob=0, crappify_prob=0)


def gradient(size: int = 64) -> np.ndarray:
    """x in red, y in green, a bright square top-left: every pixel tells where it came from."""
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    image = np.stack([np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 100.0)], axis=2)
    image[4:12, 4:12] = 255
    return image.astype(np.uint8)


def test_hflip_mirrors_columns() -> None:
    image = gradient()
    flipped = hflip(image)
    np.testing.assert_array_equal(flipped[:, 0], image[:, -1])
    np.testing.assert_array_equal(hflip(flipped), image)


def test_brightness_shifts_and_clips() -> None:
    image = np.array([[[0, 100, 250]]], dtype=np.uint8)
    assert adjust_brightness(image, 0.1).tolist() == [[[26, 126, 255]]]
    assert adjust_brightness(image, -0.1).tolist() == [[[0, 74, 224]]]


def test_crappify_loses_detail_but_keeps_size_and_colour() -> None:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    blurred = crappify(noise, 64)
    assert blurred.shape == noise.shape
    assert blurred.std() < 0.8 * noise.std()  # fine texture is gone
    assert abs(float(blurred.mean()) - float(noise.mean())) < 2
    smooth = gradient(128)
    assert np.abs(crappify(smooth, 64).astype(int) - smooth).mean() < 3  # smooth content survives


def test_jpeg_recompression_keeps_the_picture_and_blurs_the_detail() -> None:
    smooth = gradient(64)
    assert np.abs(recompress(smooth, 90).astype(int) - smooth).mean() < 2
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    low, high = (np.abs(recompress(noise, quality).astype(int) - noise).mean() for quality in (30, 90))
    assert recompress(noise, 30).shape == noise.shape and low > high > 0  # lower quality, more loss
    config = TrainConfig(jpeg_prob=1.0, jpeg_quality=(50, 50))
    assert draw_params(np.random.default_rng(0), config, 1.3).jpeg_quality == 50
    assert draw_params(np.random.default_rng(0), NO_AUGMENT, 1.3).jpeg_quality == 0
    with pytest.raises(ValueError, match="jpeg_quality must be two qualities"):
        TrainConfig(jpeg_quality=(90, 40))


def test_zoom_in_and_out_about_the_centre() -> None:
    image = gradient(100)
    zoomed = zoom(image, 2.0)
    assert zoomed.shape == image.shape
    assert abs(int(zoomed[50, 50, 0]) - int(image[50, 50, 0])) <= 3  # the centre stays put
    assert abs(int(zoomed[50, 99, 0]) - int(image[50, 75, 0])) <= 4  # the edge shows what was halfway out
    wider = zoom(image, 0.8)
    assert wider[0, 0].tolist() != [0, 0, 0]  # uncovered borders are mirrored, not black
    assert margin_zoom(1.3, 1.15) == pytest.approx(1.1304, abs=1e-4) and margin_zoom(1.3, 1.3) == 1.0


def test_merge_takes_left_half_from_one_and_right_half_from_the_other() -> None:
    left, right = np.zeros((4, 6, 3), np.uint8), np.full((4, 6, 3), 9, np.uint8)
    merged = merge_halves(left, right)
    assert merged[:, :3].max() == 0 and merged[:, 3:].min() == 9
    with pytest.raises(ValueError, match="one shape"):
        merge_halves(left, right[:, :4])


def test_random_merge_partners_share_the_label() -> None:
    images = [np.full((2, 4, 3), value, np.uint8) for value in (0, 1, 2, 3)]
    labels = [0.0, 1.0, 0.0, 1.0]
    merged = random_merge(images, labels, [True, True, False, False], np.random.default_rng(0))
    assert merged[0][:, 2:].max() == 2 and merged[1][:, 2:].max() == 3  # the only other crop with its label
    assert merged[2] is images[2]
    alone = random_merge(images[:2], labels[:2], [True, True], np.random.default_rng(0))
    assert alone[0] is images[0]  # no partner with the same label: unchanged


def test_mixup_mixes_images_and_labels_alike() -> None:
    images = torch.stack([torch.zeros(3, 2, 2), torch.ones(3, 2, 2)])
    mixed, labels = mixup(images, torch.tensor([0.0, 1.0]), 0.75, torch.tensor([1, 0]))
    assert mixed[0].unique().tolist() == [0.25] and mixed[1].unique().tolist() == [0.75]
    assert labels.tolist() == [0.25, 0.75]


def test_draws_follow_the_probabilities() -> None:
    config = TrainConfig(flip_prob=1, brightness_prob=0, zoom_prob=1, crappify_prob=0, merge_prob=1, zoom_range=(1.2, 1.2))
    params = draw_params(np.random.default_rng(0), config, crop_margin=1.3)
    assert params == AugmentParams(flip=True, brightness=0.0, zoom=pytest.approx(1.3 / 1.2), crappify=False, merge=True)
    assert draw_params(np.random.default_rng(0), NO_AUGMENT, 1.3) == AugmentParams()
    image = gradient()
    assert augment(image, AugmentParams(), NO_AUGMENT) is image


@pytest.fixture
def crop_files(tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """Two 64 px crops on disk: a real (flat skin-grey face on a dark frame) and its fake (a brighter face)."""
    rows = []
    for video, label, face_level in (("r.mp4", "REAL", 150), ("f.mp4", "FAKE", 190)):
        image = np.full((64, 64, 3), 40, np.uint8)
        image[12:52, 14:50] = face_level
        path = f"crops/{video}.png"
        (tmp_path / "crops").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / path), image)
        rows.append({"video": video, "label": label, "original": None if label == "REAL" else "r.mp4", "chunk": 0, "frame": 0, "face": 0,
                     "x1": 114.0, "y1": 112.0, "x2": 150.0, "y2": 152.0, "score": 1.0, "crop_x1": 100, "crop_y1": 100,
                     "crop_x2": 164, "crop_y2": 164, "path": path, "mask": "", "landmarks": ""})
    return pd.DataFrame(rows, columns=CROP_COLUMNS), tmp_path


def test_a_pair_gets_the_same_draws_and_batches_are_reproducible(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    config = TrainConfig(flip_prob=1, brightness_prob=1, brightness_max=0.2, zoom_prob=1)
    batch = (Group((Item(0, 0.0), Item(1, 1.0)), seed=7),)
    images, labels = TrainBatches([batch], crops, folder, config, crop_margin=1.3, input_size=32)[0]
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    assert labels.tolist() == [0.0, 1.0]
    background = images[:, :, :3, :3].flatten(1)  # a corner outside the face: identical augmentation -> identical pixels
    torch.testing.assert_close(background[0], background[1])
    again, _ = TrainBatches([batch], crops, folder, config, 1.3, 32)[0]
    torch.testing.assert_close(images, again)
    plain, _ = TrainBatches([batch], crops, folder, NO_AUGMENT, 1.3, 32)[0]
    real = cv2.cvtColor(cv2.imread(str(folder / crops.loc[0, "path"])), cv2.COLOR_BGR2RGB)
    expected = torch.from_numpy(crop_face(real, np.array([0, 0, 64, 64]), 32, 1.0)).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(plain[0], expected)  # without augmentation: the kernel's resize, nothing else


@pytest.mark.parametrize("method", METHODS.names())
def test_on_the_fly_fakes_change_only_the_face(crop_files: tuple[pd.DataFrame, Path], method: str) -> None:
    crops, folder = crop_files
    assert face_box_in_crop(crops.loc[0], 128) == (28.0, 24.0, 100.0, 104.0)  # crop pixels, scaled to the saved size
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 1.5)
    cv2.imwrite(str(folder / crops.loc[0, "path"]), texture)  # detail that blurring and warping visibly change
    groups = (Group((Item(0, 0.0), Item(0, 1.0, method=method)), seed=3), Group((Item(1, 0.0), Item(1, 1.0)), seed=4))
    images, labels = TrainBatches([groups], crops, folder, NO_AUGMENT, 1.3, 64)[0]
    difference = (images[1] - images[0]).abs().sum(0)
    assert labels.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert difference[12:52, 14:50].amax() > 0.03  # the face changed, beyond rounding (a part warp may move the nose alone)
    assert difference[:3].max() == 0 and difference[:, :3].max() == 0  # far from the face box nothing did


def test_a_smaller_synthetic_box_keeps_the_self_blend_edge_inside_the_face(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    texture = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8), (0, 0), 1.5)
    cv2.imwrite(str(folder / crops.loc[0, "path"]), texture)
    group = (Group((Item(0, 0.0), Item(0, 1.0, method="self-blend")), seed=3),)
    changed = {}
    for scale in (1.0, 0.5):
        images, _ = TrainBatches([group], crops, folder, replace(NO_AUGMENT, synthetic_box_scale=scale), 1.3, 64)[0]
        changed[scale] = ((images[1] - images[0]).abs().sum(0) > 0.03).numpy()
    ys, xs = np.nonzero(changed[0.5])  # the face box is x 14-50, y 12-52 at this size; halved about its centre: x 23-41, y 22-42
    assert len(xs) and 18 <= xs.min() and xs.max() <= 46 and 16 <= ys.min() and ys.max() <= 48
    assert changed[1.0][:, :18].any() and changed[1.0].sum() > 2 * changed[0.5].sum()  # the full box blends out to its edges


def test_cutout_blanks_the_most_changed_square_in_every_crop_of_a_group(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    mask = np.full((16, 16), 30, np.uint8)  # the fake changed everywhere a little (mask: a quarter of the crop's side) ...
    mask[2:6, 10:14] = 200  # ... and top right most
    save_mask(folder / "crops/f_mask.png", mask)
    crops.loc[1, "mask"] = "crops/f_mask.png"
    pair = (Group((Item(0, 0.0), Item(1, 1.0)), seed=1),)
    images, _ = TrainBatches([pair], crops, folder, replace(NO_AUGMENT, cutout_prob=1), 1.3, 64)[0]
    plain, _ = TrainBatches([pair], crops, folder, NO_AUGMENT, 1.3, 64)[0]
    black = (images == 0).all(1)
    assert torch.equal(black[0], black[1])  # the real too, alike: a black square must not mean FAKE
    assert black[0, 8:24, 40:56].all() and not black[0, 40:, :24].any()  # over the most change, not elsewhere
    torch.testing.assert_close(images[:, :, ~black[0]], plain[:, :, ~black[0]])  # nothing else changed
    synthetic = (Group((Item(0, 0.0), Item(0, 1.0, method="self-blend")), seed=2),)
    images, _ = TrainBatches([synthetic], crops, folder, replace(NO_AUGMENT, cutout_prob=1), 1.3, 64)[0]
    black = (images == 0).all(1)
    assert black.any() and torch.equal(black[0], black[1])  # an on-the-fly fake's own difference picks the same square for both
    ys, xs = np.nonzero(black[0].numpy())
    assert 12 <= ys.mean() <= 52 and 14 <= xs.mean() <= 50  # on the face, where self-blend changed it
    never, _ = TrainBatches([synthetic], crops, folder, replace(NO_AUGMENT, cutout_prob=0), 1.3, 64)[0]
    assert not (never == 0).all(1).any()


def test_cutout_without_a_mask_on_disk_uses_the_fakes_difference_to_its_real(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files  # deepfake-faces fakes have no mask file: the pair's own difference places the square
    pair = (Group((Item(0, 0.0), Item(1, 1.0)), seed=3),)
    images, _ = TrainBatches([pair], crops, folder, replace(NO_AUGMENT, cutout_prob=1), 1.3, 64)[0]
    black = (images == 0).all(1)
    assert black.any() and torch.equal(black[0], black[1])
    ys, xs = np.nonzero(black[0].numpy())
    assert 12 <= ys.min() and ys.max() < 52 and 14 <= xs.min() and xs.max() < 50  # inside the face, the only change
    small = folder / "crops/small.png"  # a fake of another size than its real: no difference, no square
    cv2.imwrite(str(small), np.full((48, 48, 3), 190, np.uint8))
    crops.loc[1, "path"] = "crops/small.png"
    images, _ = TrainBatches([pair], crops, folder, replace(NO_AUGMENT, cutout_prob=1), 1.3, 64)[0]
    assert not (images == 0).all(1).any()


def test_landmark_cutout_blacks_out_one_part() -> None:
    image = np.full((100, 100, 3), 200, np.uint8)
    landmarks = landmarks_from_box((20, 20, 80, 80))
    for part, (x, y) in ((0, landmarks[:2].mean(0)), (1, landmarks[2]), (2, landmarks[3:].mean(0))):
        out = landmark_cutout(image, landmarks, part)
        assert out[int(round(y)), int(round(x))].tolist() == [0, 0, 0]
        assert 0.01 < (out == 0).all(axis=2).mean() < 0.15 and out[:15].min() == 200  # the part, not the face


def test_the_first_places_recipe_gives_one_group_the_same_draws() -> None:
    image = gradient(96)
    pipeline = heavy_pipeline(64)
    outputs = []
    for seed in (5, 5, 6):
        pipeline.set_random_seed(seed)
        outputs.append(pipeline(image=image)["image"])
    assert outputs[0].shape == (64, 64, 3) and outputs[0].dtype == np.uint8
    np.testing.assert_array_equal(outputs[0], outputs[1])
    different = [seed for seed in range(7, 17) if (pipeline.set_random_seed(seed) or True)
                 and not np.array_equal(pipeline(image=image)["image"], outputs[0])]
    assert len(different) >= 8  # heavy: nearly every draw changes the crop


def test_a_pair_with_the_first_places_recipe_differs_only_by_the_manipulation(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    config = replace(NO_AUGMENT, augmentation="dfdc-1st")
    for seed in range(4):
        images, _ = TrainBatches([(Group((Item(0, 0.0), Item(0, 1.0)), seed=seed),)], crops, folder, config, 1.3, 48)[0]
        assert images.shape == (2, 3, 48, 48)
        torch.testing.assert_close(images[0], images[1])  # the same crop twice: identical draws, identical result


def test_a_missing_crop_file_names_the_file(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    (folder / crops.loc[1, "path"]).unlink()
    with pytest.raises(DataError, match=r"crop image missing or unreadable: .*f.mp4.png"):
        TrainBatches([(Group((Item(0, 0.0), Item(1, 1.0)), 0),)], crops, folder, NO_AUGMENT, 1.3, 32)[0]


def test_input_size_uses_the_kernels_crop_resampling() -> None:
    image = gradient(96)
    np.testing.assert_array_equal(to_input_size(image, 48), cv2.resize(image, (48, 48), interpolation=cv2.INTER_AREA))


def test_batch_mixup_gives_soft_labels(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    batches = [(Group((Item(0, 0.0), Item(1, 1.0)), seed=seed),) for seed in range(6)]
    loader = TrainBatches(batches, crops, folder, replace(NO_AUGMENT, mixup_prob=1), 1.3, 32)
    labels = [loader[index][1] for index in range(len(batches))]
    assert all(abs(float(pair.sum()) - 1) < 1e-6 for pair in labels)
    assert any(0.0 < float(pair[0]) < 1.0 for pair in labels)


def test_a_batch_carries_its_fakes_change_as_a_mask_target_only_when_asked(crop_files: tuple[pd.DataFrame, Path]) -> None:
    crops, folder = crop_files
    batch = (Group((Item(0, 0.0), Item(1, 1.0)), seed=7),)
    assert len(TrainBatches([batch], crops, folder, NO_AUGMENT, 1.3, 32)[0]) == 2
    config = replace(NO_AUGMENT, flip_prob=1, zoom_prob=1, mask_loss_weight=1.0)
    images, labels, masks = TrainBatches([batch], crops, folder, config, 1.3, 32)[0]
    assert masks.shape == (2, 1, 8, 8) and labels.tolist() == [0.0, 1.0]
    assert masks[0].max() == 0  # the real: nothing changed
    changed = ((images[1] - images[0]).abs().amax(0) > 0.1).float()  # where the augmented fake differs, as the model sees it
    expected = torch.nn.functional.adaptive_avg_pool2d(changed[None, None], 8)[0, 0]
    assert (masks[1, 0] - expected).abs().mean() < 0.1 and masks[1, 0].max() == 1 and masks[1, 0, 0].max() == 0
    mixed = TrainBatches([batch], crops, folder, replace(config, mixup_prob=1), 1.3, 32)[0][2]
    assert (mixed == UNKNOWN).all()  # mixed crops have no single change to point at
