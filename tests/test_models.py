"""Checkpoints, the ensemble's forward pass, and the aggregation rule (mean, mean, clip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from dfdc_infer.aggregation import video_probability
from dfdc_infer.models import CheckpointError, Ensemble, ModelSpec, create_network, init_checkpoint, load_model, save_checkpoint

SMALL_ARCH = "tf_efficientnet_b0"


def test_video_probability_is_mean_over_crops_then_models_then_clipped() -> None:
    probabilities = np.array([[0.2, 0.4, 0.6], [0.8, 0.8, 0.8]])  # model means 0.4 and 0.8
    assert video_probability(probabilities) == pytest.approx(0.6)
    assert video_probability(np.array([[0.0, 0.0]])) == pytest.approx(0.01)
    assert video_probability(np.array([[1.0]])) == pytest.approx(0.99)
    assert video_probability(np.array([[1.0]]), clip_min=0.05, clip_max=0.95) == pytest.approx(0.95)
    with pytest.raises(ValueError, match="crops > 0"):
        video_probability(np.zeros((2, 0)))


def test_init_checkpoint_round_trips_arch_size_normalisation_and_weights(tmp_path: Path) -> None:
    path = init_checkpoint(tmp_path / "b0.pt", SMALL_ARCH, input_size=128, seed=3)
    model, spec = load_model(path)
    assert spec.arch == SMALL_ARCH and spec.input_size == 128
    assert spec.mean == pytest.approx((0.485, 0.456, 0.406)) and spec.std == pytest.approx((0.229, 0.224, 0.225))
    assert spec.meta["trained"] is False
    torch.manual_seed(3)
    reference = create_network(SMALL_ARCH).state_dict()
    assert all(torch.equal(reference[name], tensor) for name, tensor in model.state_dict().items())


def test_ensemble_predicts_the_mean_of_real_forward_passes(tmp_path: Path) -> None:
    paths = [init_checkpoint(tmp_path / f"m{seed}.pt", SMALL_ARCH, input_size=96, seed=seed) for seed in (0, 1)]
    ensemble = Ensemble.load(paths, torch.device("cpu"))
    crops = np.random.default_rng(0).integers(0, 256, size=(5, 96, 96, 3), dtype=np.uint8)
    probabilities = ensemble.predict(crops, batch_size=2)
    assert probabilities.shape == (2, 5) and ((probabilities > 0) & (probabilities < 1)).all()

    model, spec = load_model(paths[1])  # the same numbers straight from the network
    inputs = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255
    inputs = (inputs - torch.tensor(spec.mean).view(1, 3, 1, 1)) / torch.tensor(spec.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        expected = torch.sigmoid(model(inputs)).view(-1).numpy()
    np.testing.assert_allclose(probabilities[1], expected, atol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1]), "two seeds are two different models"


def test_flipped_crops_average_the_crop_and_its_mirror_image(tmp_path: Path) -> None:
    path = init_checkpoint(tmp_path / "m.pt", SMALL_ARCH, input_size=64, seed=2)
    plain, flipping = Ensemble.load([path], torch.device("cpu")), Ensemble.load([path], torch.device("cpu"), flip=True)
    crops = np.random.default_rng(1).integers(0, 256, size=(3, 64, 64, 3), dtype=np.uint8)
    expected = (plain.predict(crops) + plain.predict(np.ascontiguousarray(crops[:, :, ::-1]))) / 2
    np.testing.assert_allclose(flipping.predict(crops, batch_size=2), expected, atol=1e-5)
    assert not np.allclose(flipping.predict(crops), plain.predict(crops)), "a random network is not mirror-symmetric"


def test_models_of_different_input_sizes_share_crops_cut_at_the_largest(tmp_path: Path) -> None:
    paths = [init_checkpoint(tmp_path / "a.pt", SMALL_ARCH, 64), init_checkpoint(tmp_path / "b.pt", SMALL_ARCH, 96)]
    ensemble = Ensemble.load(paths, torch.device("cpu"))
    assert ensemble.crop_size == 96
    assert ensemble.predict(np.zeros((3, 96, 96, 3), dtype=np.uint8)).shape == (2, 3)


def test_fp16_checkpoint_loads_into_fp32_model(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_network(SMALL_ARCH)
    spec = ModelSpec(SMALL_ARCH, 64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    path = save_checkpoint(tmp_path / "half.pt", model, spec, dtype=torch.float16)
    assert torch.load(path, weights_only=True)["state_dict"]["conv_stem.weight"].dtype == torch.float16
    loaded, _ = load_model(path)
    assert next(loaded.parameters()).dtype == torch.float32


def test_missing_checkpoint_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found: .*nope.pt"):
        load_model(tmp_path / "nope.pt")


def test_checkpoint_without_arch_metadata_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bare.pt"
    torch.save(create_network(SMALL_ARCH).state_dict(), path)
    with pytest.raises(CheckpointError, match="bare.pt: missing arch, input_size, mean, std, state_dict"):
        load_model(path)


@pytest.mark.parametrize("arch, fault", [("tf_efficientnet_b1", "missing"), ("tf_efficientnet_b2", "of another shape")])
def test_weights_that_do_not_fit_the_arch_are_refused(tmp_path: Path, arch: str, fault: str) -> None:
    path = init_checkpoint(tmp_path / "b0.pt", SMALL_ARCH, 64)
    payload = torch.load(path, weights_only=True)
    payload["arch"] = arch
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=f"weights do not fit {arch}: .*[1-9]\\d* {fault}"):
        load_model(path)


def test_garbage_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "junk.pt"
    path.write_bytes(b"\x00not a zip at all")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable torch checkpoint"):
        load_model(path)
