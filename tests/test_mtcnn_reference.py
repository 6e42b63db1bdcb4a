"""Our MTCNN against facenet-pytorch 2.6.0's, the detector the DFDC 1st place used, run side by side.

The reference is the real thing, run at test time from its wheel (the ``facenet_reference`` fixture,
``dfdc_1st_reference.facenet_mtcnn``).
The photos are scikit-image's astronaut and the images inside the insightface 2.1 wheel (a group
photo, a face crop, and four face masks without a face), fetched the same way; nothing is
committed. Without pip access these tests skip, saying why.

Equal means: the same number of faces per image; every reference box matched by one of ours at
IoU >= 0.98, with a probability within 0.01 and landmarks within half a pixel. Both thresholds
sets the project uses are checked at min face 20: facenet-pytorch's defaults and the 1st place's.
"""

from __future__ import annotations

import importlib
import types
import zipfile
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage.data import astronaut

from dfdc_infer.config import preset_config
from dfdc_infer.cropping import select_faces
from dfdc_infer.face_detection import create_detector
from dfdc_infer.mtcnn import MTCNN, Faces, _nms_min
from dfdc_sample.generate import generate_dataset
from dfdc_1st_reference import cached_wheel

PHOTOS = "insightface==2.1"
MIN_FACE = 20
SETTINGS = {"facenet": (0.6, 0.7, 0.7), "dfdc-1st": (0.7, 0.8, 0.8)}
REFERENCE_COUNTS = {
    "facenet": {"astronaut": 1, "t1": 8, "Tom_Hanks_54745": 1},
    "dfdc-1st": {"astronaut": 1, "t1": 6, "Tom_Hanks_54745": 1},
}
"""Faces the reference finds in the photos (none in the masks): the comparison is never vacuous."""

Detect = Callable[[str, str], list[Faces]]
"""``(setting, image set name) -> Faces per image``"""


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    """The astronaut and every image in insightface 2.1's wheel, as RGB arrays by file stem."""
    images = {"astronaut": astronaut()}
    with zipfile.ZipFile(cached_wheel(PHOTOS)) as archive:
        for name in archive.namelist():
            if name.startswith("insightface/data/images/"):
                image = Image.open(BytesIO(archive.read(name))).convert("RGB")
                images[Path(name).stem] = np.asarray(image)
    return images


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> np.ndarray:
    """The first frame of six generated 1080p videos (real and self-blended fakes, one without a
    face, two with two faces), decoded as RGB."""
    root = generate_dataset(tmp_path_factory.mktemp("gen1080") / "data", videos=6, width=1920, height=1080, frames=1, seed=5,
                            identities=pinned_identities)
    frames = []
    for path in sorted((root / "test_videos").glob("*.mp4")):
        ok, frame = cv2.VideoCapture(str(path)).read()
        assert ok, path
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    return np.stack(frames)


