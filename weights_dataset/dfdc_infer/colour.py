"""YUV -> RGB exactly as the CPU readers do it, for frames that NVDEC leaves in NV12 on the GPU.

Every model is trained on frames that FFmpeg's swscale converted (PyAV, decord and OpenCV all call
it), so the GPU reader must convert the same way: NVDEC's own RGB output picks BT.709 for an
untagged stream above 720x576, where swscale picks BT.601, a shift of about 6 levels.

``nv12_to_rgb`` reproduces swscale's unscaled YUV420 -> RGB24 path on x86 (the SIMD one every
Kaggle and cloud machine runs) step for step, in integers: each chroma sample is used for its 2x2
luma pixels, values are promoted to 3 fractional bits, multiplied by 16-bit coefficients keeping
the high half (a floor), summed and saturated to 0..255. The coefficients are FFmpeg's published
YUV -> RGB matrices in 16.16 fixed point, chosen by the stream's colour tags (``StreamColour``):
the matrix of its ``colorspace`` (BT.601 when untagged) and its range (limited unless tagged full).
The result equals PyAV's ``to_ndarray(format="rgb24")`` bit for bit on the test videos. Plain torch
ops, so it runs on the frames' device, GPU or CPU (where the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

MATRICES: dict[str, tuple[int, int, int, int]] = {
    "bt601": (104597, 132201, 25675, 53279),
    "bt709": (117489, 138438, 13975, 34925),
    "fcc": (104448, 132798, 24759, 53109),
    "smpte240m": (117579, 136230, 16907, 35559),
    "bt2020": (110013, 140363, 12277, 42626),
}
"""Per matrix, the limited-range factors (V->R, U->B, U->G, V->G) x 65536, as swscale uses them."""

_MATRIX_OF_COLORSPACE = {1: "bt709", 4: "fcc", 7: "smpte240m", 9: "bt2020", 10: "bt2020"}
"""FFmpeg's ``AVColorSpace`` numbers with their own matrix; every other value (2 = unspecified,
5 and 6 = the BT.601 variants) converts with BT.601, as swscale does."""

_FULL_RANGE = 2
"""FFmpeg's ``AVCOL_RANGE_JPEG``: 0..255 luma; anything else is limited (16..235)."""


@dataclass(frozen=True)
class StreamColour:
    """How a stream's YUV values map to RGB: the matrix name (``MATRICES``) and the range."""

    matrix: str = "bt601"
    full_range: bool = False

    @classmethod
    def of_tags(cls, colorspace: int, color_range: int) -> "StreamColour":
        """From FFmpeg's ``AVColorSpace`` and ``AVColorRange`` numbers (what PyAV reports)."""
        return cls(_MATRIX_OF_COLORSPACE.get(int(colorspace), "bt601"), int(color_range) == _FULL_RANGE)


def stream_colour(path: Path) -> StreamColour:
    """The colour tags of ``path``'s first video stream, read from its headers by PyAV (no decoding).

    Untagged (or unreadable by PyAV: the decoder then fails on it anyway) means BT.601, limited.
    """
    try:
        import av
    except ImportError:  # the dataset ships PyAV; without it, the untagged default is the best guess
        return StreamColour()
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return StreamColour()
            codec = container.streams.video[0].codec_context
            return StreamColour.of_tags(codec.colorspace, codec.color_range)
    except av.FFmpegError:
        return StreamColour()


def _high(values: torch.Tensor, coefficient: int) -> torch.Tensor:
    """The high 16 bits of a 16 x 16-bit product (what the SIMD multiply keeps): a floor division."""
    return (values * coefficient) >> 16


def _q16(value: int) -> int:
    """A 16.16 fixed-point factor rounded to the 16-bit coefficient the SIMD code multiplies by."""
    return (value * (1 << 13) + (1 << 15)) >> 16


def nv12_to_rgb(nv12: torch.Tensor, colour: StreamColour = StreamColour(), chunk: int = 8) -> torch.Tensor:
    """(N, H * 3 / 2, W) uint8 NV12 (luma rows, then interleaved U/V rows) -> (N, H, W, 3) uint8 RGB.

    Runs on ``nv12``'s device, ``chunk`` frames at a time so the int32 intermediates of a 1080p
    batch stay a few hundred MB.
    """
    if nv12.dim() != 3 or nv12.shape[1] % 3 or (nv12.shape[1] // 3) % 2 or nv12.shape[2] % 2:
        raise ValueError(f"expected (N, H*3/2, W) NV12 with even H and W, got {tuple(nv12.shape)}")
    height, width = nv12.shape[1] * 2 // 3, nv12.shape[2]
    v_r, u_b, u_g, v_g = MATRICES[colour.matrix]
    luma, offset = (1 << 16, 0) if colour.full_range else ((1 << 16) * 255 // 219, 16 << 16)
    if colour.full_range:  # the matrices are for limited range chroma: rescale them to 0..255
        v_r, u_b, u_g, v_g = (value * 224 // 255 for value in (v_r, u_b, u_g, v_g))
    y_k, y_offset = _q16(luma), (offset * 8 + (1 << 15)) >> 16
    v_rk, u_bk, u_gk, v_gk = _q16(v_r), _q16(u_b), _q16(-u_g), _q16(-v_g)
    rgb = torch.empty((nv12.shape[0], height, width, 3), dtype=torch.uint8, device=nv12.device)
    for start in range(0, nv12.shape[0], chunk):
        part = nv12[start : start + chunk].to(torch.int32)
        y = _high(part[:, :height] * 8 - y_offset, y_k)
        chroma = part[:, height:].reshape(-1, height // 2, width // 2, 2) * 8 - 1024  # (U, V) - 128, 3 bits up
        chroma = chroma.repeat_interleave(2, dim=1).repeat_interleave(2, dim=2)
        u, v = chroma[..., 0], chroma[..., 1]
        red = y + _high(v, v_rk)
        green = y + _high(u, u_gk) + _high(v, v_gk)
        blue = y + _high(u, u_bk)
        rgb[start : start + chunk] = torch.stack([red, green, blue], dim=-1).clamp_(0, 255).to(torch.uint8)
    return rgb
