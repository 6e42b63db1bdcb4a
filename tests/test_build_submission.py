"""build_submission.py: a dataset under the limit, a kernel that runs offline, and clear refusals."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

import dfdc_infer.run
from dfdc_infer.config import InferenceConfig, preset_config
from dfdc_infer.face_detection import create_detector
from dfdc_infer.importers import import_checkpoint
from dfdc_infer.kaggle_env import DatasetError, install_missing_wheels, run_dataset
from dfdc_infer.manifest import read_manifest, verify_manifest
from dfdc_infer.models import ModelSpec, create_network, init_checkpoint

from build_submission import FP16_CHECK_CROPS, FP16_CHECK_FACE, GPU_DECODE_WHEEL, KAGGLE_PYTHON, download_wheels, over_limit_message, sample_crops
from build_submission import main as build_main
from test_importers import RELEASE_NAME, release_classifier, write_release_checkpoint

REPO = Path(__file__).resolve().parents[1]


def build(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "build_submission.py"), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The timm, decord and PyNvVideoCodec wheels for Kaggle's Python, downloaded once for every build in this module."""
    import decord
    import timm

    folder = tmp_path_factory.mktemp("wheels")
    download_wheels([f"timm=={timm.__version__}", f"decord=={decord.__version__}", GPU_DECODE_WHEEL], KAGGLE_PYTHON, folder)
    return folder


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.pt", "tf_efficientnet_b0", input_size=96, seed=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, small_checkpoint: Path, wheels: Path) -> Path:
    out = tmp_path_factory.mktemp("build") / "build"
    result = build("--checkpoint", str(small_checkpoint), "--out", str(out), "--wheels", str(wheels), "--frame-step", "15")
    assert result.returncode == 0, result.stderr
    assert "fp16 check small.pt: largest prediction change" in result.stdout
    return out


def test_dataset_holds_code_models_detector_wheels_and_a_manifest(built: Path) -> None:
    dataset = built / "weights_dataset"
    manifest = read_manifest(dataset)
    files = set(manifest["files"])
    assert {"dfdc_infer/pipeline.py", "dfdc_infer/kaggle_env.py", "models/model-0-small.pt",
            "mtcnn/pnet.pt", "mtcnn/rnet.pt", "mtcnn/onet.pt"} <= files
    assert any(name.startswith("wheels/timm-") for name in files)
    assert manifest["wheels"]["PyNvVideoCodec"] == "wheels/pynvvideocodec-2.2.4-cp312-cp312-manylinux_2_28_x86_64.whl"
    assert manifest["wheels"]["decord"] == "wheels/decord-0.6.0-py3-none-manylinux2010_x86_64.whl"
    assert manifest["kernel_python"] == KAGGLE_PYTHON == "3.12" and manifest["preset"] == "seed"
    assert not any("dfdc_sample" in name or "test" in name.split("/")[0] or "__pycache__" in name for name in files)
    assert verify_manifest(dataset) == []
    assert manifest["ensemble"][0]["arch"] == "tf_efficientnet_b0" and manifest["ensemble"][0]["dtype"] == "float16"
    assert InferenceConfig.from_dict(manifest["config"]).frame_step == 15
    assert set(manifest["versions"]) == {"python", "torch", "timm"}
    checkpoint = torch.load(dataset / "models/model-0-small.pt", weights_only=True)
    assert checkpoint["state_dict"]["conv_stem.weight"].dtype == torch.float16
    metadata = json.loads((dataset / "dataset-metadata.json").read_text())
    assert metadata["id"] == "your-kaggle-username/dfdc-offline-weights" and metadata["licenses"] == [{"name": "other"}]


def test_kernel_folder_has_py_ipynb_and_offline_gpu_metadata(built: Path) -> None:
    kernel = built / "kernel"
    metadata = json.loads((kernel / "kernel-metadata.json").read_text())
    assert metadata["code_file"] == "dfdc_kernel.ipynb" and metadata["kernel_type"] == "notebook"
    assert metadata["enable_internet"] is False and metadata["enable_gpu"] is True
    assert metadata["dataset_sources"] == ["your-kaggle-username/dfdc-offline-weights"]
    assert metadata["competition_sources"] == ["deepfake-detection-challenge"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. nbformat's MissingIDFieldWarning ("will become a hard error")
        notebook = nbformat.read(kernel / "dfdc_kernel.ipynb", as_version=nbformat.NO_CONVERT)
        nbformat.validate(notebook)
    assert (notebook.nbformat, notebook.nbformat_minor) == (4, 5)
    assert [cell.id for cell in notebook.cells] == [f"cell-{index}" for index in range(len(notebook.cells))]
    assert notebook.metadata.kernelspec.name == "python3"
    code = "\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code")
    script = (kernel / "dfdc_kernel.py").read_text()
    assert all(line in script for line in code.splitlines())
    assert "find_dataset" in code and "run_dataset" in code
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# DFDC offline submission")


