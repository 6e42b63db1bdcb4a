"""The DFDC 1st place's own pieces, for the tests that compare ours with them.

- facenet-pytorch 2.6.0's MTCNN, the detector its kernel ran: the real thing, from its wheel on PyPI,
  fetched with pip once and cached beside the MTCNN weights (``wheels/`` of ``default_cache_dir()``). Only its
  two MTCNN modules are imported (the package's ``__init__`` would pull its face-recognition net and
  ``requests``). Without pip access the calling test skips, saying why.
- A network in its release layout (``ReleaseClassifier``), written here from issue 9's description,
  not copied, and files saved the way its release was.
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import timm
import torch

from dfdc_infer.config import default_cache_dir
from dfdc_infer.fetched_files import FetchError, download_wheel

FACENET = "facenet-pytorch==2.6.0"
RELEASE_NAME = "final_111_DeepFakeClassifier_{}_0_36"
"""A release-style file name; ``{}`` is the timm encoder (the importer reads it from the name)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cached_wheel(requirement: str) -> Path:
    """``name==version``'s wheel from the cache, downloaded with pip on first use (atomically, so
    parallel runs never see half a file); skips the calling test when pip cannot get it."""
    name, version = requirement.split("==")
    folder = default_cache_dir() / "wheels"
    found = sorted(folder.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        try:
            wheel = download_wheel(requirement, Path(tmp))
        except FetchError as error:
            pytest.skip(f"the reference needs {requirement} from PyPI: {error}")
        os.replace(wheel, folder / wheel.name)
    return folder / wheel.name


def facenet_mtcnn(root: Path) -> types.ModuleType:
    """facenet-pytorch 2.6.0's ``models/mtcnn.py`` (with its ``utils/detect_face.py`` and weights),
    unpacked under ``root`` and imported under a package name of its own; once per process."""
    name = "facenet_pytorch_reference"
    if name not in sys.modules:
        with zipfile.ZipFile(cached_wheel(FACENET)) as archive:
            archive.extractall(root, [member for member in archive.namelist() if member.startswith("facenet_pytorch/")])
        package = types.ModuleType(name)
        package.__path__ = [str(root / "facenet_pytorch")]
        sys.modules[name] = package
    return importlib.import_module(f"{name}.models.mtcnn")


class ReleaseClassifier(torch.nn.Module):
    """The 1st place's classifier as described in issue 9 (written here, not copied): a timm encoder
    that keeps its own unused 1000-class head, a global average pool, dropout, and ``fc``, one logit."""

    def __init__(self, encoder: str) -> None:
        super().__init__()
        self.encoder = timm.create_model(encoder, pretrained=False)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.dropout = torch.nn.Dropout(0.0)
        self.fc = torch.nn.Linear(self.encoder.num_features, 1)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """What ``fc`` sees: the encoder's pooled features, (N, features)."""
        return self.dropout(self.pool(self.encoder.forward_features(images)).flatten(1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(images))


def release_classifier(encoder: str = "tf_efficientnet_b0", seed: int = 0) -> ReleaseClassifier:
    """Random weights whose batch-norm statistics are measured on random images (a freshly
    initialised network gives nearly the same logit for every input; calibrated, its logits
    depend on the input, so a weight in the wrong place or a different computation shows)."""
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm's note that *_ns names are deprecated
        model = ReleaseClassifier(encoder)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = the plain average over the calibration batches
    with torch.no_grad():
        model.train()(imagenet_normalise(random_rgb(96, seed=seed + 100, count=8)))
    return model.eval()


def write_release_checkpoint(path: Path, model: ReleaseClassifier, wrapped: bool = True) -> Path:
    """``model`` saved in the release layout: ``{"epoch", "bce_best" (a numpy scalar), "state_dict"}``
    with DataParallel's ``module.`` prefix, or (``wrapped=False``) the bare state_dict."""
    state = {("module." if wrapped else "") + key: value for key, value in model.state_dict().items()}
    torch.save({"epoch": 37, "bce_best": np.float64(0.19), "state_dict": state} if wrapped else state, path)
    return Path(path)


def random_rgb(size: int, seed: int = 1, count: int = 2) -> torch.Tensor:
    return torch.rand(count, 3, size, size, generator=torch.Generator().manual_seed(seed))


def imagenet_normalise(rgb: torch.Tensor) -> torch.Tensor:
    """Their kernel's input: torchvision ``Normalize`` with the ImageNet mean and std."""
    return (rgb - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
