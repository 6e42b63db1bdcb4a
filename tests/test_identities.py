"""People in a deepfake-faces folder: clustering, splits that hold people out, and the identity-leak figures.

What it proves without the real data or dlib: embeddings cluster into people (largest first), every fake follows its
original into its original's person and chunk, an original the persons table lacks is its own person, every wrong
input is a one-line error, and ``evaluate --persons`` splits its figures by people seen and unseen in training.
"""

from __future__ import annotations

import builtins
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdc_infer.models import load_model, read_checkpoint, save_checkpoint
from dfdc_train import evaluate as evaluate_command
from dfdc_train import folds, identities
from dfdc_train.config import TrainConfig
from dfdc_train.evaluate import figures
from dfdc_train.faces_folder import group_chunk, read_faces_folder
from dfdc_train.identities import Embedder, cluster, read_persons
from dfdc_train.layout import DataError
from dfdc_train.train import load_data
from test_faces_folder import ORIGINALS, make_folder

PERSONS = {f"real{number:02d}.mp4": f"p{number % 3}" for number in range(ORIGINALS - 1)}  # real11 is in no person


def write_persons(path: Path, persons: dict[str, str] = PERSONS) -> Path:
    pd.DataFrame({"original": list(persons), "person": list(persons.values())}).to_csv(path, index=False)
    return path


def test_embeddings_cluster_into_people_numbered_largest_first() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 128)) * 0.2  # dlib's people sit ~0.6-0.9 apart; these 2-3 apart
    sizes = [2, 5, 3]
    points = np.concatenate([centre + rng.normal(size=(size, 128)) * 0.01 for centre, size in zip(centres, sizes)])
    labels = cluster(points, threshold=0.5)
    assert labels.tolist() == [2, 2] + [0] * 5 + [1] * 3
    assert cluster(points, threshold=100.0).tolist() == [0] * 10, "a cut above every distance: one person"
    assert cluster(points[:1]).tolist() == [0]


def test_every_fake_follows_its_original_into_its_person_and_chunk(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make_folder(tmp_path / "faces")
    with caplog.at_level(logging.WARNING):
        folder = read_faces_folder(root, PERSONS, group="person")
    crops = folder.crops
    person_of = {**PERSONS, "real11.mp4": "original:real11.mp4"}
    source = crops["original"].fillna(crops["video"])
    assert crops["identity"].tolist() == [person_of[name] for name in source]
    assert crops["chunk"].tolist() == [group_chunk(person) for person in crops["identity"]]
    assert crops["chunk"].nunique() == 4 and folder.settings["group"] == "person"
    assert "1 originals are in no person of the persons table" in caplog.text and "real11.mp4" in caplog.text
    by_original = read_faces_folder(root, PERSONS)  # persons known, chunks still by original
    assert by_original.crops["chunk"].tolist() == read_faces_folder(root).crops["chunk"].tolist()
    assert by_original.crops["identity"].tolist() == crops["identity"].tolist()


def test_a_person_split_never_shares_a_person_between_splits(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    persons = write_persons(tmp_path / "persons.csv")
    chunks = {person: group_chunk(person) for person in ("p0", "p1", "p2", "original:real11.mp4")}
    config = TrainConfig(group="person", persons=str(persons), train_chunks=f"{chunks['p0']},{chunks['original:real11.mp4']}",
                         val_chunks=str(chunks["p1"]), test_chunks=str(chunks["p2"]))
    data = load_data(root, config)
    people = {name: set(split.crops["identity"]) for name, split in data.splits.items()}
    assert people == {"train": {"p0", "original:real11.mp4"}, "val": {"p1"}, "test": {"p2"}}
    assert data.seen_identities == {"p0", "original:real11.mp4"}


def test_people_held_out_by_name_split_a_deepfake_faces_folder_as_the_folds_do(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "faces")
    config = TrainConfig(persons=str(write_persons(tmp_path / "persons.csv")), train_chunks="0-999", val_chunks="", test_chunks="",
                         val_identities="p1", test_identities="p2")
    data = load_data(root, config)
    people = {name: set(split.crops["identity"]) for name, split in data.splits.items()}
    assert people == {"train": {"p0", "original:real11.mp4"}, "val": {"p1"}, "test": {"p2"}}


def test_wrong_persons_input_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "faces")
    with pytest.raises(DataError, match=r"^--group person needs --persons FILE \(python -m dfdc_train.identities FOLDER FILE"):
        read_faces_folder(root, None, group="person")
    with pytest.raises(DataError, match=r"nowhere.csv not found: make it with python -m dfdc_train.identities"):
        read_persons(tmp_path / "nowhere.csv")
    (tmp_path / "bad.csv").write_text("video,who\na.mp4,p0\n")
    with pytest.raises(DataError, match=r"bad.csv: expected the columns original,person, found video,who$"):
        read_persons(tmp_path / "bad.csv")
    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__", lambda name, *args, **kwargs: (
        (_ for _ in ()).throw(ImportError(name)) if name == "dlib" else real_import(name, *args, **kwargs)))
    with pytest.raises(DataError, match=r"^person clustering needs dlib: pip install dlib-bin==20.0.1.post1$"):
        Embedder(tmp_path / "cache")


