"""Checkpoint importers: other projects' released weights as our ``dfdc-checkpoint/1`` files.

    python -m dfdc_infer import-checkpoint --from dfdc-1st FILE --out OUT.pt [--encoder NAME] [--input-size N]

An importer (``IMPORTERS``, by name) reads one file in its project's layout and returns the timm
network that computes the same logit, and its ``ModelSpec``; ``import_checkpoint`` records where
the weights came from in the spec's meta and writes the file ``predict`` and
``build_submission.py`` take like any other checkpoint.

``dfdc-1st``: the DFDC 1st place's release (selimsef/dfdc_deepfake_challenge, the seven files its
``download_weights.sh`` names, e.g. ``final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36``).
Each is ``{"state_dict": ...}`` (or a bare state_dict; keys may carry DataParallel's ``module.``)
of a module with a timm ``encoder`` (its own unused 1000-class head included) and ``fc``
(``Linear(features, 1)``), computing ``fc(avgpool(encoder.forward_features(x)))``. That is a timm
model with ``num_classes=1`` whose head is an average pool and a linear layer, so the encoder's
weights move over as they are and ``fc`` becomes the model's classifier; the import checks the
result computes the release's formula before writing it. Inputs: 380 px, ImageNet mean and std.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import timm.models
import torch
import torch.nn.functional as F

from .manifest import sha256_file
from .models import CHECKPOINT_FORMAT, CheckpointError, ModelSpec, create_network, load_exactly, save_checkpoint
from .registry import Registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Importer(Protocol):
    def __call__(self, path: Path, encoder: str | None, input_size: int | None) -> tuple[torch.nn.Module, ModelSpec]: ...


IMPORTERS: Registry[Importer] = Registry("checkpoint importer")


def import_checkpoint(importer: str, source: Path, out: Path, encoder: str | None = None, input_size: int | None = None) -> ModelSpec:
    """Convert ``source`` with the importer named ``importer`` and write ``out``; returns its spec.

    The meta records the provenance (importer, source file name and sha256), which the build copies
    into the dataset manifest, so a submission says which released file each model came from.
    """
    read = IMPORTERS.get(importer)
    if input_size is not None and input_size < 1:
        raise ValueError(f"input size must be >= 1, got {input_size}")
    source = Path(source)
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    network, spec = read(source, encoder=encoder, input_size=input_size)
    provenance = {"importer": importer, "source": source.name, "sha256": sha256_file(source)}
    spec = replace(spec, meta={**spec.meta, "imported": {**spec.meta.get("imported", {}), **provenance}})
    save_checkpoint(out, network, spec)
    return spec


# --- dfdc-1st -------------------------------------------------------------------------------------

DFDC_1ST_INPUT_SIZE = 380
DFDC_1ST_LAYOUT = ("{'state_dict': ...} or a bare state_dict with keys 'encoder.*', 'fc.weight' and 'fc.bias' "
                   "(optionally prefixed 'module.')")
RELEASE_NAME = re.compile(r"DeepFakeClassifier_(?P<encoder>.+?)_\d+_(?:\d+|last|best_dice)$")
"""Their training names snapshots ``{prefix}DeepFakeClassifier_{encoder}_{fold}_{epoch|last|best_dice}``."""


@IMPORTERS.register("dfdc-1st")
def import_dfdc_1st(path: Path, encoder: str | None = None, input_size: int | None = None) -> tuple[torch.nn.Module, ModelSpec]:
    encoder, input_size = encoder or encoder_from_file_name(path), input_size or DFDC_1ST_INPUT_SIZE
    if encoder is None:
        raise CheckpointError(f"{path}: cannot tell the encoder from the file name (expected '..._DeepFakeClassifier_<encoder>_<fold>_<epoch>', "
                              "as in final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36); pass --encoder NAME")
    arch = timm_architecture(encoder)
    release = release_state_dict(path)
    network = create_network(arch)
    head = classifier_name(network)
    state = {name.removeprefix("encoder."): tensor for name, tensor in release.items()
             if name.startswith("encoder.") and not name.startswith(f"encoder.{head}.")}
    state[f"{head}.weight"], state[f"{head}.bias"] = release["fc.weight"], release["fc.bias"]
    load_exactly(network, state, f"{path}: the release's weights do not fit the timm encoder {encoder!r}")
    network = network.float().eval()
    check_average_pool_head(network, release["fc.weight"], release["fc.bias"], input_size, path)
    return network, ModelSpec(arch, input_size, IMAGENET_MEAN, IMAGENET_STD, {"imported": {"encoder": encoder}})


def encoder_from_file_name(path: Path) -> str | None:
    """``tf_efficientnet_b7_ns`` from ``final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36`` (or ``.pth``, ``.pt``)."""
    stem = Path(path).name.removesuffix(".pth").removesuffix(".pt")
    match = RELEASE_NAME.search(stem)
    return match.group("encoder") if match else None


def timm_architecture(encoder: str) -> str:
    """The timm architecture of an encoder name, as timm 1.0 spells it without a warning: old
    names map to their current ``arch.tag`` (``tf_efficientnet_b7_ns`` -> ``tf_efficientnet_b7.ns_jft_in1k``)
    and the tag, which only picks downloadable weights, is dropped (``tf_efficientnet_b7``). Stored
    bare, the name also builds with the older timm a Kaggle image may carry."""
    current = timm.models.get_deprecated_models().get(encoder, encoder)
    arch = timm.models.get_arch_name(current)
    if not timm.models.is_model(arch):
        raise CheckpointError(f"unknown timm encoder {encoder!r} (timm {timm.__version__}; e.g. tf_efficientnet_b7_ns)")
    return arch


def release_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The release file's tensors without DataParallel's ``module.`` prefix, checked to be their layout."""
    payload = load_weights_only(path)
    expected = f"{path}: not a dfdc-1st release checkpoint: expected {DFDC_1ST_LAYOUT}"
    if isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT:
        raise CheckpointError(f"{expected}; found a {CHECKPOINT_FORMAT} file, which needs no import")
    state = payload.get("state_dict", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(value, torch.Tensor) for value in state.values()):
        found = f"a dict with keys {', '.join(map(str, list(payload)[:8]))}" if isinstance(payload, dict) else type(payload).__name__
        raise CheckpointError(f"{expected}; found {found}")
    state = {name.removeprefix("module."): tensor for name, tensor in state.items()}
    groups = sorted({name.split(".")[0] for name in state})
    if groups != ["encoder", "fc"] or {"fc.weight", "fc.bias"} - set(state) or state["fc.weight"].shape[0] != 1:
        listed = ", ".join(f"{group}.*" for group in groups[:8]) + (f" (+{len(groups) - 8} more)" if len(groups) > 8 else "")
        raise CheckpointError(f"{expected}, and one output; found {len(state)} tensors under {listed}")
    return state


