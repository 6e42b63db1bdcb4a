"""Generate DFDC-format sample data: H.264 mp4s, metadata.json, sample_submission.csv, faces.json.

The real DFDC data cannot be shipped or downloaded here, yet the README's dry run, the tests,
the benchmarks and training all need videos shaped like it. Each REAL video is a real photographed
person (an *identity*, see :mod:`dfdc_sample.faces`; a per-video variant of the head) drifting over
a synthetic background; each FAKE is its REAL video, frame for frame, with the face manipulated by
one of the fake methods (:mod:`dfdc_fakes`: self-blend, face swap with another identity, part warps,
re-encoding, boundary artefacts). Identities and methods are dealt out evenly, so every identity
appears as REAL and as FAKE alike and a model can only tell them apart by the manipulation.
``faces.json`` holds the true face boxes so detector recall can be measured.

Layouts (``generate_dataset(layout=...)``)::

    test:  ROOT/test_videos/*.mp4, ROOT/metadata.json, ROOT/faces.json, ROOT/sample_submission.csv
    train: ROOT/dfdc_train_part_{i}/{*.mp4, metadata.json, faces.json}   for i in 0..chunks-1

``metadata.json`` follows DFDC: ``{"name.mp4": {"label": "REAL"|"FAKE", "split": ..., "original":
"real.mp4" | null}}``; like DFDC's own train metadata, REAL entries carry ``"original": null``. Each
entry also names its ``identity`` (null without a face), its ``method`` and, for a face swap, the
``donor`` identity whose face was put in (null otherwise).
``faces.json`` maps each video to one list per frame of ``[x1, y1, x2, y2]`` integer face boxes
(detector-style: brows to chin, not the hair), an empty list where there is no face.

With ``frame_code`` every frame carries its own number, drawn in its top-left corner
(``draw_frame_code``; ``read_frame_code`` reads it back), so a test can tell which frame a reader
really returned by looking at it, not by trusting the index it reports.

Everything is a function of ``seed`` alone: same seed, same names, metadata and decoded frames.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import string
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Sequence

import cv2
import imageio_ffmpeg
import numpy as np

from dfdc_fakes import DONOR_METHODS, METHODS, make_fake
from dfdc_infer.config import add_cache_dir_argument
from dfdc_infer.console import fail, setup_logging
from dfdc_sample.faces import Box, FaceSprite, heads_by_identity, load_face_sprites, paste_sprite, vary_sprite

LAYOUTS = ("test", "train")
ROTATIONS = (0, 90, 180, 270)
FRAME_CODE_BITS = 12
"""A frame code counts to 4095 frames (over two minutes at 30 fps; DFDC's videos have 300)."""
FRAME_CODE_CELL = 16
"""Side of one cell of the code in pixels: a whole H.264 macroblock, so compression keeps it black or white."""
FRAME_CODE_CELLS = FRAME_CODE_BITS + 3
"""A white and a black start cell, the bits, a parity cell: a bright or dark corner is no code."""


def draw_frame_code(frame: np.ndarray, number: int) -> None:
    """Draw ``number`` into the top-left corner of an upright (H, W, 3) uint8 frame, in place.

    A row of ``FRAME_CODE_CELLS`` cells, white for a 1: 1 and 0 to start, ``FRAME_CODE_BITS`` bits
    most significant first, and a parity bit making the count of ones in the bits even.
    """
    if not 0 <= number < 2**FRAME_CODE_BITS:
        raise ValueError(f"a frame code holds 0..{2**FRAME_CODE_BITS - 1}, got {number}")
    cell = FRAME_CODE_CELL
    frame[:cell, : cell * FRAME_CODE_CELLS] = 0
    bits = [(number >> shift) & 1 for shift in range(FRAME_CODE_BITS - 1, -1, -1)]
    bits = [1, 0, *bits, sum(bits) % 2]
    for position, bit in enumerate(bits):
        if bit:
            frame[:cell, position * cell : (position + 1) * cell] = 255


def read_frame_code(frames: np.ndarray) -> np.ndarray:
    """(N,) int64 numbers drawn by ``draw_frame_code`` into (N, H, W, 3) upright frames; -1 where
    there is no code (no start cells or a parity mismatch: a frame turned the wrong way)."""
    cell = FRAME_CODE_CELL
    frames = np.asarray(frames)
    if frames.shape[1] < cell or frames.shape[2] < cell * FRAME_CODE_CELLS:
        return np.full(len(frames), -1, dtype=np.int64)
    quarter = cell // 4  # the inner half of each cell: its edges bleed a little after compression
    centres = np.stack([frames[:, quarter : cell - quarter, position * cell + quarter : (position + 1) * cell - quarter]
                        .mean(axis=(1, 2, 3)) for position in range(FRAME_CODE_CELLS)], axis=1)
    cells = (centres > 127).astype(np.int64)
    bits = cells[:, 2:-1]
    valid = (cells[:, 0] == 1) & (cells[:, 1] == 0) & (bits.sum(axis=1) % 2 == cells[:, -1])
    return np.where(valid, bits @ (1 << np.arange(FRAME_CODE_BITS - 1, -1, -1)), -1)


class VideoWriter:
    """Streams RGB frames into an ffmpeg/libx264 process, so no video is ever held in memory.

    A 1080p, 300-frame video is 1.9 GB of raw frames; piping keeps memory at one frame and lets
    ffmpeg encode while the next frame renders. Frames are converted to yuv420p (BT.601 limited
    range, as ffmpeg's default) here with OpenCV: ffmpeg's own single-threaded conversion was
    the bottleneck at 1080p, and the pipe carries half the bytes. Use as a context manager;
    ``close`` raises ``RuntimeError`` with ffmpeg's own message if encoding failed.

    ``rotation`` is the clockwise angle a player must turn the stored frames by (the meaning of
    the legacy mp4 ``rotate`` tag and of OpenCV's ``CAP_PROP_ORIENTATION_META``). It is written
    as a display matrix with ``-display_rotation`` (ffmpeg >= 6; counter-clockwise, hence the
    minus sign); ``-noautorotate`` stops ffmpeg from applying it to the pixels instead.
    """

    def __init__(self, path: Path, width: int, height: int, fps: int = 30, rotation: int = 0) -> None:
        if width % 2 or height % 2 or width <= 0 or height <= 0:
            raise ValueError(f"H.264 yuv420p needs positive even width and height, got {width}x{height}")
        if rotation not in ROTATIONS:
            raise ValueError(f"rotation must be one of {ROTATIONS}, got {rotation}")
        self.path, self.shape = Path(path), (height, width, 3)
        rotate = ["-noautorotate", "-display_rotation", str(-rotation)] if rotation else []
        command = [
            imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", f"{width}x{height}", "-framerate", str(fps),
            *rotate, "-i", "pipe:0",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
            # bitexact and no copied metadata: same frames give byte-identical files.
            "-movflags", "+faststart", "-fflags", "+bitexact", "-flags:v", "+bitexact",
            "-map_metadata", "-1", str(self.path),
        ]
        self._log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe would deadlock ffmpeg
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=self._log)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if frame.shape != self.shape or frame.dtype != np.uint8:
            raise ValueError(f"expected a {self.shape} uint8 frame, got {frame.shape} {frame.dtype}")
        try:
            self._process.stdin.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
        except BrokenPipeError:
            self.close()  # raises with ffmpeg's message
            raise

    def close(self) -> None:
        """Finish the file; raise ``RuntimeError`` if ffmpeg failed."""
        with contextlib.suppress(BrokenPipeError):
            self._process.stdin.close()
        code = self._process.wait()
        self._log.seek(0)
        message = self._log.read().decode(errors="replace").strip()
        self._log.close()
        if code != 0:
            raise RuntimeError(f"ffmpeg failed (exit {code}) writing {self.path}: {message}")

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is None:
            self.close()
        else:  # don't mask the original error with ffmpeg's reaction to a truncated stream
            self._process.kill()
            self._process.wait()
            self._log.close()


