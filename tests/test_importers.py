"""import-checkpoint: the DFDC 1st place's release layout becomes our checkpoint, with the same logits."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import pytest
import timm
import torch

from dfdc_infer.cli import main as cli
from dfdc_infer.models import init_checkpoint, load_model, preprocess
from dfdc_1st_reference import (RELEASE_NAME, ReleaseClassifier, imagenet_normalise, random_rgb, release_classifier,
                                write_release_checkpoint)


@pytest.fixture(scope="module")
def reference() -> ReleaseClassifier:
    return release_classifier("tf_efficientnet_b0_ns")


def logit_difference(network: torch.nn.Module, theirs: torch.nn.Module, ours_input: torch.Tensor, their_input: torch.Tensor) -> float:
    with torch.inference_mode():
        ours, expected = network(ours_input), theirs(their_input)
    assert ours.shape == expected.shape == (len(ours_input), 1)
    assert expected.std().item() > 1e-2, "the logits depend on the input, so the comparison sees every weight"
    return (ours - expected).abs().max().item()


@pytest.mark.parametrize("wrapped", [True, False], ids=["release-file", "bare-state-dict"])
def test_imported_release_gives_the_release_logits(tmp_path: Path, reference: ReleaseClassifier, wrapped: bool,
                                                   capsys: pytest.CaptureFixture) -> None:
    source = write_release_checkpoint(tmp_path / RELEASE_NAME.format("tf_efficientnet_b0_ns"), reference, wrapped)
    out = tmp_path / "imported.pt"
    assert cli(["import-checkpoint", "--from", "dfdc-1st", str(source), "--out", str(out)]) == 0
    assert f"wrote {out}: tf_efficientnet_b0@380 imported with dfdc-1st from {source.name}" in capsys.readouterr().out

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the stored name builds without timm's deprecation warning
        network, spec = load_model(out)
    assert (spec.arch, spec.input_size, spec.mean, spec.std) == ("tf_efficientnet_b0", 380, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    assert spec.meta["imported"] == {"importer": "dfdc-1st", "source": source.name, "encoder": "tf_efficientnet_b0_ns",
                                     "sha256": hashlib.sha256(source.read_bytes()).hexdigest()}
    images = imagenet_normalise(random_rgb(380))
    assert logit_difference(network, reference, images, images) <= 1e-5


def test_encoder_and_input_size_flags_and_our_preprocessing(tmp_path: Path, reference: ReleaseClassifier) -> None:
    source = write_release_checkpoint(tmp_path / "fold3.pth", reference)
    out = tmp_path / "b0.pt"
    assert cli(["import-checkpoint", "--from", "dfdc-1st", str(source), "--out", str(out),
                "--encoder", "tf_efficientnet_b0", "--input-size", "224"]) == 0
    network, spec = load_model(out)
    assert spec.input_size == 224 and spec.meta["imported"]["encoder"] == "tf_efficientnet_b0"
    rgb = random_rgb(224, seed=2)  # our preprocessing gives the network what their kernel gave theirs
    assert logit_difference(network, reference, preprocess(rgb, spec), imagenet_normalise(rgb)) <= 1e-5


def error_line(capsys: pytest.CaptureFixture, *argv: str) -> str:
    assert cli(["import-checkpoint", *argv]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_unknown_importer_lists_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    line = error_line(capsys, "--from", "dfdc-2nd", str(tmp_path / "any"), "--out", str(tmp_path / "o.pt"))
    assert line == "error: unknown checkpoint importer 'dfdc-2nd'; known: dfdc-1st"


def test_wrong_layouts_say_what_was_expected_and_what_was_found(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    ours = init_checkpoint(tmp_path / "final_1_DeepFakeClassifier_tf_efficientnet_b0_0_1", "tf_efficientnet_b0")
    line = error_line(capsys, "--from", "dfdc-1st", str(ours), "--out", str(tmp_path / "o.pt"))
    assert "not a dfdc-1st release checkpoint: expected {'state_dict': ...} or a bare state_dict with keys 'encoder.*'" in line
    assert line.endswith("found a dfdc-checkpoint/1 file, which needs no import")

    bare_timm = tmp_path / "final_1_DeepFakeClassifier_tf_efficientnet_b0_0_2"
    torch.save({"state_dict": timm.create_model("tf_efficientnet_b0").state_dict()}, bare_timm)
    line = error_line(capsys, "--from", "dfdc-1st", str(bare_timm), "--out", str(tmp_path / "o.pt"))
    assert "under blocks.*, bn1.*, bn2.*, classifier.*, conv_head.*, conv_stem.*" in line

    text = tmp_path / "final_1_DeepFakeClassifier_tf_efficientnet_b0_0_3"
    text.write_text("not a checkpoint")
    assert "not a readable torch checkpoint" in error_line(capsys, "--from", "dfdc-1st", str(text), "--out", str(tmp_path / "o.pt"))
    assert not (tmp_path / "o.pt").exists()


def test_encoder_problems(tmp_path: Path, reference: ReleaseClassifier, capsys: pytest.CaptureFixture) -> None:
    source = write_release_checkpoint(tmp_path / "weights.bin", reference)
    out = str(tmp_path / "o.pt")
    assert "cannot tell the encoder from the file name" in error_line(capsys, "--from", "dfdc-1st", str(source), "--out", out)
    assert "unknown timm encoder 'efficientnet_b99'" in error_line(capsys, "--from", "dfdc-1st", str(source), "--out", out, "--encoder", "efficientnet_b99")
    line = error_line(capsys, "--from", "dfdc-1st", str(source), "--out", out, "--encoder", "tf_efficientnet_b2")
    assert "the release's weights do not fit the timm encoder 'tf_efficientnet_b2'" in line and "of another shape" in line
    assert error_line(capsys, "--from", "dfdc-1st", str(tmp_path / "gone"), "--out", out) == f"error: checkpoint not found: {tmp_path / 'gone'}"


def test_an_encoder_whose_timm_head_is_not_a_plain_average_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """ConvNeXt normalises after pooling: its keys fit, its computation would not be the release's."""
    source = write_release_checkpoint(tmp_path / RELEASE_NAME.format("convnext_atto"), ReleaseClassifier("convnext_atto").eval())
    line = error_line(capsys, "--from", "dfdc-1st", str(source), "--out", str(tmp_path / "o.pt"))
    assert "the head of timm's ConvNeXt is not a plain average pool and the classifier" in line
    assert not (tmp_path / "o.pt").exists()