def load_weights_only(path: Path) -> Any:
    """``torch.load`` without running pickled code; numpy scalars (their files store ``bce_best``
    as one) are allowed, under numpy 2's and numpy 1's module names."""
    scalar = np._core.multiarray.scalar
    dtypes = [type(np.dtype(kind)) for kind in (np.float32, np.float64, np.int32, np.int64, np.bool_)]
    allowed = [scalar, (scalar, "numpy.core.multiarray.scalar"), np.dtype, *dtypes]
    try:
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for a file that is not a checkpoint
        unsafe = re.search(r"Unsupported global: GLOBAL (\S+)", str(error))
        reason = f"it pickles {unsafe.group(1)}, which a weights-only load refuses" if unsafe else type(error).__name__
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({reason})") from error


def classifier_name(network: torch.nn.Module) -> str:
    """The attribute path of a timm model's classifier (``classifier`` in EfficientNet, ``fc`` in ResNet)."""
    head = network.get_classifier()
    return next(name for name, module in network.named_modules() if module is head)


@torch.inference_mode()
def check_average_pool_head(network: torch.nn.Module, weight: torch.Tensor, bias: torch.Tensor, size: int, path: Path) -> None:
    """Refuse an encoder whose timm head is not ``linear(mean over H, W)``: the imported model must
    compute the release's ``fc(avgpool(encoder.forward_features(x)))``, and this checks it does."""
    features = network.forward_features(torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0)))
    ours = network.forward_head(features)
    theirs = F.linear(features.mean(dim=(2, 3)), weight.float(), bias.float()) if features.dim() == 4 else None
    if theirs is None or not torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5):
        raise CheckpointError(f"{path}: the head of timm's {type(network).__name__} is not a plain average pool and the classifier, "
                              "so it cannot compute the release's fc(avgpool(features)); this encoder cannot be imported")