def write_video(path: Path, frames: np.ndarray, fps: int = 30, rotation: int = 0) -> Path:
    """Write (T, H, W, 3) uint8 RGB ``frames`` as an H.264 mp4, e.g. odd test inputs.

    ``rotation`` (0, 90, 180, 270) is stored as display metadata, clockwise, as OpenCV reports it.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[0] < 1 or frames.shape[3] != 3:
        raise ValueError(f"frames must be (T>=1, H, W, 3), got {frames.shape}")
    with VideoWriter(Path(path), frames.shape[2], frames.shape[1], fps, rotation) as writer:
        for frame in frames:
            writer.write(frame)
    return Path(path)


def _random_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A static scene: a colour gradient, blurred colour noise or soft stripes, plus sensor grain."""
    kind = rng.integers(3)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    angle = rng.uniform(0, np.pi)
    along = xx * np.cos(angle) + yy * np.sin(angle)
    low, high = rng.uniform(0, 255, size=(2, 3)).astype(np.float32)
    if kind == 0:
        mix = (along - along.min()) / max(float(np.ptp(along)), 1e-6)
        image = low + (high - low) * mix[..., None]
    elif kind == 1:
        grid = rng.uniform(0, 255, size=(int(rng.integers(3, 8)), int(rng.integers(4, 10)), 3))
        image = cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    else:
        period = rng.uniform(0.04, 0.2)
        mix = 0.5 + 0.5 * np.sin(2 * np.pi * along / period)
        image = low + (high - low) * mix[..., None]
    image = image + rng.normal(0, 3, size=image.shape).astype(np.float32)
    return np.clip(image, 0, 255).astype(np.uint8)


