"""Video reading: decode only the sampled frames of a video, as uint8 RGB, with their indices.

Backends sit behind one small protocol and are chosen by name (``READERS``), like timm's
``create_model``:

- ``nvdec``: the GPU's hardware decoder through PyNvVideoCodec (a wheel the dataset ships), on
  the run's ``--device``; decoding and the YUV->RGB conversion (``colour``: the CPU readers' own
  matrix) run on the GPU and frames stay there as a CUDA tensor, so detection resizes and crops
  them on the GPU too.
- ``pyav``: FFmpeg through PyAV (a wheel the dataset ships), frame-threaded, and it never decodes
  a non-reference frame that no sampled index needs (about half of an H.264 video's frames): the
  fastest CPU reader at 640x360 and at 1080p in the benchmark, hence the CPU default.
- ``decord``: CPU, ``get_batch`` of the sampled indices.
- ``opencv``: grab every frame, retrieve the sampled ones (the competition baseline), and the last
  resort when another backend cannot read a file (e.g. a truncated mp4 whose tail is missing).

``auto`` (the default) means the first backend of ``nvdec -> pyav -> decord`` that can run here
(``nvdec`` needs CUDA, a CUDA ``--device`` and PyNvVideoCodec, ``pyav`` the ``av`` package); a
run chooses once and logs the choice and the reason (``run_state``). A backend that fails on one
file hands it to the next one in ``nvdec -> pyav -> decord -> opencv``; after a CUDA error in
``nvdec`` the run stays on the CPU.

Every backend returns upright frames (portrait phone videos): decord and OpenCV's FFmpeg backend
apply the display matrix themselves, tests check they agree, ``pyav`` rotates by the frame's
display matrix and ``nvdec`` by the angle OpenCV reads from the container.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol, Union

import cv2
import numpy as np
import torch

from .colour import nv12_to_rgb, stream_colour
from .config import InferenceConfig
from .device import is_cuda_error, resolve_device
from .registry import Registry
from .resampling import area_resize
from .streams import HandOff, on_stream, timing_event

if TYPE_CHECKING:
    import av

log = logging.getLogger(__name__)


Frames = Union[np.ndarray, torch.Tensor]
"""(N, H, W, 3) uint8 RGB: a numpy array from CPU readers, a CUDA tensor from ``nvdec``."""

CPU_READERS = ("pyav", "decord", "opencv")
"""The per-file fallback order after the chosen backend (OpenCV last: it reads truncated files)."""

AUTO_READERS = ("nvdec", "pyav", "decord")
"""What ``auto`` tries, fastest first (the benchmark's order on GPU and on CPU)."""


class VideoReadError(Exception):
    """A video could not be decoded at all; the message says why (shown in the run's log)."""


class ReaderUnavailable(Exception):
    """A backend cannot run on this machine at all (no GPU, library missing); says why."""


class GpuDecodeLost(VideoReadError):
    """A CUDA error inside the GPU decoder: the process's CUDA context may be unusable from now on,
    so the rest of the run must decode on the CPU (``SampledFrames.gpu_lost``)."""


@dataclass(frozen=True)
class SampledFrames:
    """The decoded sample of one video."""

    frames: Frames
    """(N, H, W, 3) uint8 RGB, upright; on the GPU for ``nvdec``."""
    indices: np.ndarray
    """(N,) int64 frame numbers of ``frames`` in the video."""
    total_frames: int
    """Frames the backend found in the video (the container's count for decord)."""
    backend: str
    """Name of the backend that actually decoded them (after any fallback)."""
    ready: HandOff | None = None
    """For frames on the GPU: the decode stream's hand-off, to ``take`` before another stream reads them."""
    gpu_lost: str = ""
    """Set when the GPU decoder hit a CUDA error on this video (a CPU reader then decoded it): why."""


@dataclass(frozen=True)
class FrameSampling:
    """Which frames of a video to decode: every ``frame_step``-th from 0, or ``frames_per_video``
    evenly spaced from the first to the last, their positions rounded (``round``) or truncated
    (``floor``, as ``np.linspace(..., dtype=int)`` does in the 1st place's kernel)."""

    frame_step: int = 10
    frames_per_video: int | None = None
    rounding: str = "round"

    @classmethod
    def of(cls, config: InferenceConfig) -> "FrameSampling":
        return cls(config.frame_step, config.frames_per_video, config.frame_rounding)

    def indices(self, total_frames: int) -> np.ndarray:
        """Sorted, distinct frame numbers to decode; asking for more frames than the video has
        gives each frame once."""
        if total_frames <= 0:
            return np.zeros(0, dtype=np.int64)
        if self.frames_per_video is None:
            return np.arange(0, total_frames, self.frame_step, dtype=np.int64)
        positions = np.linspace(0, total_frames - 1, min(self.frames_per_video, total_frames))
        positions = np.floor(positions) if self.rounding == "floor" else positions.round()
        return np.unique(positions.astype(np.int64))


class FrameReader(Protocol):
    """A decode backend: returns the sampled frames of one file or raises ``VideoReadError``."""

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames: ...


READERS: Registry[Callable[..., FrameReader]] = Registry("video reader", pseudo_names=("auto",))
"""Decode backends by name: ``@READERS.register("name")`` on a class built with no arguments, or,
for one with ``decodes_on_gpu = True``, with the ``torch.device`` it decodes on."""


def create_reader(name: str, device: str = "auto") -> FrameReader:
    """Instantiate a backend by name; an unknown name lists the known ones. A GPU backend decodes
    on ``device`` (the config's: ``cuda:1`` is the second GPU, ``cpu`` rules it out).

    Raises ``ReaderUnavailable`` when the backend cannot run here (see ``choose_reader``).
    """
    factory = READERS.get(name)
    if not getattr(factory, "decodes_on_gpu", False):
        return factory()
    where = resolve_device(device) if device != "auto" else torch.device("cuda")
    if where.type != "cuda":
        raise ReaderUnavailable(f"the run's device is {where}")
    return factory(where)


def choose_reader(name: str, device: str = "auto") -> str:
    """The backend that will actually decode on a run on ``device``: for ``auto`` the first of
    ``AUTO_READERS`` that can run here; a named backend that cannot run here falls back to the
    next in ``reader_chain``.

    Decided (and logged) on every call, so a run asks once, at its start: the reader is part of
    its state (``run_state``), not a process-wide memory that tests would have to clear.
    """
    candidates = AUTO_READERS if name == "auto" else reader_chain(READERS.check(name))
    skipped = []
    for candidate in candidates:
        reason = _unavailable(candidate, device)
        if reason is None:
            break
        skipped.append(f"{'GPU decode' if candidate == 'nvdec' else candidate} off ({reason})")
    else:
        candidate = "opencv"  # needs nothing beyond OpenCV itself
    if skipped:
        where = "" if candidate == "nvdec" else " on the CPU"
        (log.info if name == "auto" else log.warning)("%s; decoding with %s%s", "; ".join(skipped), candidate, where)
    return candidate


def _unavailable(name: str, device: str = "auto") -> str | None:
    """Why backend ``name`` cannot run on this machine for a run on ``device``, or None."""
    try:
        create_reader(name, device)
    except ReaderUnavailable as error:
        return str(error)
    return None


def frames_to_numpy(frames: Frames) -> np.ndarray:
    """Host copy of ``frames`` for code that needs numpy (OpenCV); a no-op for numpy input."""
    return frames.cpu().numpy() if isinstance(frames, torch.Tensor) else frames


def resize_frames(frames: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """(N, H, W, 3) uint8 frames on any device -> (N, size[0], size[1], 3) uint8, on that device.

    The torch twin of ``cv2.resize`` for frames that live on the GPU: ``mode`` is ``"area"``
    (INTER_AREA, for shrinking: ``resampling.area_resize``, not torch's pooling) or
    ``"bilinear"`` (INTER_LINEAR, half-pixel centres).
    """
    if mode == "area":
        return area_resize(frames, size)
    options = {"align_corners": False} if mode == "bilinear" else {}
    resized = torch.nn.functional.interpolate(frames.permute(0, 3, 1, 2).float(), size=size, mode=mode, **options)
    return resized.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


def upright(frames: Frames, rotation: int) -> Frames:
    """Apply a container's display rotation (degrees clockwise, as OpenCV reports it) to frames."""
    turns = {0: 0, 90: -1, 180: 2, 270: 1}[rotation % 360]  # rot90 turns counter-clockwise
    if turns == 0:
        return frames
    if isinstance(frames, torch.Tensor):
        return torch.rot90(frames, turns, dims=(1, 2)).contiguous()
    return np.ascontiguousarray(np.rot90(frames, turns, axes=(1, 2)))


@READERS.register("nvdec")
class NvdecReader:
    """NVIDIA's hardware decoder (NVDEC) through PyNvVideoCodec, frames left on the GPU.

    PyNvVideoCodec ships its own demuxer and needs only the NVIDIA driver, so its wheel works with
    whatever torch the Kaggle image has. It hands over NV12 (``OutputColorType.NATIVE``) through
    DLPack; ``colour.nv12_to_rgb`` converts it with the stream's own matrix, as the CPU readers do
    (NVDEC's own RGB uses BT.709 for an untagged HD stream, FFmpeg BT.601), which also copies the
    frames out of the decoder's buffers before the next file reuses them.

    Each decode thread keeps its decoder and its CUDA stream (``streams``) and points the decoder at
    the next file (``reconfigure_decoder``): creating an NVDEC session costs far more than decoding
    32 frames of a 1080p video, and ``decode_workers`` threads are as many parallel NVDEC sessions
    (an H100 has 7 decoder engines). Conversion and rotation run on the thread's stream, which
    then records the frames' ``HandOff``. A CUDA error raises ``GpuDecodeLost``.
    """

    decodes_on_gpu = True
    _local = threading.local()
    """This thread's ``(device, SimpleDecoder, stream)`` (``state``), kept across files."""

    def __init__(self, device: torch.device = torch.device("cuda")) -> None:
        if not torch.cuda.is_available():
            raise ReaderUnavailable("no CUDA device")
        try:
            import PyNvVideoCodec
        except ImportError as error:
            raise ReaderUnavailable(f"PyNvVideoCodec is not installed ({error})") from error
        except Exception as error:  # the package raises RuntimeError when the driver lacks NVDEC/NVENC
            raise ReaderUnavailable(f"PyNvVideoCodec cannot load: {_first_line(error)}") from error
        self._nvc = PyNvVideoCodec
        self._device = device if device.index is not None else torch.device("cuda", torch.cuda.current_device())

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        try:
            colour, rotation = stream_colour(path), _display_rotation(path)
            decoder, stream = self._decoder(path)
            total = len(decoder)
            indices = sampling.indices(total)
            if len(indices) == 0:
                raise VideoReadError("the video has no frames")
            with on_stream(stream):
                started = stream.record_event(timing_event())
                decoded = decoder.get_batch_frames_by_index(indices.tolist())
                if len(decoded) != len(indices):
                    raise VideoReadError(f"decoded {len(decoded)} of {len(indices)} sampled frames")
                nv12 = torch.stack([torch.from_dlpack(frame) for frame in decoded])  # (N, H * 3 / 2, W)
                frames = upright(nv12_to_rgb(nv12, colour), rotation)
                ready = HandOff.record(stream, [frames], started)
            stream.synchronize()  # the decoder may overwrite its buffers as soon as it is asked again
        except VideoReadError as error:
            raise VideoReadError(f"nvdec: {error}") from error
        except Exception as error:  # PyNvVideoCodec raises plain Exception/RuntimeError on bad input
            self._local.state = None  # its state after a failure is unknown: the next file gets a new one
            if is_cuda_error(error):
                raise GpuDecodeLost(f"nvdec: {_first_line(error)}") from error
            raise VideoReadError(f"nvdec: {_first_line(error)}") from error
        return SampledFrames(frames=frames, indices=indices, total_frames=total, backend="nvdec", ready=ready)

    def _decoder(self, path: Path):  # -> (PyNvVideoCodec.SimpleDecoder, torch.cuda.Stream)
        """This thread's decoder, pointed at ``path``, and its stream (made on the thread's first
        file, and again for another device)."""
        state = getattr(self._local, "state", None)
        if state is None or state[0] != self._device:
            decoder = self._nvc.SimpleDecoder(str(path), gpu_id=self._device.index, use_device_memory=True,
                                              output_color_type=self._nvc.OutputColorType.NATIVE)
            self._local.state = (self._device, decoder, torch.cuda.Stream(self._device))
        else:
            state[1].reconfigure_decoder(str(path))
        return self._local.state[1:]


def _display_rotation(path: Path) -> int:
    """Clockwise display rotation in degrees from the container's metadata (0 when there is none)."""
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) if capture.isOpened() else 0
    finally:
        capture.release()


@READERS.register("pyav")
class PyAVReader:
    """FFmpeg's H.264 decoder through PyAV, doing only the work the sampled frames need.

    - Frame threading (``thread_type="AUTO"``): several frames decode at once on every core.
    - A frame that nothing references (``skip_frame="NONREF"``, most B-frames: about half of the
      generated and of typical DFDC videos) is not decoded at all unless it is sampled; a floor
      that decodes every frame cannot do this. The setting is switched per packet, so every
      sampled frame and every frame it depends on is still decoded exactly.
    - Only the sampled frames are converted to RGB, and decoding stops after the last of them.

    Packets are demuxed first (cheap, a few MB) so each frame's index is its rank by presentation
    time, whatever order the decoder returns frames in. A file whose later frames fail to decode
    (truncated, corrupt) gives the sampled frames before the failure, as the OpenCV reader does.
    """

    def __init__(self) -> None:
        try:
            import av
        except ImportError as error:
            raise ReaderUnavailable(f"PyAV is not installed ({error})") from error
        self._av = av

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        try:
            with self._av.open(str(path)) as container:
                if not container.streams.video:
                    raise VideoReadError("pyav: the file has no video stream")
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                packets = self._packets(container, stream)
                total = stream.frames or len(packets)
                frames, indices, rotation = self._decode(stream, packets, sampling.indices(total))
        except self._av.FFmpegError as error:
            raise VideoReadError(f"pyav: {error.strerror or _first_line(error)}") from error
        if not frames:
            raise VideoReadError("pyav: no decodable frames")
        return SampledFrames(frames=upright(np.stack(frames), rotation), indices=np.asarray(indices, dtype=np.int64),
                             total_frames=total, backend="pyav")

    def _packets(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> list[av.Packet]:
        """The stream's packets in decode order, up to the first one the demuxer cannot read."""
        packets = []
        try:
            for packet in container.demux(stream):
                if packet.size:  # the last one is an empty flush marker
                    packets.append(packet)
        except self._av.FFmpegError as error:
            if not packets:
                raise
            log.debug("%s: demuxing stopped after %d packets (%s)", container.name, len(packets), error.strerror)
        if any(packet.pts is None for packet in packets) or len({packet.pts for packet in packets}) != len(packets):
            raise VideoReadError("pyav: packets without distinct timestamps, cannot number the frames")
        return packets

    def _decode(self, stream: av.video.stream.VideoStream, packets: list[av.Packet],
                sampled: np.ndarray) -> tuple[list[np.ndarray], list[int], int]:
        """(the ``sampled`` frames in RGB, their indices, clockwise display rotation), frames in index order."""
        by_time = sorted(packet.pts for packet in packets)
        index_of = {pts: index for index, pts in enumerate(by_time)}
        wanted = set(sampled.tolist())
        codec = stream.codec_context
        found: dict[int, np.ndarray] = {}
        rotation = 0
        try:
            for packet in [*packets, None]:  # None flushes the frames still inside the decoder
                if packet is not None:
                    codec.skip_frame = "DEFAULT" if index_of[packet.pts] in wanted else "NONREF"
                for frame in codec.decode(packet):
                    index = index_of.get(frame.pts)
                    if index in wanted and index not in found:
                        found[index] = frame.to_ndarray(format="rgb24")
                        rotation = -frame.rotation % 360  # PyAV gives it counter-clockwise
                if len(found) == len(wanted):
                    break
        except self._av.FFmpegError as error:  # a corrupt tail: keep what decoded before it
            if not found:
                raise
            log.debug("decoding stopped after %d sampled frames (%s)", len(found), error.strerror)
        indices = sorted(found)
        return [found[index] for index in indices], indices, rotation


@READERS.register("decord")
class DecordReader:
    """decord's ``get_batch`` decodes only what the sampled indices need (CPU context)."""

    def __init__(self) -> None:
        try:
            import decord  # imported here so the other readers work where decord is not installed
        except ImportError as error:
            raise ReaderUnavailable(f"decord is not installed ({error})") from error
        decord.logging.set_level(decord.logging.QUIET)
        self._decord = decord

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        try:
            video = self._decord.VideoReader(str(path), ctx=self._decord.cpu(0))
            total = len(video)
            indices = sampling.indices(total)
            if len(indices) == 0:
                raise VideoReadError("the video has no frames")
            frames = video.get_batch(indices.tolist()).asnumpy()
        except (RuntimeError, self._decord.DECORDError) as error:
            raise VideoReadError(f"decord: {_first_line(error)}") from error
        return SampledFrames(frames=frames, indices=indices, total_frames=total, backend="decord")


def _first_line(error: Exception) -> str:
    """decord's message without its ``[hh:mm:ss] /source/file.cc:61:`` prefix, one line, bounded."""
    return re.sub(r"^(\[[\d:]+\] \S+:\d+: )+", "", str(error).strip().splitlines()[0])[:200]


@READERS.register("opencv")
class OpenCVReader:
    """Grab every frame, retrieve (decode to BGR, convert to RGB) only the sampled ones.

    Decodes as far as the file allows, so a truncated video still yields its first frames.
    """

    def read(self, path: Path, sampling: FrameSampling) -> SampledFrames:
        capture = cv2.VideoCapture(str(path))
        try:
            if not capture.isOpened():
                raise VideoReadError("opencv: cannot open the file (not a readable video container)")
            capture.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
            if sampling.frames_per_video is None:  # every Nth frame needs no frame count: trust the stream
                keep: Callable[[int], bool] = lambda index: index % sampling.frame_step == 0
                last = None
            else:  # the container's count, as the 1st place's reader (CAP_PROP_FRAME_COUNT)
                declared = max(int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), 0)
                wanted = set(sampling.indices(declared).tolist())
                keep, last = wanted.__contains__, max(wanted, default=-1)
            frames: list[np.ndarray] = []
            indices: list[int] = []
            index = 0
            while (last is None or index <= last) and capture.grab():  # nothing is needed after the last wanted frame
                if keep(index):
                    ok, bgr = capture.retrieve()
                    if ok:
                        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                        indices.append(index)
                index += 1
            total = declared if last is not None and index > last else index
        finally:
            capture.release()
        if not frames:
            raise VideoReadError("opencv: no decodable frames")
        return SampledFrames(
            frames=np.stack(frames),
            indices=np.asarray(indices, dtype=np.int64),
            total_frames=total,
            backend="opencv",
        )


def read_video(path: Path, config: InferenceConfig) -> SampledFrames:
    """One video's sampled frames as ``config`` asks, the reader chosen for this call alone
    (``choose_reader``): for a single read; a run chooses once and calls ``read_frames``."""
    return read_frames(path, FrameSampling.of(config), choose_reader(config.reader, config.device), config.device)


def read_frames(path: Path, sampling: FrameSampling, reader: str, device: str = "auto") -> SampledFrames:
    """Decode the ``sampling`` frames with ``reader`` (a backend ``choose_reader`` chose: it can
    run here); if that fails, retry with the CPU readers after it in ``CPU_READERS``
    (``reader_chain``). A GPU reader decodes on ``device``.

    Raises ``VideoReadError`` only when every backend failed; the message carries each reason.
    Frames decoded after a ``GpuDecodeLost`` carry its reason (``gpu_lost``) for the caller.
    """
    names = reader_chain(reader)
    reasons: list[str] = []
    gpu_lost = ""
    for position, name in enumerate(names):
        try:
            frames = create_reader(name, device).read(Path(path), sampling)
        except (VideoReadError, ReaderUnavailable) as error:
            reasons.append(str(error))
            gpu_lost = str(error) if isinstance(error, GpuDecodeLost) else gpu_lost
            if position + 1 < len(names):
                log.warning("%s: %s; retrying with %s", Path(path).name, error, names[position + 1])
            continue
        return replace(frames, gpu_lost=gpu_lost) if gpu_lost else frames
    raise VideoReadError("; ".join(reasons))


def gpu_reader_mismatch(path: Path, config: InferenceConfig, limit: float = 1.0) -> str | None:
    """Why ``nvdec`` cannot be trusted on this machine, judged on one real video, or None.

    Decodes ``path`` with ``nvdec`` and with ``decord`` and compares the frames: a GPU colour
    conversion gone wrong (swapped channels, wrong range) or a missed rotation would otherwise
    spoil every prediction of the run silently. H.264 decoding is exact and ``nvdec`` converts to
    RGB as the CPU readers do (``colour``), so the frames should be equal; ``limit`` is the largest
    mean difference accepted (a wrong matrix is about 6 levels off, a wrong range more).
    Raises ``VideoReadError`` when either backend cannot read ``path`` (try another file).
    """
    gpu = create_reader("nvdec", config.device).read(path, FrameSampling.of(config))
    cpu = create_reader("decord").read(path, FrameSampling.of(config))
    if tuple(gpu.frames.shape) != cpu.frames.shape or not np.array_equal(gpu.indices, cpu.indices):
        return f"{path.name}: nvdec gave frames {tuple(gpu.frames.shape)}, decord {cpu.frames.shape}"
    difference = float(np.abs(frames_to_numpy(gpu.frames).astype(np.int16) - cpu.frames).mean())
    log.info("nvdec check on %s: mean difference from decord %.2f levels (limit %.1f)", path.name, difference, limit)
    if difference > limit:
        return f"{path.name}: nvdec frames differ from decord's by {difference:.1f} levels on average"
    return None


def reader_chain(first: str) -> list[str]:
    """``first``, then the CPU readers that come after it in ``CPU_READERS``."""
    later = CPU_READERS[CPU_READERS.index(first) + 1 :] if first in CPU_READERS else CPU_READERS
    return [first, *later]