def test_kernel_runs_self_contained_and_matches_the_repo_pipeline(built: Path, sample_data: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "kaggle"
    shutil.copytree(built / "weights_dataset", elsewhere / "input" / "some-slug")
    shutil.copytree(built / "kernel", elsewhere / "kernel")
    out = elsewhere / "working" / "submission.csv"
    environment = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    environment["PYTHONNOUSERSITE"] = "1"
    result = subprocess.run(
        [sys.executable, str(elsewhere / "kernel" / "dfdc_kernel.py"), "--dataset", str(elsewhere / "input" / "some-slug"),
         "--videos", str(sample_data / "test_videos"), "--sample-submission", str(sample_data / "sample_submission.csv"),
         "--out", str(out), "--report", str(elsewhere / "working" / "report")],
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (elsewhere / "working" / "report" / "index.html").read_text().count("<section class='video") == 8, "the kernel takes --report"
    assert f"dfdc_infer loaded from {elsewhere / 'input' / 'some-slug' / 'dfdc_infer'}" in result.stderr
    assert "scored 7, no face 1, failed 0, missing 0" in result.stderr

    dataset = built / "weights_dataset"
    manifest = read_manifest(dataset)
    reference = tmp_path / "reference.csv"
    dfdc_infer.run.run_submission(InferenceConfig.from_dict(manifest["config"]), sample_data / "test_videos",
                                  sample_data / "sample_submission.csv", [dataset / manifest["ensemble"][0]["file"]], reference,
                                  dataset / "mtcnn")
    kernel_rows, repo_rows = pd.read_csv(out), pd.read_csv(reference)
    assert kernel_rows["filename"].tolist() == repo_rows["filename"].tolist()
    assert (kernel_rows["label"] - repo_rows["label"]).abs().max() <= 1e-6


def test_kernel_refuses_a_tampered_dataset(built: Path, sample_data: Path, tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    shutil.copytree(built / "weights_dataset", dataset)
    with open(dataset / "mtcnn" / "onet.pt", "ab") as handle:
        handle.write(b"x")
    result = subprocess.run(
        [sys.executable, str(built / "kernel" / "dfdc_kernel.py"), "--dataset", str(dataset), "--videos", str(sample_data / "test_videos"),
         "--sample-submission", str(sample_data / "sample_submission.csv"), "--out", str(tmp_path / "s.csv")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    assert "does not match its manifest: mtcnn/onet.pt:" in result.stderr and "Traceback" not in result.stderr


def test_two_builds_from_the_same_inputs_have_the_same_hashes(built: Path, small_checkpoint: Path, wheels: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    assert build("--checkpoint", str(small_checkpoint), "--out", str(again), "--wheels", str(wheels), "--frame-step", "15").returncode == 0
    assert read_manifest(again / "weights_dataset")["files"] == read_manifest(built / "weights_dataset")["files"]
    assert (again / "weights_dataset" / "manifest.json").read_bytes() == (built / "weights_dataset" / "manifest.json").read_bytes()
    assert (again / "kernel" / "dfdc_kernel.ipynb").read_bytes() == (built / "kernel" / "dfdc_kernel.ipynb").read_bytes()


def test_over_the_limit_stops_before_writing_with_a_table_and_a_way_out(small_checkpoint: Path, wheels: Path, tmp_path: Path) -> None:
    second = tmp_path / "second.pt"
    shutil.copyfile(small_checkpoint, second)
    out = tmp_path / "out"
    result = build("--checkpoint", str(small_checkpoint), "--checkpoint", str(second), "--out", str(out), "--wheels", str(wheels),
                   "--fp32", "--max-bytes", "35000000", "--no-gpu-decode")
    assert result.returncode == 2
    assert "pynvvideocodec" not in result.stderr, "--no-gpu-decode leaves the 27 MB GPU-decode wheel out"
    assert not out.exists()
    assert "over the 0.04 GB limit" in result.stderr
    assert "models/model-1-second.pt (tf_efficientnet_b0, fp32)" in result.stderr
    assert "  - store fp16 (drop --fp32): 0.0" in result.stderr and "GB, fits" in result.stderr
    assert "leave out" not in result.stderr, "the steps stop at the first that fits"


@dataclass(frozen=True)
class SizedModel:
    """Stands in for build_submission.PackedModel where only the sizes matter."""

    source: Path
    file: str
    spec: ModelSpec
    fp16_bytes: int

    def packed_bytes(self, fp32: bool) -> int:
        return self.fp16_bytes * (2 if fp32 else 1)


def test_over_limit_steps_go_from_the_cheapest_to_leaving_models_out() -> None:
    """Seven B7-sized models (128 MB each in fp16) beside 45 MB of code, weights and wheels, limit 0.9 GB."""
    spec = ModelSpec("tf_efficientnet_b7", 380, (0.5,) * 3, (0.5,) * 3)
    models = [SizedModel(Path(f"b7-{index}.pt"), f"models/model-{index}-b7-{index}.pt", spec, 128_000_000) for index in range(7)]
    fixed = {"dfdc_infer/ (inference code)": 1_000_000, "mtcnn/ (face detector)": 2_000_000, "wheels/timm.whl": 3_000_000,
             "wheels/decord.whl": 13_000_000, "wheels/pynvvideocodec.whl": 27_000_000}
    message = over_limit_message(models, True, fixed, 900_000_000, gpu_decode_bytes=27_000_000)
    lines = message.splitlines()
    assert lines[0] == "the dataset would be 1.838 GB, over the 0.90 GB limit"
    assert "       256.0 MB  models/model-0-b7-0.pt (tf_efficientnet_b7, fp32)" in lines
    assert lines[-3:] == [
        "  - store fp16 (drop --fp32): 0.942 GB, still over",
        "  - leave out GPU decoding (--no-gpu-decode, 27 MB; the kernel decodes on the CPU): 0.915 GB, still over",
        "  - leave out the largest model(s): b7-6.pt: 0.787 GB, fits",
    ]
    assert over_limit_message(models[:1], False, fixed, 10_000_000).splitlines()[-1] == \
        "  - no subset of these models fits: use smaller architectures"


def test_the_fp16_check_scores_its_committed_face_at_several_zooms_and_colours(weights_dir: Path) -> None:
    assert FP16_CHECK_FACE.stat().st_size <= 10 * 2**10, "a fixture of a few KB"
    crops = sample_crops(224)
    assert crops.shape == (FP16_CHECK_CROPS, 224, 224, 3) and crops.dtype == np.uint8
    assert len({crop.tobytes() for crop in crops}) == FP16_CHECK_CROPS, "each crop its own zoom and colour"
    faces = create_detector(InferenceConfig()).detect(crops)
    assert [len(found) for found in faces] == [1] * FP16_CHECK_CROPS and all(found[0][4] > 0.99 for found in faces)


def test_projected_time_over_budget_is_warned(small_checkpoint: Path, wheels: Path, tmp_path: Path) -> None:
    report = tmp_path / "timing.json"
    report.write_text(json.dumps({"end_to_end_seconds_per_video": 9.0}))
    result = build("--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "b"), "--wheels", str(wheels), "--fp32", "--timing", str(report))
    assert result.returncode == 0, result.stderr
    assert "WARNING: over the 9 h budget: 10.0 h projected for 4000 videos" in result.stdout


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_checkpoint(tmp_path: Path) -> None:
    line = one_line_error(build("--checkpoint", str(tmp_path / "gone.pt"), "--out", str(tmp_path / "o")))
    assert line == f"error: checkpoint not found: {tmp_path / 'gone.pt'}"


def test_checkpoint_without_arch_metadata(tmp_path: Path) -> None:
    bare = tmp_path / "bare.pt"
    torch.save(create_network("tf_efficientnet_b0").state_dict(), bare)
    assert "bare.pt: missing arch" in one_line_error(build("--checkpoint", str(bare), "--out", str(tmp_path / "o")))


def test_checkpoint_whose_keys_do_not_fit_its_arch(small_checkpoint: Path, tmp_path: Path) -> None:
    payload = torch.load(small_checkpoint, weights_only=True)
    payload["arch"] = "tf_efficientnet_b2"
    wrong = tmp_path / "wrong.pt"
    torch.save(payload, wrong)
    assert "weights do not fit tf_efficientnet_b2" in one_line_error(build("--checkpoint", str(wrong), "--out", str(tmp_path / "o")))


def test_existing_output_folder_needs_force(small_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "o").mkdir()
    line = one_line_error(build("--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "o")))
    assert line == f"error: {tmp_path / 'o'} exists; pass --force to replace it"


def test_wheels_must_install_on_the_kernel_python(small_checkpoint: Path, wheels: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture) -> None:
    def error(*argv: str) -> str:  # in-process: these stop before anything heavy runs
        assert build_main(["--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "o"), *argv]) == 2
        return capsys.readouterr().err.strip()

    assert error("--wheels", str(wheels), "--kernel-python", "3.11") == (
        f"error: no pynvvideocodec wheel in {wheels} installs on CPython 3.11 (--kernel-python): "
        "found pynvvideocodec-2.2.4-cp312-cp312-manylinux_2_28_x86_64.whl")
    assert error("--kernel-python", "3.99") == (
        "error: no pynvvideocodec==2.2.4 wheel for CPython 3.99 on manylinux x86_64 on the package index: "
        "pass another --kernel-python, --no-gpu-decode, or --wheels DIR with one")
    assert error("--kernel-python", "python3") == "error: --kernel-python takes a CPython version like 3.12, got 'python3'"
    assert not (tmp_path / "o").exists()


def test_wheel_folder_without_timm(small_checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "wheels").mkdir()
    line = one_line_error(build("--checkpoint", str(small_checkpoint), "--out", str(tmp_path / "o"), "--wheels", str(tmp_path / "wheels")))
    assert line == f"error: no timm-*.whl in {tmp_path / 'wheels'}: the kernel needs timm offline"


def test_wheels_install_only_what_is_missing_and_fail_clearly(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "wheels").mkdir()
    (tmp_path / "wheels" / "broken-0.1-py3-none-any.whl").write_bytes(b"not a zip")
    assert install_missing_wheels(tmp_path, {"wheels": {"numpy": "wheels/numpy-is-present.whl"}}) == []
    broken = {"wheels": {"dfdc_no_such_module": "wheels/broken-0.1-py3-none-any.whl"}}
    with pytest.raises(DatasetError, match="pip could not install wheels/broken-0.1-py3-none-any.whl"):
        install_missing_wheels(tmp_path, broken, required=("dfdc_no_such_module",))
    with caplog.at_level(logging.WARNING, logger="dfdc_infer.kaggle_env"):
        assert install_missing_wheels(tmp_path, broken) == [], "an optional wheel that fails is logged, not fatal"
    assert "the run goes on without dfdc_no_such_module" in caplog.text


def test_preset_is_packed_and_the_kernel_runs_it(tmp_path: Path, wheels: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """``--preset dfdc-1st`` with an imported release-layout checkpoint: the manifest holds the preset's
    name and values (and the one flag given on top), and the kernel's path scores with exactly those."""
    release = write_release_checkpoint(tmp_path / RELEASE_NAME.format("tf_efficientnet_b0_ns"), release_classifier())
    imported = tmp_path / "dfdc-1st-b0.pt"
    import_checkpoint("dfdc-1st", release, imported, input_size=96)
    out = tmp_path / "b"
    result = build("--checkpoint", str(imported), "--out", str(out), "--wheels", str(wheels), "--fp32", "--preset", "dfdc-1st",
                   "--batch-size", "8")
    assert result.returncode == 0, result.stderr
    dataset = out / "weights_dataset"
    manifest = read_manifest(dataset)
    assert manifest["preset"] == "dfdc-1st"
    expected = preset_config("dfdc-1st").updated({"batch_size": 8})
    assert InferenceConfig.from_dict(manifest["config"]) == expected
    assert (expected.aggregation, expected.crop_geometry, expected.frames_per_video, expected.clip_max) == ("confident", "dfdc-1st", 32, 1.0)
    assert manifest["ensemble"][0]["meta"]["imported"]["source"] == release.name

    seen = {}
    monkeypatch.setattr(dfdc_infer.run, "run_submission", lambda config, *rest, **options: seen.setdefault("config", config))
    with caplog.at_level(logging.INFO, logger="dfdc_infer.kaggle_env"):
        run_dataset(dataset, tmp_path / "videos", tmp_path / "sample.csv", tmp_path / "submission.csv")
    assert seen["config"] == expected
    assert "settings: preset dfdc-1st, changed: batch_size=8" in caplog.text
