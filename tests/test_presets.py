"""Presets, the generic registry, and the 1st place's crop geometry and aggregation rule."""

from __future__ import annotations

import argparse
import subprocess
import sys

import cv2
import numpy as np
import pytest

from dfdc_infer.aggregation import AGGREGATIONS, video_probability
from dfdc_infer.config import PRESETS, InferenceConfig, add_config_arguments, config_from_args, preset_config
from dfdc_infer.cropping import CROP_GEOMETRIES, crop_face, crop_frames, select_faces, widened_box
from dfdc_infer.registry import Registry, UnknownName


def parse(*flags: str) -> InferenceConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    return config_from_args(parser.parse_args(list(flags)))


def test_registry_lookup_and_one_unknown_name_error() -> None:
    things: Registry[int] = Registry("thing", pseudo_names=("auto",))
    things.add("b", 2)
    things.register("a")(1)
    assert things.get("a") == 1 and things.names() == ["a", "b"] and "b" in things and list(things) == ["a", "b"]
    with pytest.raises(UnknownName, match=r"^unknown thing 'c'; known: auto, a, b$"):
        things.get("c")
    assert things.check("auto") == "auto"
    with pytest.raises(ValueError, match="already registered"):
        things.add("a", 3)


def test_every_registry_names_what_exists() -> None:
    with pytest.raises(UnknownName, match=r"unknown crop geometry 'round'; known: deepfake-faces, dfdc-1st, square"):
        CROP_GEOMETRIES.get("round")
    with pytest.raises(UnknownName, match=r"unknown aggregation rule 'median'; known: confident, mean"):
        AGGREGATIONS.get("median")
    with pytest.raises(UnknownName, match=r"unknown preset 'dfdc-2nd'; known: deepfake-faces, dfdc-1st, seed"):
        preset_config("dfdc-2nd")


def test_seed_preset_is_the_defaults_and_flags_override_a_preset() -> None:
    assert preset_config("seed") == InferenceConfig() == parse()
    first = parse("--preset", "dfdc-1st")
    assert (first.frames_per_video, first.frame_rounding, first.detector_thresholds) == (32, "floor", (0.7, 0.8, 0.8))
    assert (first.all_faces, first.crop_geometry, first.max_crops_per_video, first.aggregation) == (True, "dfdc-1st", 127, "confident")
    assert (first.clip_min, first.clip_max, first.detector_resize, first.clip_boxes) == (0.0, 1.0, "pil", False)
    overridden = parse("--preset", "dfdc-1st", "--frames-per-video", "16", "--clip-max", "0.99", "--reader", "opencv")
    assert (overridden.frames_per_video, overridden.clip_max, overridden.reader) == (16, 0.99, "opencv")
    assert overridden.aggregation == "confident"  # the rest of the preset stays
    assert all(PRESETS.get(name).summary for name in PRESETS)


