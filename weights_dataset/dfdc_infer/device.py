"""The torch device: picked once from the config's ``device`` string; CUDA's own errors told from bad input."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` means CUDA when a GPU is visible, else CPU; anything else is passed to torch."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def is_cuda_error(error: BaseException) -> bool:
    """Whether ``error`` is CUDA's own (a failed kernel, a lost context), not bad input.

    torch raises ``torch.AcceleratorError`` (``RuntimeError`` before torch 2.8) saying ``CUDA
    error: ...``, the CUDA runtime bindings ``torch.cuda.CudaError``; PyNvVideoCodec raises a plain
    ``Exception`` saying ``CUDA error ...`` or ``CUDA driver API error ...``. Running out of memory
    (``CUDA out of memory``) is not one: the context survives it.
    """
    kinds = tuple(kind for kind in (getattr(torch.cuda, "CudaError", None), getattr(torch, "AcceleratorError", None)) if kind)
    message = str(error)
    return isinstance(error, kinds) or any(mark in message for mark in ("CUDA error", "CUDA driver API error", "CUDA_ERROR_"))
