"""Crop geometry: square, enlarged 1.3x around the face, inside the frame, largest face first."""

from __future__ import annotations

import numpy as np
import pytest

from dfdc_infer.cropping import crop_face, crop_frames, select_faces, square_crop_box


def test_square_box_is_enlarged_and_centred() -> None:
    box = np.array([100, 100, 200, 180, 0.99])  # 100 wide, 80 high: the longer side rules
    left, top, right, bottom = square_crop_box(box, 1920, 1080, margin=1.3)
    assert right - left == bottom - top == 130
    assert (left + right) / 2 == pytest.approx(150, abs=0.5)
    assert (top + bottom) / 2 == pytest.approx(140, abs=0.5)


def test_box_near_an_edge_is_shifted_inside_not_cut() -> None:
    left, top, right, bottom = square_crop_box(np.array([0, 0, 100, 100]), 640, 360, margin=1.3)
    assert (left, top, right, bottom) == (0, 0, 130, 130)
    left, top, right, bottom = square_crop_box(np.array([580, 300, 640, 360]), 640, 360, margin=1.3)
    assert (right, bottom) == (640, 360) and right - left == bottom - top == 78


def test_box_larger_than_the_frame_shrinks_to_the_shorter_side() -> None:
    left, top, right, bottom = square_crop_box(np.array([10, 10, 350, 350]), 640, 360, margin=1.3)
    assert bottom - top == right - left == 360
    assert top == 0 and 0 <= left and right <= 640


def test_crop_face_resizes_to_the_model_size_and_keeps_content() -> None:
    frame = np.zeros((360, 640, 3), dtype=np.uint8)
    frame[100:200, 300:400] = (255, 0, 0)  # a red square "face"
    crop = crop_face(frame, np.array([300, 100, 400, 200]), size=64, margin=1.3)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.uint8
    # the face fills 1/1.3 of the crop, centred: the centre is red, the corners are black
    assert tuple(crop[32, 32]) == (255, 0, 0)
    assert crop[0, 0].sum() == 0 and crop[-1, -1].sum() == 0


def test_select_faces_takes_the_largest_or_all() -> None:
    detections = np.array([[0, 0, 10, 10, 0.99], [50, 50, 90, 90, 0.90], [5, 5, 25, 25, 0.95]], dtype=np.float32)
    assert select_faces(detections).tolist() == [[50, 50, 90, 90, pytest.approx(0.9)]]
    assert len(select_faces(detections, all_faces=True)) == 3
    assert select_faces(np.zeros((0, 5), dtype=np.float32)).shape == (0, 5)


def test_crop_frames_tracks_which_frame_each_crop_came_from() -> None:
    frames = np.zeros((3, 120, 160, 3), dtype=np.uint8)
    detections = [
        np.array([[10, 10, 50, 50, 0.9]], dtype=np.float32),
        np.zeros((0, 5), dtype=np.float32),
        np.array([[10, 10, 50, 50, 0.9], [60, 20, 120, 80, 0.8]], dtype=np.float32),
    ]
    crops, owners = crop_frames(frames, detections, size=32)
    assert crops.shape == (2, 32, 32, 3) and owners.tolist() == [0, 2]
    crops, owners = crop_frames(frames, detections, size=32, all_faces=True)
    assert owners.tolist() == [0, 2, 2]
    crops, owners = crop_frames(frames, [np.zeros((0, 5))] * 3, size=32)
    assert crops.shape == (0, 32, 32, 3) and owners.shape == (0,)