def halve(frame: np.ndarray) -> np.ndarray:
    """What the 1st place's kernel fed MTCNN: ``img.resize([s // 2 for s in img.size])`` of a PIL image."""
    image = Image.fromarray(frame)
    return np.asarray(image.resize([s // 2 for s in image.size]))


@pytest.fixture(scope="session")
def inputs(photos: dict[str, np.ndarray], generated: np.ndarray) -> dict[str, np.ndarray]:
    """Image batches by name: each photo alone, and ``halved``: the generated frames halved."""
    return {**{name: photo[None] for name, photo in photos.items()}, "halved": np.stack([halve(f) for f in generated])}


@pytest.fixture(scope="session")
def reference_faces(facenet_reference: types.ModuleType, inputs: dict[str, np.ndarray]) -> Detect:
    """The reference's ``MTCNN.detect(images, landmarks=True)`` per setting on a named batch, as
    ``Faces`` per image (in its order: largest first); memoised, several tests compare with a run."""
    memo: dict[tuple[str, str], list[Faces]] = {}

    def detect(setting: str, name: str) -> list[Faces]:
        key = (setting, name)
        if key not in memo:
            detector = facenet_reference.MTCNN(min_face_size=MIN_FACE, thresholds=list(SETTINGS[setting]))
            boxes, probs, points = detector.detect(inputs[name], landmarks=True)
            memo[key] = [
                Faces(np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)) if box is None
                else Faces(np.column_stack([box, prob]).astype(np.float32), np.asarray(point, np.float32))
                for box, prob, point in zip(boxes, probs, points, strict=True)
            ]
        return memo[key]

    return detect


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def matches(ours: np.ndarray, theirs: np.ndarray) -> list[int]:
    """For each reference box, the index of our best-overlapping box (IoU >= 0.98, each used once)."""
    assert len(ours) == len(theirs), f"{len(ours)} faces, the reference finds {len(theirs)}"
    chosen = []
    for box in theirs:
        overlaps = [iou(box, mine) for mine in ours]
        best = int(np.argmax(overlaps))
        assert overlaps[best] >= 0.98, f"reference box {box} best matched at IoU {overlaps[best]:.3f} by {ours[best]}"
        chosen.append(best)
    assert len(set(chosen)) == len(chosen), "two reference boxes matched the same box"
    return chosen


def assert_same_faces(ours: Faces, theirs: Faces) -> None:
    chosen = matches(ours.boxes, theirs.boxes)
    np.testing.assert_allclose(ours.boxes[chosen, 4], theirs.boxes[:, 4], rtol=0, atol=0.01)
    np.testing.assert_allclose(ours.landmarks[chosen], theirs.landmarks, rtol=0, atol=0.5)


def ours(weights_dir: Path, setting: str, device: str = "cpu") -> MTCNN:
    return MTCNN(weights_dir, MIN_FACE, SETTINGS[setting], torch.device(device))


@pytest.mark.parametrize("setting", SETTINGS)
def test_photos_match_the_reference(weights_dir: Path, photos: dict[str, np.ndarray], reference_faces: Detect, setting: str) -> None:
    detector = ours(weights_dir, setting)
    for name, photo in photos.items():
        (theirs,) = reference_faces(setting, name)
        assert len(theirs.boxes) == REFERENCE_COUNTS[setting].get(name, 0), name
        (found,) = detector.detect_with_landmarks(photo[None])
        assert_same_faces(found, theirs)
        assert (np.diff(found.boxes[:, 4]) <= 0).all(), "ours come best first"


@pytest.mark.parametrize("setting", SETTINGS)
def test_halved_1080p_frames_match_the_reference(weights_dir: Path, inputs: dict[str, np.ndarray], reference_faces: Detect, setting: str) -> None:
    """One batch of six frames, as both detectors are used in the pipelines."""
    theirs = reference_faces(setting, "halved")
    assert sum(len(faces.boxes) for faces in theirs) >= 8  # 0 + 2 + 1 faces, and three fakes of them
    for found, expected in zip(ours(weights_dir, setting).detect_with_landmarks(inputs["halved"]), theirs, strict=True):
        assert_same_faces(found, expected)


def test_largest_first_is_the_references_order(weights_dir: Path, photos: dict[str, np.ndarray], reference_faces: Detect) -> None:
    """``MTCNN.detect`` orders faces largest first, which decides the faces the 1st place's
    127-crop cap keeps; ``select_faces(..., all_faces=True)`` on ours gives that order."""
    (theirs,) = reference_faces("facenet", "t1")
    (found,) = ours(weights_dir, "facenet").detect(photos["t1"][None])
    assert matches(select_faces(found, all_faces=True), theirs.boxes) == list(range(len(theirs.boxes)))


def test_final_suppression_breaks_ties_as_the_reference(facenet_reference: types.ModuleType) -> None:
    """ONet's float32 probabilities saturate, so two candidates of one face often score exactly the
    same and the tie decides the box (on a generated frame of tests/test_dfdc_1st_parity.py the two
    tied boxes overlap at IoU 0.95). The reference orders ties by numpy's default, unstable argsort,
    not by index: ours must keep the same boxes in the same order."""
    reference_nms = importlib.import_module(".utils.detect_face", facenet_reference.__package__).nms_numpy
    rng = np.random.default_rng(0)
    for count in (10, 40, 200):
        corners = rng.uniform(0, 200, (count, 2))
        sides = rng.uniform(10, 60, (count, 1))
        scored = np.column_stack([corners, corners + sides, rng.choice([0.9, 0.95, 0.99], count)]).astype(np.float32)
        np.testing.assert_array_equal(_nms_min(scored, 0.7), reference_nms(scored[:, :4], scored[:, 4], 0.7, "Min"))


def test_dfdc_1st_preset_detects_what_the_1st_place_kernel_did(
    weights_dir: Path, generated: np.ndarray, reference_faces: Detect
) -> None:
    """The preset on full-resolution frames (PIL halving inside, boxes scaled back by 2, not
    clipped) against the kernel's ``int(b * 2)`` of the reference's boxes: the same integers."""
    config = preset_config("dfdc-1st").updated({"device": "cpu"})
    found = create_detector(config, weights_dir).detect(generated)
    for boxes, expected in zip(found, reference_faces("dfdc-1st", "halved"), strict=True):
        chosen = matches(boxes, expected.boxes * [2, 2, 2, 2, 1])
        np.testing.assert_array_equal(boxes[chosen, :4].astype(int), (expected.boxes[:, :4] * 2).astype(int))


def test_score_boxes_confirms_faces_and_rejects_the_rest(weights_dir: Path, photos: dict[str, np.ndarray]) -> None:
    """ONet alone on given boxes: the detector's own confident faces score high again, with refined
    boxes close to the given ones; two patches of wall and a box outside the image do not; the
    order and the per-image counts are those given."""
    detector = ours(weights_dir, "facenet")
    group = photos["t1"]
    (faces,) = detector.detect(group[None])
    confident = faces[faces[:, 4] > 0.99, :4]
    assert len(confident) == 5
    elsewhere = np.array([[560, 20, 660, 120], [0, 0, 100, 100], [2000, 2000, 2100, 2100]], np.float32)
    rescored, nothing = detector.score_boxes(np.stack([group, group]), [np.concatenate([confident, elsewhere]), np.zeros((0, 4))])
    assert rescored.boxes.shape == (8, 5) and rescored.landmarks.shape == (8, 5, 2)
    assert nothing.boxes.shape == (0, 5) and nothing.landmarks.shape == (0, 5, 2)
    assert (rescored.boxes[:5, 4] > 0.99).all()
    assert all(iou(given, refined) > 0.8 for given, refined in zip(confident, rescored.boxes[:5], strict=True))
    assert (rescored.boxes[5:, 4] < 0.01).all()
    assert rescored.boxes[7, 4] == 0.0  # not a pixel of it inside the image


def test_landmarks_sit_on_the_face(weights_dir: Path) -> None:
    """Eyes above the nose above the mouth, left before right, all inside the box."""
    (faces,) = ours(weights_dir, "facenet").detect_with_landmarks(astronaut()[None])
    (x1, y1, x2, y2, _), points = faces.boxes[0], faces.landmarks[0]
    left_eye, right_eye, nose, left_mouth, right_mouth = points
    assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1])
    assert ((points >= [x1, y1]) & (points <= [x2, y2])).all()


def test_image_smaller_than_the_smallest_face(weights_dir: Path) -> None:
    """No pyramid level fits (the reference fails on this): no face, no error."""
    (faces,) = ours(weights_dir, "facenet").detect_with_landmarks(np.zeros((1, 16, 16, 3), np.uint8))
    assert faces.boxes.shape == (0, 5) and faces.landmarks.shape == (0, 5, 2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_the_reference(weights_dir: Path, inputs: dict[str, np.ndarray], reference_faces: Detect) -> None:
    """Ours on the GPU (frames already there, as the nvdec reader gives them) against the reference on the CPU."""
    detector = ours(weights_dir, "dfdc-1st", "cuda")
    for name in ("halved", "t1"):
        found = detector.detect_with_landmarks(torch.from_numpy(inputs[name]).cuda())
        for mine, theirs in zip(found, reference_faces("dfdc-1st", name), strict=True):
            assert_same_faces(mine, theirs)
