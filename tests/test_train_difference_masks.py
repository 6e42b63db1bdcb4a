"""Difference masks and the cutout that blanks a fake's most-changed square."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dfdc_train.layout import DataError
from dfdc_train.difference_masks import NOISE_FLOOR, blank, difference_mask, load_mask, most_changed_box, save_mask


def textured(size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 150, size=(size, size, 3), dtype=np.uint8)


@pytest.mark.parametrize("method", ["absdiff", "ssim"])
def test_a_mask_is_zero_where_nothing_changed_and_high_where_something_did(method: str) -> None:
    original = textured()
    fake = original.copy()
    fake[20:40, 24:44] += 80  # a recoloured patch
    mask = difference_mask(original, fake, method, scale=1)
    assert mask.shape == (64, 64) and mask.dtype == np.uint8
    assert not difference_mask(original, original, method, scale=1).any()
    assert mask[26:34, 30:38].min() > 30  # inside the change
    assert not mask[:8].any() and not mask[:, 56:].any()  # far from it
    assert mask[mask > 0].min() >= NOISE_FLOOR
    stored = difference_mask(original, fake, method)  # as extraction stores it: a quarter of the side
    assert stored.shape == (16, 16) and stored[6:9, 7:10].min() > 30 and not stored[:2].any()


def test_absdiff_ignores_small_noise_that_a_blur_averages_away() -> None:
    original = np.full((256, 256, 3), 128, np.uint8)
    noise = np.random.default_rng(1).integers(-6, 7, size=original.shape)  # +-6 levels, like two encodes of one frame
    assert not difference_mask(original, (original + noise).astype(np.uint8), "absdiff").any()


def test_a_mask_needs_two_crops_of_one_shape_and_a_known_method() -> None:
    with pytest.raises(ValueError, match=r"two crops of one shape, got \(64, 64, 3\) and \(32, 32, 3\)"):
        difference_mask(textured(), textured(32))
    with pytest.raises(ValueError, match="unknown mask method 'sift'; known: absdiff, ssim"):
        difference_mask(textured(), textured(), "sift")


def test_masks_round_trip_through_png_and_a_missing_one_is_named(tmp_path: Path) -> None:
    mask = difference_mask(textured(), textured(seed=2))
    save_mask(tmp_path / "a" / "00010_0_mask.png", mask)
    np.testing.assert_array_equal(load_mask(tmp_path / "a" / "00010_0_mask.png"), mask)
    with pytest.raises(DataError, match=r"difference mask missing or unreadable: .*gone.png \(re-run extraction for its video\)"):
        load_mask(tmp_path / "gone.png")


def spots(*squares: tuple[int, int, int, int, int]) -> np.ndarray:
    """A 100x100 mask with (top, left, side, side, value) squares of change."""
    mask = np.zeros((100, 100), np.uint8)
    for top, left, height, width, value in squares:
        mask[top:top + height, left:left + width] = value
    return mask


def test_the_box_covers_the_most_changed_square_and_is_relative() -> None:
    mask = spots((60, 10, 20, 20, 200), (10, 70, 20, 20, 100))  # the strong change bottom left, a weaker one top right
    box = most_changed_box(mask, np.random.default_rng(0), side=(0.3, 0.3))
    assert box is not None
    left, top, right, bottom = box
    assert right - left == pytest.approx(0.3) and bottom - top == pytest.approx(0.3)
    assert left <= 0.1 and right >= 0.3 and top <= 0.6 and bottom >= 0.8  # the whole strong square inside
    small = np.kron(mask, np.ones((2, 2), np.uint8))  # the same mask at twice the size: the same relative box
    assert most_changed_box(small, np.random.default_rng(0), side=(0.3, 0.3)) == pytest.approx(box)


def test_no_box_without_change_or_when_it_would_hide_nearly_all_of_it() -> None:
    rng = np.random.default_rng(0)
    assert most_changed_box(np.zeros((50, 50), np.uint8), rng) is None  # a REAL crop, or nothing changed
    one_spot = spots((40, 40, 10, 10, 100))
    assert most_changed_box(one_spot, rng, side=(0.3, 0.3)) is None  # a fake with its whole manipulation hidden is no fake
    assert most_changed_box(one_spot, rng, side=(0.3, 0.3), min_left=0.0) is not None


def test_cutout_blanks_the_box_in_an_image_of_any_size_and_is_reproducible() -> None:
    mask = spots((0, 0, 30, 30, 200), (70, 70, 30, 30, 100))
    image = np.full((380, 380, 3), 200, np.uint8)
    first = blank(image, most_changed_box(mask, np.random.default_rng(4), side=(0.3, 0.3)))  # a 100 px mask, a 380 px crop
    assert (first[:114, :114] == 0).all() and (first[114:, :] == 200).all() and (first[:, 114:] == 200).all()
    np.testing.assert_array_equal(first, blank(image, most_changed_box(mask, np.random.default_rng(4), side=(0.3, 0.3))))
    assert (image == 200).all()  # the input is left alone
    assert most_changed_box(np.zeros((10, 10), np.uint8), np.random.default_rng(4)) is None  # nothing to blank


def test_one_box_blanks_a_real_and_its_fake_alike() -> None:
    real, fake = textured(128, 1), textured(128, 2)
    box = most_changed_box(spots((10, 50, 30, 30, 90), (70, 10, 30, 30, 90)), np.random.default_rng(3))
    assert box is not None
    left, top, right, bottom = (round(value * 128) for value in box)
    inside = np.zeros((128, 128), bool)
    inside[top:bottom, left:right] = True
    assert 30 < right - left == bottom - top < 70
    for crop in (real, fake):
        blanked = blank(crop, box)
        assert (blanked[inside] == 0).all() and (blanked[~inside] == crop[~inside]).all()