def test_identities_writes_a_person_per_original_with_a_stand_in_embedder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The command's plumbing (reading, unreadable images, the table, the sheet) with an embedder that returns the
    mean colour: the made-up crops are noise, so every original is its own person except the two painted alike."""
    root = make_folder(tmp_path / "faces")
    for name in ("real03", "real07"):
        (root / "faces_224" / f"{name}.jpg").write_bytes((root / "faces_224" / "real00.jpg").read_bytes())
    (root / "faces_224" / "real05.jpg").write_bytes(b"not an image")

    class MeanColour:
        def __init__(self, cache_dir: Path) -> None:
            pass

        def embed(self, image: np.ndarray) -> np.ndarray:
            return image.reshape(-1, 3).mean(axis=0)

    monkeypatch.setattr(identities, "Embedder", MeanColour)
    out, sheet = tmp_path / "persons.csv", tmp_path / "sheet.jpg"
    assert identities.main([str(root), str(out), "--threshold", "0.01", "--sheet", str(sheet), "--cache-dir", str(tmp_path)]) == 0
    persons = read_persons(out)
    assert sorted(persons) == sorted(f"real{number:02d}.mp4" for number in range(ORIGINALS))
    assert persons["real00.mp4"] == persons["real03.mp4"] == persons["real07.mp4"] == "p0000"
    assert persons["real05.mp4"] == "original:real05.mp4" and len(set(persons.values())) == ORIGINALS - 2
    assert capsys.readouterr().out == f"wrote {out}: {ORIGINALS} originals, {ORIGINALS - 2} people\n"
    assert sheet.stat().st_size > 0


def test_evaluate_reports_people_seen_and_unseen_in_training(tmp_path: Path, checkpoint: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    root = make_folder(tmp_path / "faces")
    persons = write_persons(tmp_path / "persons.csv")
    model, spec = load_model(checkpoint)
    trained_on = sorted({group_chunk(f"real{number:02d}.mp4") for number in (0, 1)})  # by original: p0 and p1 seen
    trained = save_checkpoint(tmp_path / "trained.pt", model, type(spec)(
        spec.arch, spec.input_size, spec.mean, spec.std, {"train_config": {"group": "original", "train_chunks": ",".join(map(str, trained_on))}}))
    out = tmp_path / "scores.csv"
    assert evaluate_command.main([str(trained), str(root), "--persons", str(persons), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    scores = pd.read_csv(out)
    assert list(scores.columns) == ["videoname", "label", "p_fake", "person", "person_seen"]
    person_of = {**PERSONS, "real11.mp4": "original:real11.mp4"}
    seen = {person for original, person in person_of.items() if group_chunk(original) in trained_on}
    assert {"p0", "p1"} <= seen and set(scores.loc[scores["person_seen"] == "seen", "person"]) == seen
    assert set(scores.loc[scores["person_seen"] == "unseen", "person"]) == set(person_of.values()) - seen
    for kind in ("seen", "unseen"):
        part = scores[scores["person_seen"] == kind]
        expected = figures((part["label"] == "FAKE").to_numpy(), part["p_fake"].to_numpy())
        line = next(line for line in printed if line.startswith(f"people {kind} in training"))
        assert f"({part['person'].nunique()}): {len(part)} crops" in line and f"balanced logloss {expected.balanced_logloss:.4f}" in line
    assert read_checkpoint(trained)[0].meta["train_config"]["group"] == "original"


def test_folds_over_a_deepfake_faces_folder_deal_its_people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_folder(tmp_path / "faces")
    persons = write_persons(tmp_path / "persons.csv", {**PERSONS, "real11.mp4": "p3"})
    calls: list[list[str]] = []
    monkeypatch.setattr(folds, "train_main", lambda argv: calls.append(argv) or 3)  # stop after the first fold's command
    assert folds.main([str(root), str(tmp_path / "folds"), "--folds", "2", "--persons", str(persons), "--epochs", "1"]) == 3
    argv = calls[0]
    flag = {name: argv[argv.index(name) + 1] for name in ("--test-identities", "--val-identities", "--persons")}
    assert flag == {"--test-identities": "p0,p2", "--val-identities": "p1", "--persons": str(persons)} and "--epochs" in argv


def test_a_person_split_without_fakes_is_a_one_line_error(tmp_path: Path) -> None:
    rows = [("real00.mp4", "REAL", ""), ("fake000.mp4", "FAKE", "real00.mp4"), ("real01.mp4", "REAL", ""),
            ("fake010.mp4", "FAKE", "real01.mp4"), ("lonely.mp4", "REAL", "")]
    root = make_folder(tmp_path / "faces", rows)
    persons = write_persons(tmp_path / "persons.csv", {"real00.mp4": "p0", "real01.mp4": "p1", "lonely.mp4": "p2"})
    chunk = {person: group_chunk(person) for person in ("p0", "p1", "p2")}
    config = TrainConfig(group="person", persons=str(persons), train_chunks=str(chunk["p0"]), val_chunks=str(chunk["p1"]),
                         test_chunks=str(chunk["p2"]))
    with pytest.raises(DataError, match=rf"^the test split \(chunks {chunk['p2']}\) has no FAKE crops, so it cannot be scored; "
                                        "give it other chunks or people$"):
        load_data(root, config)
