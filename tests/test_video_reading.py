"""Video reading: sampled indices, backend agreement, rotation, and every kind of bad file."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from dfdc_infer.config import InferenceConfig
from dfdc_infer.video_reading import (READERS, CPU_READERS, FrameSampling, ReaderUnavailable, SampledFrames, VideoReadError,
                                      create_reader, read_video)
from dfdc_sample.generate import write_video


def numbered_frames(count: int, height: int = 96, width: int = 160) -> np.ndarray:
    """Flat frames whose grey level encodes the frame number (survives H.264 almost exactly)."""
    levels = (np.arange(count) * 8 + 16).clip(0, 255).astype(np.uint8)
    frames = np.repeat(levels[:, None, None, None], height * width * 3, axis=1).reshape(count, height, width, 3)
    frames[:, : height // 4, : width // 4] = 255  # a bright corner marks "up-left", to check rotation
    return frames


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    paths = {
        "plain": write_video(root / "plain.mp4", numbered_frames(25)),
        "single": write_video(root / "single.mp4", numbered_frames(1)),
        "rotated": write_video(root / "rotated.mp4", numbered_frames(25), rotation=90),
        "portrait": write_video(root / "portrait.mp4", numbered_frames(12, height=192, width=108)),
    }
    noisy = numbered_frames(60)
    noisy[:, 48:] = np.random.default_rng(0).integers(0, 256, size=noisy[:, 48:].shape, dtype=np.uint8)  # bulk per frame
    paths["long"] = write_video(root / "long.mp4", noisy)
    whole = paths["long"].read_bytes()
    paths["truncated"] = root / "truncated.mp4"
    paths["truncated"].write_bytes(whole[: len(whole) // 2])
    paths["corrupt_tail"] = root / "corrupt_tail.mp4"  # the index is intact, the last 40% of the bytes are garbage
    cut = len(whole) * 6 // 10
    paths["corrupt_tail"].write_bytes(whole[:cut] + np.random.default_rng(1).integers(0, 256, len(whole) - cut, dtype=np.uint8).tobytes())
    paths["raw_h264"] = root / "raw_h264.mp4"  # an elementary stream named .mp4: no container timestamps
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(paths["plain"]), "-c", "copy",
                    "-bsf:v", "h264_mp4toannexb", "-f", "h264", str(paths["raw_h264"])], check=True)
    paths["empty"] = root / "empty.mp4"
    paths["empty"].write_bytes(b"")
    paths["text"] = root / "text.mp4"
    paths["text"].write_text("this is not a video\n")
    return paths


def frame_number(frame: np.ndarray) -> int:
    """Inverse of ``numbered_frames`` (the grey level away from the bright corner)."""
    return int(round((float(np.median(frame)) - 16) / 8))


def test_sampling_every_nth_and_evenly_spaced() -> None:
    assert FrameSampling(10).indices(300).tolist() == list(range(0, 300, 10))
    assert FrameSampling(10).indices(25).tolist() == [0, 10, 20]
    assert FrameSampling(10, frames_per_video=4).indices(25).tolist() == [0, 8, 16, 24]
    assert FrameSampling(10, frames_per_video=32).indices(3).tolist() == [0, 1, 2]
    assert FrameSampling(10).indices(1).tolist() == [0]
    assert FrameSampling(10).indices(0).tolist() == []


def test_floor_rounding_is_numpy_linspace_truncated_to_int() -> None:
    """The 1st place's kernel: ``np.linspace(0, count - 1, 32, dtype=int)`` truncates, ours rounds by default."""
    for count in (32, 33, 64, 100, 299, 300, 301):
        expected = np.linspace(0, count - 1, 32).astype(int).tolist()
        assert FrameSampling(frames_per_video=32, rounding="floor").indices(count).tolist() == expected
    assert FrameSampling(frames_per_video=32, rounding="floor").indices(300)[:3].tolist() == [0, 9, 19]
    assert FrameSampling(frames_per_video=32).indices(300)[:3].tolist() == [0, 10, 19]


@pytest.mark.parametrize("backend", CPU_READERS)
def test_backend_returns_the_sampled_frames_with_their_indices(videos: dict[str, Path], backend: str) -> None:
    sample = create_reader(backend).read(videos["plain"], FrameSampling(10))
    assert sample.indices.tolist() == [0, 10, 20]
    assert sample.frames.shape == (3, 96, 160, 3) and sample.frames.dtype == np.uint8
    assert [frame_number(frame) for frame in sample.frames] == [0, 10, 20]
    assert sample.total_frames == 25
    assert sample.backend == backend

    spaced = create_reader(backend).read(videos["plain"], FrameSampling(10, 4))
    assert spaced.indices.tolist() == [0, 8, 16, 24]
    assert [frame_number(frame) for frame in spaced.frames] == [0, 8, 16, 24]


def test_backends_agree_pixel_for_pixel(videos: dict[str, Path]) -> None:
    decord_frames = create_reader("decord").read(videos["plain"], FrameSampling(5)).frames
    for other in ("opencv", "pyav"):
        frames = create_reader(other).read(videos["plain"], FrameSampling(5)).frames
        assert decord_frames.shape == frames.shape
        assert np.abs(decord_frames.astype(int) - frames).mean() < 1.0