def test_an_unknown_preset_on_the_command_line_is_one_line_with_exit_2(tmp_path) -> None:
    result = subprocess.run([sys.executable, "-m", "dfdc_infer", "predict", "--videos", str(tmp_path), "--sample-submission",
                             str(tmp_path / "s.csv"), "--checkpoint", str(tmp_path / "m.pt"), "--preset", "nope"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: unknown preset 'nope'; known: deepfake-faces, dfdc-1st, seed"


def reference_confident(pred: np.ndarray) -> float:
    """The 1st place's rule as its write-up states it, written out plainly."""
    count = len(pred)
    fakes = int(np.count_nonzero(pred > 0.8))
    if fakes > count // 2.5 and fakes > 11:
        return float(np.mean(pred[pred > 0.8]))
    if np.count_nonzero(pred < 0.2) > 0.9 * count:
        return float(np.mean(pred[pred < 0.2]))
    return float(np.mean(pred))


def test_confident_strategy_takes_the_confident_crops_else_the_mean() -> None:
    twelve_fakes = np.array([0.9] * 12 + [0.3] * 18)  # 12 > 11, but not > 30 // 2.5 = 12.0
    assert video_probability(twelve_fakes[None], 0.0, 1.0, "confident") == pytest.approx(twelve_fakes.mean())
    thirteen_fakes = np.array([0.9] * 13 + [0.3] * 17)
    assert video_probability(thirteen_fakes[None], 0.0, 1.0, "confident") == pytest.approx(0.9)
    few_fakes = np.array([0.95] * 11)  # 11 is not > 11
    assert video_probability(few_fakes[None], 0.0, 1.0, "confident") == pytest.approx(0.95)
    reals = np.array([0.1] * 19 + [0.7])  # 19 > 0.9 * 20
    assert video_probability(reals[None], 0.0, 1.0, "confident") == pytest.approx(0.1)
    rng = np.random.default_rng(0)
    for _ in range(200):
        pred = rng.beta(0.3, 0.3, size=rng.integers(1, 128))
        assert AGGREGATIONS.get("confident")(pred) == pytest.approx(reference_confident(pred), abs=1e-12)


def test_models_are_averaged_after_the_rule_and_clipping_comes_last() -> None:
    two_models = np.array([[0.9] * 13 + [0.3] * 17, [0.2] * 30])
    assert video_probability(two_models, 0.0, 1.0, "confident") == pytest.approx((0.9 + 0.2) / 2)
    assert video_probability(np.array([[0.999] * 20]), 0.0, 1.0, "confident") == pytest.approx(0.999)
    assert video_probability(np.array([[0.999] * 20]), rule="confident") == pytest.approx(0.99)


def reference_crop(frame: np.ndarray, half_box: np.ndarray, size: int) -> np.ndarray:
    """The 1st place's kernel crop as its write-up states it, written out plainly: a box found on
    the halved frame, doubled and truncated, widened by a third, resized isotropically, centred."""
    xmin, ymin, xmax, ymax = [int(value * 2) for value in half_box]
    pad_w, pad_h = (xmax - xmin) // 3, (ymax - ymin) // 3
    crop = frame[max(ymin - pad_h, 0) : ymax + pad_h, max(xmin - pad_w, 0) : xmax + pad_w]
    h, w = crop.shape[:2]
    if max(w, h) != size:
        scale = size / max(w, h)
        new = (size, int(h * scale)) if w > h else (int(w * scale), size)
        crop = cv2.resize(crop, new, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
    out = np.zeros((size, size, 3), np.uint8)
    top, left = (size - crop.shape[0]) // 2, (size - crop.shape[1]) // 2
    out[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    return out


@pytest.mark.parametrize("half_box", [
    [300.7, 100.2, 380.9, 210.6],   # tall face, shrunk
    [20.3, 30.1, 45.8, 60.2],       # small face, enlarged (INTER_CUBIC)
    [-6.4, 150.0, 60.2, 240.7],     # past the left edge (raw MTCNN box)
    [900.2, 480.5, 959.9, 539.8],   # at the bottom-right corner, cut by the frame
])
def test_dfdc_1st_geometry_equals_its_reference(half_box: list[float]) -> None:
    frame = np.random.default_rng(1).integers(0, 256, (1080, 1920, 3), dtype=np.uint8)
    full_box = np.array(half_box, dtype=np.float32) * 2
    ours = crop_face(frame, full_box, 380, geometry="dfdc-1st")
    assert ours.shape == (380, 380, 3)
    assert np.array_equal(ours, reference_crop(frame, np.array(half_box, dtype=np.float32), 380))


def test_widened_box_truncates_widens_by_a_third_and_cuts_at_the_frame() -> None:
    assert widened_box(np.array([100.9, 50.9, 160.2, 140.7]), 640, 360) == (80, 20, 180, 170)
    assert widened_box(np.array([-10.5, -4.0, 50.0, 40.0]), 640, 360) == (0, 0, 70, 54)
    assert widened_box(np.array([600.0, 300.0, 650.0, 380.0]), 640, 360) == (584, 274, 640, 360)


def test_every_face_largest_first_and_the_crop_cap_keeps_the_first_ones() -> None:
    detections = np.array([[0, 0, 10, 10, 0.99], [0, 0, 40, 40, 0.8], [0, 0, 20, 20, 0.9]], dtype=np.float32)
    assert select_faces(detections, all_faces=True)[:, 2].tolist() == [40, 20, 10]
    frames = np.zeros((3, 100, 100, 3), np.uint8)
    crops, owners = crop_frames(frames, [detections] * 3, 16, all_faces=True, geometry="dfdc-1st", max_crops=7)
    assert crops.shape == (7, 16, 16, 3) and owners.tolist() == [0, 0, 0, 1, 1, 1, 2]
