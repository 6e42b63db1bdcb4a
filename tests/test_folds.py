"""The k-fold driver deals people so that every one is tested exactly once, and ranks recipes by mean and spread."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dfdc_train.folds import fold_identities, main, summarise
from dfdc_train.layout import DataError


def test_every_person_is_tested_once_and_never_trained_validated_or_tested_twice_in_a_fold() -> None:
    people = [f"p{n:02d}" for n in range(11)] + ["", "p03"]  # DFDC's empty identity and repeats do not count
    tested = []
    for fold in range(3):
        test, val = fold_identities(people, 3, fold)
        assert test and val and not set(test) & set(val)
        tested += test
    assert sorted(tested) == sorted(set(people) - {""})
    assert fold_identities(people, 3, 0) == (["p00", "p03", "p06", "p09"], ["p01", "p07"])
    with pytest.raises(DataError, match=r"--folds 4 needs K >= 2 and at least 2K identities; the index has 5"):
        fold_identities(["a", "b", "c", "d", "e"], 4, 0)


def test_summary_is_the_mean_and_sample_standard_deviation_of_each_figure() -> None:
    rows = pd.DataFrame({"test_auc": [0.7, 0.8, 0.9], "test_logloss": [0.6, 0.5, 0.4],
                         "test_balanced_logloss": [0.7, 0.6, 0.5], "held_out_method_auc": [0.5, 0.6, 0.7]})
    summary = summarise(rows).set_index("figure")
    assert summary.loc["test_auc", "mean"] == pytest.approx(0.8) and summary.loc["test_auc", "std"] == pytest.approx(0.1)
    assert summary.loc["test_logloss", "mean"] == pytest.approx(0.5)
    assert summary.loc["test_balanced_logloss", "mean"] == pytest.approx(0.6)


@pytest.mark.parametrize("flags", [["--teacher-scores", "scores.csv"], ["--teacher-scores=scores.csv", "--teacher-weight", "0.3"]])
def test_folds_refuse_a_teacher_whose_one_file_would_leak_every_folds_held_out_people(
        flags: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main([str(tmp_path), str(tmp_path / "out"), "--folds", "3", *flags]) == 2
    assert capsys.readouterr().err == (
        "error: --teacher-scores cannot be used with folds: one scores file serves every fold, so a teacher that trained on this "
        "folder has seen each fold's held-out people; distil within one dfdc_train.train run\n")
    assert not (tmp_path / "out").exists()