def _wander(rng: np.random.Generator, times: np.ndarray, low: float, high: float) -> np.ndarray:
    """A smooth random path inside [low, high]: two slow sinusoids around a random resting point.

    Frequencies are in Hz (not per video) so motion speed is the same for short and long videos.
    """
    amplitude = rng.uniform(0.04, 0.15)
    centre = rng.uniform(amplitude, 1 - amplitude)
    f1, f2 = rng.uniform(0.05, 0.25), rng.uniform(0.2, 0.5)
    p1, p2 = rng.uniform(0, 2 * np.pi, size=2)
    path = 0.7 * np.sin(2 * np.pi * f1 * times + p1) + 0.3 * np.sin(2 * np.pi * f2 * times + p2)
    return low + (high - low) * (centre + amplitude * path)


@dataclass(frozen=True)
class _Track:
    """One face's sprite and its per-frame centre and scale."""

    sprite: FaceSprite
    xs: np.ndarray
    ys: np.ndarray
    scales: np.ndarray


def _track(rng: np.random.Generator, base: FaceSprite, times: np.ndarray, face_height: float,
           region: tuple[float, float, float, float]) -> _Track:
    """A face of ``face_height`` px moving within ``region`` (x1, y1, x2, y2), breathing +-6% in scale."""
    sprite = vary_sprite(base, rng, face_height)
    scales = 1 + 0.06 * np.sin(2 * np.pi * rng.uniform(0.05, 0.3) * times + rng.uniform(0, 2 * np.pi))
    half_h, half_w = (np.array(sprite.alpha.shape) * 1.06 / 2).tolist()
    x1, y1, x2, y2 = region

    def axis(low: float, high: float, half: float) -> np.ndarray:
        # A sprite wider than the region is centred in it and clipped by the frame when pasted.
        if high - low < 2 * half:
            return np.full_like(times, (low + high) / 2)
        return _wander(rng, times, low + half, high - half)

    return _Track(sprite, axis(x1, x2, half_w), axis(y1, y2, half_h), scales)


@dataclass(frozen=True)
class _Fake:
    """One FAKE video of a group: its name, seed, method and (face swap) donor identity."""

    name: str
    seed: int
    method: str
    donor: str | None


@dataclass(frozen=True)
class _Group:
    """A REAL video and the FAKEs made from it: rendered together from one scene."""

    real: str
    fakes: tuple[_Fake, ...]
    faces: int
    scene_seed: int
    identity: str | None


