"""Models: our checkpoint format, loading an ensemble of timm EfficientNets, and its forward pass.

A checkpoint is a ``torch.save`` dict that carries everything needed to rebuild the network
offline, with ``timm.create_model(arch, pretrained=False, num_classes=1)`` and ``load_state_dict``:

    {"format": "dfdc-checkpoint/1", "arch": "tf_efficientnet_b0", "input_size": 224,
     "mean": [r, g, b], "std": [r, g, b], "state_dict": {...}, "meta": {...}}

``meta`` is free-form (training metrics, config), except ``meta["temperature"]``: the scalar a
trained model's logit is divided by before the sigmoid (fitted on validation data by training's
calibration; 1 when absent). The single output is a logit for FAKE.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import timm
import torch
import torch.nn.functional as F

CHECKPOINT_FORMAT = "dfdc-checkpoint/1"
REQUIRED_KEYS = ("arch", "input_size", "mean", "std", "state_dict")


class CheckpointError(ValueError):
    """A checkpoint file that cannot rebuild its model; the message names the file and the fault."""


@dataclass(frozen=True)
class ModelSpec:
    """What is needed, besides the weights, to rebuild a model and feed it."""

    arch: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    meta: dict[str, Any] = field(default_factory=dict)


def create_network(arch: str) -> torch.nn.Module:
    """The bare timm network with one output logit; never downloads (``pretrained=False``)."""
    return timm.create_model(arch, pretrained=False, num_classes=1)


def save_checkpoint(path: Path, model: torch.nn.Module, spec: ModelSpec, dtype: torch.dtype | None = None) -> Path:
    """Write ``model`` in our format; ``dtype`` (e.g. fp16) converts floating tensors to save space."""
    state = {
        name: (tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor).detach().cpu()
        for name, tensor in model.state_dict().items()
    }
    payload = {
        "format": CHECKPOINT_FORMAT,
        "arch": spec.arch,
        "input_size": spec.input_size,
        "mean": list(spec.mean),
        "std": list(spec.std),
        "state_dict": state,
        "meta": spec.meta,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def init_checkpoint(path: Path, arch: str = "tf_efficientnet_b0", input_size: int | None = None, seed: int = 0) -> Path:
    """A freshly initialised (untrained) checkpoint, so the pipeline runs before any training.

    Its predictions are real forward passes but mean nothing: about 0.5 for every video.
    Normalisation and input size come from timm's default config for the architecture.
    """
    torch.manual_seed(seed)
    model = create_network(arch)
    config = model.pretrained_cfg
    spec = ModelSpec(
        arch=arch,
        input_size=input_size or int(config["input_size"][-1]),
        mean=tuple(float(v) for v in config["mean"]),
        std=tuple(float(v) for v in config["std"]),
        meta={"trained": False, "seed": seed},
    )
    return save_checkpoint(path, model, spec)


def read_checkpoint(path: Path) -> tuple[ModelSpec, dict[str, torch.Tensor]]:
    """Open and validate a checkpoint file without building the network."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({type(error).__name__})") from error
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: expected a dict checkpoint, found {type(payload).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in payload]
    if missing:
        raise CheckpointError(
            f"{path}: missing {', '.join(missing)}; a dfdc checkpoint needs {', '.join(REQUIRED_KEYS)} "
            "(write one with `python -m dfdc_infer init-checkpoint` or the training code)"
        )
    spec = ModelSpec(
        arch=str(payload["arch"]),
        input_size=int(payload["input_size"]),
        mean=tuple(float(v) for v in payload["mean"]),
        std=tuple(float(v) for v in payload["std"]),
        meta=dict(payload.get("meta") or {}),
    )
    return spec, payload["state_dict"]


def checkpoint_presets(paths: Sequence[Path]) -> list[str | None]:
    """The inference preset each checkpoint was trained for (its meta's ``preset``: a model trained on deepfake-faces
    crops names ``deepfake-faces``), None where it names none."""
    return [read_checkpoint(path)[0].meta.get("preset") for path in paths]


def load_model(path: Path) -> tuple[torch.nn.Module, ModelSpec]:
    """Rebuild the network of a checkpoint on the CPU, in eval mode, with its weights (fp32)."""
    spec, state_dict = read_checkpoint(path)
    try:
        model = create_network(spec.arch)
    except RuntimeError as error:  # timm: "Unknown model (...)"
        raise CheckpointError(f"{path}: unknown timm architecture {spec.arch!r}") from error
    load_exactly(model, state_dict, f"{path}: weights do not fit {spec.arch}")
    return model.float().eval(), spec