def test_pyav_skipping_non_reference_frames_still_gives_every_sampled_frame_exactly(videos: dict[str, Path]) -> None:
    """The noisy video has B-frames; each sampling skips a different set of them."""
    for sampling in (FrameSampling(1), FrameSampling(7), FrameSampling(frames_per_video=9, rounding="floor")):
        mine = create_reader("pyav").read(videos["long"], sampling)
        theirs = create_reader("decord").read(videos["long"], sampling)
        assert np.array_equal(mine.indices, theirs.indices) and mine.total_frames == theirs.total_frames == 60
        assert np.abs(mine.frames.astype(int) - theirs.frames).mean() < 1.0


@pytest.mark.parametrize("backend", CPU_READERS)
def test_rotation_metadata_gives_upright_portrait_frames(videos: dict[str, Path], backend: str) -> None:
    sample = create_reader(backend).read(videos["rotated"], FrameSampling(10))
    assert sample.frames.shape[1:] == (160, 96, 3), "a 90-degree display rotation must swap width and height"
    assert [frame_number(frame) for frame in sample.frames] == [0, 10, 20]


def test_backends_agree_on_the_rotated_video(videos: dict[str, Path]) -> None:
    decord_frames = create_reader("decord").read(videos["rotated"], FrameSampling(10)).frames
    opencv_frames = create_reader("opencv").read(videos["rotated"], FrameSampling(10)).frames
    assert np.abs(decord_frames.astype(int) - opencv_frames).mean() < 1.0


def test_portrait_and_single_frame_videos(videos: dict[str, Path]) -> None:
    portrait = read_video(videos["portrait"], InferenceConfig())
    assert portrait.frames.shape == (2, 192, 108, 3)
    single = read_video(videos["single"], InferenceConfig())
    assert single.indices.tolist() == [0] and single.frames.shape == (1, 96, 160, 3)


def test_truncated_video_falls_back_to_opencv_and_logs_it(videos: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dfdc_infer.video_reading"):
        sample = read_video(videos["truncated"], InferenceConfig(reader="decord"))
    assert sample.backend == "opencv"
    assert 0 < len(sample.indices) < 6, "only the frames before the cut can be decoded"
    assert sample.indices.tolist() == [10 * i for i in range(len(sample.indices))]
    assert any("truncated.mp4" in record.message and "retrying with opencv" in record.message for record in caplog.records)


def test_a_video_whose_later_frames_fail_to_decode_gives_the_frames_before(videos: dict[str, Path]) -> None:
    sample = read_video(videos["corrupt_tail"], InferenceConfig())
    assert sample.backend == "pyav"
    assert sample.indices.tolist() == [10 * i for i in range(len(sample.indices))] and 0 < len(sample.indices) < 6
    intact = create_reader("pyav").read(videos["long"], FrameSampling(10))
    assert np.array_equal(sample.frames[1:], intact.frames[1 : len(sample.indices)]), "the frames before the damage are exact"


def test_a_file_pyav_cannot_number_goes_to_the_next_reader(videos: dict[str, Path], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="dfdc_infer.video_reading"):
        sample = read_video(videos["raw_h264"], InferenceConfig())
    assert sample.backend == "opencv" and sample.indices.tolist() == [0, 10, 20]
    assert "raw_h264.mp4: pyav: packets without distinct timestamps, cannot number the frames; retrying with decord" in caplog.text


def test_a_file_pyav_cannot_open_goes_to_the_next_reader(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Refusing:
        def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
            raise VideoReadError("pyav: Invalid data found when processing input")

    monkeypatch.setitem(READERS, "pyav", Refusing)
    with caplog.at_level(logging.WARNING, logger="dfdc_infer.video_reading"):
        sample = read_video(videos["plain"], InferenceConfig(reader="pyav"))
    assert sample.backend == "decord" and [frame_number(frame) for frame in sample.frames] == [0, 10, 20]
    assert "plain.mp4: pyav: Invalid data found when processing input; retrying with decord" in caplog.text


def test_a_missing_decord_is_an_unavailable_reader_and_the_next_one_reads(
    videos: dict[str, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "decord", None)  # import decord now raises ImportError, as on a machine without it
    with pytest.raises(ReaderUnavailable, match=r"^decord is not installed \(import of decord halted"):
        create_reader("decord")
    with caplog.at_level(logging.WARNING, logger="dfdc_infer.video_reading"):
        sample = read_video(videos["plain"], InferenceConfig(reader="decord"))
    assert sample.backend == "opencv" and [frame_number(frame) for frame in sample.frames] == [0, 10, 20]
    assert "decord off (decord is not installed (import of decord halted; None in sys.modules)); decoding with opencv" in caplog.text


@pytest.mark.parametrize("name", ["empty", "text"])
def test_unreadable_files_raise_a_clear_error_naming_each_backend(videos: dict[str, Path], name: str) -> None:
    with pytest.raises(VideoReadError) as raised:
        read_video(videos[name], InferenceConfig())
    message = str(raised.value)
    assert message.startswith("pyav: Invalid data found when processing input; decord:")
    assert "opencv: cannot open the file" in message


def test_unknown_reader_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown video reader 'nvdecx'; known: auto, decord, nvdec, opencv, pyav"):
        create_reader("nvdecx")