def _plan(videos: int, rng: np.random.Generator, identities: list[str], methods: list[str]) -> list[_Group]:
    """Decide names, labels, face counts, identities and methods: half REAL (rounded up), the rest FAKE.

    With four or more videos the first REAL has no face and the second has two, so edge cases
    are always present; fakes are spread round-robin over the REAL videos that have a face.
    Identities go round the REAL videos with a face and methods round the fakes, each in a shuffled
    order, so their counts differ by at most one; a face swap's donor is another identity.
    """
    if videos < 1:
        raise ValueError(f"need at least one video, got {videos}")
    names: list[str] = []
    while len(names) < videos:
        name = "".join(rng.choice(list(string.ascii_lowercase), size=10)) + ".mp4"
        if name not in names:
            names.append(name)
    n_real = videos - videos // 2
    faces = [0, 2] + [1] * (n_real - 2) if videos >= 4 else [1] * n_real
    donors = [i for i in range(n_real) if faces[i]]
    fakes: list[list[int]] = [[] for _ in range(n_real)]
    for k in range(n_real, videos):
        fakes[donors[(k - n_real) % len(donors)]].append(k)
    seeds = rng.integers(2**63, size=videos)
    who = [identities[j] for j in rng.permutation(len(identities))]
    identity = {i: who[n % len(who)] for n, i in enumerate(donors)}
    how = [methods[j] for j in rng.permutation(len(methods))]
    method = {k: how[n % len(how)] for n, k in enumerate(range(n_real, videos))}
    donor_draws = rng.integers(2**31, size=videos)

    def donor(k: int, i: int) -> str | None:
        if method[k] not in DONOR_METHODS:
            return None
        others = [name for name in identities if name != identity[i]] or identities  # one identity: a variant of itself
        return others[int(donor_draws[k]) % len(others)]

    return [_Group(names[i], tuple(_Fake(names[k], int(seeds[k]), method[k], donor(k, i)) for k in fakes[i]), faces[i],
                   int(seeds[i]), identity.get(i)) for i in range(n_real)]


def _pick_head(heads: tuple[FaceSprite, ...], seed: int | list[int]) -> FaceSprite:
    """One of a person's heads, drawn from its own stream (``seed``): a one-head person's videos draw nothing else."""
    return heads[int(np.random.default_rng(seed).integers(len(heads)))] if len(heads) > 1 else heads[0]


def _render_group(group: _Group, folder: Path, width: int, height: int, frames: int, fps: int,
                  heads: dict[str, tuple[FaceSprite, ...]], frame_code: bool = False) -> list[list[Box]]:
    """Write the group's REAL and FAKE mp4s into ``folder``; return the face boxes per frame.

    Each fake draws its manipulation from a fresh generator with its own seed on every frame, so
    the manipulation is fixed relative to the moving face instead of flickering. A face swap's
    donor is a variant of the donor's head drawn once per fake, at the video's face size. A person
    with several heads (photos) shows one of them, drawn per video.
    """
    base = _pick_head(heads[group.identity] if group.identity else next(iter(heads.values())), [group.scene_seed, 2])
    rng = np.random.default_rng(group.scene_seed)
    background = _random_background(rng, width, height)
    times = np.arange(frames) / fps
    side = min(width, height)  # "frame height" for landscape, and portrait still fits
    if group.faces == 2:  # two sizes, side by side along the longer axis so they never overlap
        sizes = rng.permutation([rng.uniform(0.15, 0.2), rng.uniform(0.22, 0.28)]) * side
        if width >= height:
            regions = [(0, 0, width / 2, height), (width / 2, 0, width, height)]
        else:
            regions = [(0, 0, width, height / 2), (0, height / 2, width, height)]
    else:
        sizes = [rng.uniform(0.15, 0.35) * side] * group.faces
        regions = [(0, 0, width, height)] * group.faces
    tracks = [_track(rng, base, times, size, region) for size, region in zip(sizes, regions, strict=True)]
    donors = {}
    for fake in group.fakes:
        if fake.donor is not None:
            donor = _pick_head(heads[fake.donor], [fake.seed, 2])
            face = vary_sprite(donor, np.random.default_rng([fake.seed, 1]), tracks[0].sprite.face_height)
            donors[fake.name] = (face.rgb, face.face_box)

    boxes: list[list[Box]] = []
    with contextlib.ExitStack() as stack:
        real = stack.enter_context(VideoWriter(folder / group.real, width, height, fps))
        writers = [stack.enter_context(VideoWriter(folder / fake.name, width, height, fps)) for fake in group.fakes]
        for t in range(frames):
            frame = background.copy()
            boxes.append([paste_sprite(frame, tr.sprite, tr.xs[t], tr.ys[t], tr.scales[t]) for tr in tracks])
            if frame_code:
                draw_frame_code(frame, t)
            real.write(frame)
            for writer, fake in zip(writers, group.fakes, strict=True):
                fake_rng = np.random.default_rng(fake.seed)
                image = frame
                for box in boxes[-1]:
                    if box[2] - box[0] >= 2 and box[3] - box[1] >= 2:  # a face (almost) out of the frame stays as it is
                        image = make_fake(fake.method, image, box, fake_rng, donors.get(fake.name))
                writer.write(image)
    return boxes