def load_exactly(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], failure: str) -> None:
    """``model.load_state_dict`` that accepts only the exact key set and shapes; otherwise one
    ``CheckpointError`` line, ``failure`` followed by what is missing, extra or resized."""
    expected = model.state_dict()
    missing = [name for name in expected if name not in state_dict]
    unexpected = [name for name in state_dict if name not in expected]
    resized = [name for name in expected if name in state_dict and state_dict[name].shape != expected[name].shape]
    if missing or unexpected or resized:
        raise CheckpointError(
            f"{failure}: {len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
            f"{len(resized)} of another shape (e.g. {resized[:2]})"
        )
    model.load_state_dict(state_dict)


class Ensemble:
    """Several checkpoints scored on the same crops; ``predict`` returns P(fake) per model and crop.

    With ``flip``, each crop is also scored mirrored left-right and the two probabilities are averaged
    (test-time augmentation: a face and its mirror image are equally real or fake, and the two views'
    errors partly cancel), at twice the classification work.
    """

    def __init__(self, models: Sequence[tuple[torch.nn.Module, ModelSpec]], device: torch.device, fp16: bool = True,
                 flip: bool = False) -> None:
        if not models:
            raise ValueError("the ensemble needs at least one checkpoint")
        self.device = device
        self.flip = flip
        self.half = fp16 and device.type == "cuda"
        memory_format = torch.channels_last if device.type == "cuda" else torch.contiguous_format
        self.models = [model.to(device, memory_format=memory_format) for model, _ in models]
        self.specs = [spec for _, spec in models]
        self.seconds = [0.0] * len(self.models)
        """Forward-pass seconds per model so far: the budget guard drops the slowest first."""

    @classmethod
    def load(cls, checkpoints: Sequence[Path], device: torch.device, fp16: bool = True, flip: bool = False) -> "Ensemble":
        """The ensemble of checkpoint files (see ``load_model`` for the errors)."""
        if not checkpoints:
            raise ValueError("the ensemble needs at least one checkpoint")
        return cls([load_model(Path(path)) for path in checkpoints], device, fp16, flip)

    @property
    def crop_size(self) -> int:
        """Crops are cut once at the largest input size; smaller models get them resized."""
        return max(spec.input_size for spec in self.specs)

    @torch.inference_mode()
    def predict(self, crops: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """(models, N) float32 P(fake) for (N, S, S, 3) uint8 RGB crops, S = ``crop_size``."""
        result = np.zeros((len(self.models), len(crops)), dtype=np.float32)
        for start in range(0, len(crops), batch_size):
            batch = torch.from_numpy(np.ascontiguousarray(crops[start : start + batch_size])).to(self.device)
            images = batch.permute(0, 3, 1, 2).float().div_(255.0)
            for row, (model, spec) in enumerate(zip(self.models, self.specs)):
                started = time.perf_counter()
                result[row, start : start + len(batch)] = self._forward(model, spec, images)
                self.seconds[row] += time.perf_counter() - started
        return result

    def without_slowest(self) -> tuple["Ensemble", ModelSpec]:
        """(this ensemble less the model that has cost the most time, that model's spec); there
        must be at least two. This one is left whole: crops already cut for it are scored by it."""
        if len(self.models) < 2:
            raise ValueError("cannot drop the last model of the ensemble")
        slowest = max(range(len(self.models)), key=self.seconds.__getitem__)
        smaller = copy.copy(self)
        smaller.models, smaller.specs, smaller.seconds = (
            [member for position, member in enumerate(members) if position != slowest]
            for members in (self.models, self.specs, self.seconds))
        return smaller, self.specs[slowest]

    def _forward(self, model: torch.nn.Module, spec: ModelSpec, images: torch.Tensor) -> np.ndarray:
        inputs = preprocess(images, spec)
        if self.half:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=images.device.type, dtype=torch.float16, enabled=self.half):
            logits = model(torch.cat([inputs, inputs.flip(-1)]) if self.flip else inputs)
        probabilities = torch.sigmoid(logits.float() / float(spec.meta.get("temperature", 1.0))).view(1 + self.flip, -1)
        return probabilities.mean(0).cpu().numpy()


def preprocess(images: torch.Tensor, spec: ModelSpec) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> the model's input: resized to ``spec.input_size``, normalised.

    Training feeds its (augmented) crops through this same function, so the two cannot drift.
    """
    if images.shape[-2:] != (spec.input_size, spec.input_size):
        images = F.interpolate(images, size=spec.input_size, mode="bilinear", antialias=True, align_corners=False)
    mean = torch.tensor(spec.mean, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
    return (images - mean) / std