def _write_part(groups: list[_Group], video_dir: Path, meta_dir: Path, split: str, width: int,
                height: int, frames: int, fps: int, heads: dict[str, tuple[FaceSprite, ...]], frame_code: bool = False) -> None:
    """Render ``groups`` into ``video_dir``; write metadata.json and faces.json into ``meta_dir``."""
    video_dir.mkdir(parents=True, exist_ok=True)
    metadata: dict[str, dict[str, str | None]] = {}
    faces: dict[str, list[list[list[int]]]] = {}
    for group in groups:
        boxes = [[[round(v) for v in box] for box in frame] for frame in
                 _render_group(group, video_dir, width, height, frames, fps, heads, frame_code)]
        metadata[group.real] = {"label": "REAL", "split": split, "original": None, "identity": group.identity,
                                "method": None, "donor": None}
        faces[group.real] = boxes
        for fake in group.fakes:
            metadata[fake.name] = {"label": "FAKE", "split": split, "original": group.real, "identity": group.identity,
                                   "method": fake.method, "donor": fake.donor}
            faces[fake.name] = boxes
    (meta_dir / "metadata.json").write_text(json.dumps(metadata, sort_keys=True))
    (meta_dir / "faces.json").write_text(json.dumps(faces, sort_keys=True))


def generate_dataset(root: Path, *, videos: int = 8, width: int = 640, height: int = 360,
                     frames: int = 60, fps: int = 30, seed: int = 0, layout: str = "test",
                     chunks: int = 1, identities: Sequence[str] | None = None, methods: Sequence[str] | None = None,
                     frame_code: bool = False, cache_dir: Path | None = None) -> Path:
    """Write a DFDC-format sample dataset under ``root`` (layouts: see the module doc); return ``root``.

    Refuses a ``root`` that already holds sample data of either layout, so runs with different
    seeds or layouts never mix. In the train layout each REAL video and its fakes go to chunk
    ``i % chunks``. ``identities`` and ``methods`` restrict the faces and the fake methods used
    (default: every identity the photo sources give here, every registered method). ``frame_code``
    draws each frame's number into it (``draw_frame_code``). The face photos and the detector finding
    their faces are fetched once into ``cache_dir`` (None: ``default_cache_dir()``).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if frames < 1 or fps < 1:
        raise ValueError(f"frames and fps must be >= 1, got {frames}, {fps}")
    if width % 2 or height % 2 or width < 64 or height < 64:
        raise ValueError(f"size must be even and at least 64x64, got {width}x{height}")
    if frame_code and (width < FRAME_CODE_CELL * FRAME_CODE_CELLS or frames > 2**FRAME_CODE_BITS):
        raise ValueError(f"a frame code needs a width of {FRAME_CODE_CELL * FRAME_CODE_CELLS} px or more and at most "
                         f"{2**FRAME_CODE_BITS} frames, got {width} px and {frames}")
    methods = sorted(METHODS.check(name) for name in (METHODS.names() if methods is None else methods))
    if not methods:
        raise ValueError("need at least one fake method")
    root = Path(root)
    existing = [root / "metadata.json", root / "test_videos", *root.glob("dfdc_train_part_*")]
    clash = next((path for path in existing if path.exists()), None)
    if clash is not None:  # before the face photos are loaded (a download and MTCNN on a cold cache)
        raise FileExistsError(f"{clash} exists: {root} already holds sample data; remove it or choose another root")
    heads = heads_by_identity(load_face_sprites(None, cache_dir))
    unknown = sorted(set(identities or ()) - set(heads))
    if unknown:
        raise ValueError(f"unknown identities {', '.join(unknown)}; available here: {', '.join(heads)}")
    chosen = sorted(identities) if identities else sorted(heads)
    if not chosen:
        raise ValueError("need at least one identity")
    groups = _plan(videos, np.random.default_rng(seed), chosen, methods)
    if layout == "test":
        parts = [(groups, root / "test_videos", root)]
    else:
        if not 1 <= chunks <= len(groups):
            raise ValueError(f"chunks must be in 1..{len(groups)} (the number of REAL videos), got {chunks}")
        parts = [(groups[c::chunks], root / f"dfdc_train_part_{c}", root / f"dfdc_train_part_{c}")
                 for c in range(chunks)]
    for part_groups, video_dir, meta_dir in parts:
        _write_part(part_groups, video_dir, meta_dir, layout, width, height, frames, fps, heads, frame_code)
    if layout == "test":
        rows = "".join(f"{path.name},0.5\n" for path in sorted((root / "test_videos").glob("*.mp4")))
        (root / "sample_submission.csv").write_text("filename,label\n" + rows)
    return root


def summarize(root: Path) -> dict[str, int]:
    """Count what a generated dataset holds, from its metadata.json and faces.json files."""
    counts = dict.fromkeys(["videos", "real", "fake", "no_face", "two_faces", "identities", "methods"], 0)
    identities, methods = set(), set()
    for meta_path in sorted(Path(root).glob("**/metadata.json")):
        metadata = json.loads(meta_path.read_text())
        faces = json.loads((meta_path.parent / "faces.json").read_text())
        for name, entry in metadata.items():
            most = max(len(frame) for frame in faces[name])
            counts["videos"] += 1
            counts["real" if entry["label"] == "REAL" else "fake"] += 1
            counts["no_face"] += most == 0
            counts["two_faces"] += most == 2
            identities.add(entry.get("identity"))
            methods.add(entry.get("method"))
    counts["identities"], counts["methods"] = len(identities - {None}), len(methods - {None})
    return counts


def _size(text: str) -> tuple[int, int]:
    """Parse ``WxH`` (argparse type)."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 640x360, got {text!r}") from None
    return width, height


def _names(text: str) -> list[str]:
    """Parse ``a,b,c`` (argparse type)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m dfdc_sample OUT_DIR [options]`` (also the ``dfdc-sample`` script)."""
    parser = argparse.ArgumentParser(prog="dfdc-sample", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--videos", type=int, default=8, help="number of videos (default 8)")
    parser.add_argument("--size", type=_size, default=(640, 360), help="WxH (default 640x360)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (default 60)")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--layout", choices=LAYOUTS, default="test")
    parser.add_argument("--chunks", type=int, default=1, help="train layout: number of dfdc_train_part_* folders")
    parser.add_argument("--identities", type=_names, default=None, metavar="A,B",
                        help="only these identities (default: all the photo sources give here)")
    parser.add_argument("--methods", type=_names, default=None, metavar="A,B",
                        help=f"only these fake methods (default: all of {', '.join(METHODS.names())})")
    parser.add_argument("--frame-code", action="store_true", help="draw each frame's number into its top-left corner")
    add_cache_dir_argument(parser, "the face photos in photos/ and the MTCNN weights finding their faces in mtcnn/")
    args = parser.parse_args(argv)
    setup_logging(logging.WARNING)
    start = time.perf_counter()
    try:
        generate_dataset(args.out_dir, videos=args.videos, width=args.size[0], height=args.size[1],
                         frames=args.frames, fps=args.fps, seed=args.seed, layout=args.layout,
                         chunks=args.chunks, identities=args.identities, methods=args.methods, frame_code=args.frame_code,
                         cache_dir=args.cache_dir)
    except (ValueError, FileExistsError) as error:
        return fail(error)
    c = summarize(args.out_dir)
    print(f"wrote {c['videos']} videos to {args.out_dir} ({c['real']} real, {c['fake']} fake, "
          f"{c['no_face']} without a face, {c['two_faces']} with two; {c['identities']} identities, "
          f"{c['methods']} fake methods) in {time.perf_counter() - start:.1f} s")
    return 0
