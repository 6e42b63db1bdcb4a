"""Chunk lists, shards, splits, real/fake pairing, the samplers and their distributed shares, the config flags."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from dfdc_infer.config import add_dataclass_arguments, dataclass_from_args
from dfdc_train.config import ExtractConfig, TrainConfig
from dfdc_train.crop_index import CROP_COLUMNS
from dfdc_train.layout import Chunk, DataError, format_chunk_spec, parse_chunk_spec, parse_shard, shard_chunks
from dfdc_train.sampling import build_pairing, epoch_batches, rank_share
from dfdc_train.splits import split_by_chunk


def crop_table(videos: dict[str, tuple[str, str | None, int, list[int]]]) -> pd.DataFrame:
    """Crop rows from ``{video: (label, original, chunk, frames)}``, one face per frame."""
    rows = [{"video": video, "label": label, "original": original, "chunk": chunk, "frame": frame, "face": 0,
             "x1": 10.0, "y1": 10.0, "x2": 50.0, "y2": 60.0, "score": 1.0, "crop_x1": 0, "crop_y1": 0, "crop_x2": 65, "crop_y2": 65,
             "path": f"crops/{video}/{frame}.png"}
            for video, (label, original, chunk, frames) in videos.items() for frame in frames]
    return pd.DataFrame(rows, columns=CROP_COLUMNS)


def video_table(crops: pd.DataFrame, extra: list[tuple[str, str, str | None, int]] = ()) -> pd.DataFrame:
    """The videos of ``crops`` plus ``extra`` (video, label, original, chunk) videos without crops."""
    first = crops.drop_duplicates("video")[["video", "label", "original", "chunk"]]
    return pd.concat([first, pd.DataFrame(extra, columns=["video", "label", "original", "chunk"])], ignore_index=True)


FAMILY = {
    "r1.mp4": ("REAL", None, 0, [0, 10, 20]),
    "f1a.mp4": ("FAKE", "r1.mp4", 0, [0, 10, 20]),
    "f1b.mp4": ("FAKE", "r1.mp4", 0, [10, 20, 30]),
    "r2.mp4": ("REAL", None, 1, [0, 10]),
    "f2a.mp4": ("FAKE", "r2.mp4", 1, [0, 10]),
    "r3.mp4": ("REAL", None, 1, [0]),  # no fake
    "orphan.mp4": ("FAKE", "gone.mp4", 1, [0]),  # its original has no crops
    "apart.mp4": ("FAKE", "r2.mp4", 1, [50]),  # no frame in common with r2
}


def test_chunk_specs_round_trip_and_bad_ones_say_why() -> None:
    assert parse_chunk_spec("0-3, 7,9-10") == {0, 1, 2, 3, 7, 9, 10}
    assert parse_chunk_spec("") == frozenset()
    assert format_chunk_spec({0, 1, 2, 3, 7, 9, 10}) == "0-3,7,9-10"
    with pytest.raises(ValueError, match="bad chunk list 'a-b'"):
        parse_chunk_spec("a-b")
    with pytest.raises(ValueError, match="the end is before the start"):
        parse_chunk_spec("5-2")


def test_shards_split_chunks_by_number_modulo_n() -> None:
    chunks = [Chunk(number, None) for number in (0, 1, 2, 3, 4, 7)]  # type: ignore[arg-type]
    shares = [[chunk.number for chunk in shard_chunks(chunks, (k, 3))] for k in range(3)]
    assert shares == [[0, 3], [1, 4, 7], [2]]
    assert parse_shard("1/3") == (1, 3)
    with pytest.raises(ValueError, match="expected k/N"):
        parse_shard("3/3")


def test_default_split_is_dfdcs_40_5_5() -> None:
    crops = crop_table({f"r{c}.mp4": ("REAL", None, c, [0]) for c in range(50)})
    splits = split_by_chunk(crops, video_table(crops), TrainConfig())
    assert [len(splits[name].videos) for name in ("train", "val", "test")] == [40, 5, 5]
    assert splits["val"].chunks == frozenset(range(40, 45))


def test_an_original_and_its_fake_in_two_splits_is_refused() -> None:
    crops = crop_table(FAMILY)
    config = TrainConfig(train_chunks="0", val_chunks="1", test_chunks="")
    assert set(split_by_chunk(crops, video_table(crops), config)) == {"train", "val"}
    moved = video_table(crops, [("late.mp4", "FAKE", "r1.mp4", 1)])
    with pytest.raises(DataError, match=r"late.mp4 \(chunk 1, val split\) is a fake of r1.mp4 \(chunk 0, train split\): "
                                        "an original and its fakes must be in the same split"):
        split_by_chunk(crops, moved, config)


def test_empty_or_overlapping_splits_are_clear_errors() -> None:
    crops = crop_table(FAMILY)
    with pytest.raises(DataError, match=r"the val split \(chunks 40-44\) has no face crops; extracted chunks: 0-1; set --val-chunks$"):
        split_by_chunk(crops, video_table(crops), TrainConfig(train_chunks="0-1", test_chunks=""))
    with pytest.raises(DataError, match="chunks 1 are in both the train and the val split"):
        split_by_chunk(crops, video_table(crops), TrainConfig(train_chunks="0-1", val_chunks="1"))


def test_pairing_matches_frames_and_counts_what_it_leaves_out() -> None:
    pairing = build_pairing(crop_table(FAMILY))
    by_video = {original.video: original for original in pairing.originals}
    assert sorted(by_video) == ["r1.mp4", "r2.mp4", "r3.mp4"]
    assert {fake: sorted(frame for frame, _ in keys) for fake, keys in by_video["r1.mp4"].fakes.items()} == {
        "f1a.mp4": [0, 10, 20], "f1b.mp4": [10, 20]}
    assert (pairing.fakes_without_original, pairing.fakes_without_shared_frame) == (1, 1)
    assert [original.video for original in pairing.usable("pairs")] == ["r1.mp4", "r2.mp4"]
    assert len(pairing.usable("synthetic")) == 3
    assert pairing.describe("pairs") == ("2 originals paired with 3 fakes; left out: 1 fakes whose original is missing, "
                                         "1 fakes without a frame in common with their original, 1 originals without a fake")


def test_pairs_sampler_covers_every_original_once_with_a_fake_of_it_at_the_same_frame() -> None:
    crops = crop_table(FAMILY)
    pairing = build_pairing(crops)
    for epoch in range(5):
        batches = epoch_batches(pairing, "pairs", 1, seed=3, epoch=epoch)
        groups = [group for batch in batches for group in batch]
        assert len(batches) == 2 and sorted(crops.loc[g.items[0].row, "video"] for g in groups) == ["r1.mp4", "r2.mp4"]
        for group in groups:
            real, fake = (crops.loc[item.row] for item in group.items)
            assert [item.label for item in group.items] == [0.0, 1.0]
            assert fake["original"] == real["video"] and fake["frame"] == real["frame"]
    assert epoch_batches(pairing, "pairs", 2, 3, 0) == epoch_batches(pairing, "pairs", 2, 3, 0)  # a function of (seed, epoch)
    seen = {crops.loc[g.items[1].row, "video"] for e in range(20) for b in epoch_batches(pairing, "pairs", 2, 3, e) for g in b}
    assert seen == {"f1a.mp4", "f1b.mp4", "f2a.mp4"}  # a random fake each time


def test_all_fakes_and_synthetic_samplers() -> None:
    crops = crop_table(FAMILY)
    pairing = build_pairing(crops)
    for batch in epoch_batches(pairing, "all-fakes", 8, seed=0, epoch=0):
        for group in batch:
            rows = crops.loc[[item.row for item in group.items]]
            assert rows["frame"].nunique() == 1 and rows["label"].tolist()[0] == "REAL"
            assert set(rows["original"].iloc[1:]) == {rows["video"].iloc[0]}
    frames_of_r1 = {crops.loc[g.items[0].row, "frame"]: len(g.items) for e in range(30)
                    for b in epoch_batches(pairing, "all-fakes", 8, 0, e) for g in b if crops.loc[g.items[0].row, "video"] == "r1.mp4"}
    assert frames_of_r1 == {0: 2, 10: 3, 20: 3}  # frame 0 only has f1a; 10 and 20 have both fakes
    for epoch in range(10):  # a fixed number of fakes per original: every group one size, each fake once before any twice
        for group in (g for b in epoch_batches(pairing, "all-fakes", 8, 0, epoch, fakes_per_original=3) for g in b):
            rows = crops.loc[[item.row for item in group.items]]
            assert len(group.items) == 4 and rows["frame"].nunique() == 1 and set(rows["original"].iloc[1:]) == {rows["video"].iloc[0]}
            counts = rows["video"].iloc[1:].value_counts()
            available = 2 if (rows["video"].iloc[0], rows["frame"].iloc[0]) in {("r1.mp4", 10), ("r1.mp4", 20)} else 1
            assert len(counts) == available and counts.max() - counts.min() <= 1
    with pytest.raises(ValueError, match="fakes_per_original must be >= 0, got -1"):
        TrainConfig(sampler="all-fakes", fakes_per_original=-1)
    with pytest.raises(ValueError, match="the pairs sampler would ignore it"):
        TrainConfig(fakes_per_original=4)
    methods = ("boundary", "face-swap", "self-blend")
    made = set()
    for epoch in range(10):
        [batch] = epoch_batches(pairing, "synthetic", 8, seed=0, epoch=epoch, methods=methods)
        assert len(batch) == 3
        for group in batch:
            real, fake = group.items
            assert real.row == fake.row and real.method is None and fake.method in methods and fake.label == 1.0
            made.add(fake.method)
    assert made == set(methods)
    with pytest.raises(ValueError, match="on-the-fly fakes need at least one fake method"):
        epoch_batches(pairing, "synthetic", 8, seed=0, epoch=0)
    mixed = [group.items[1] for e in range(20) for batch in epoch_batches(pairing, "pairs", 8, 0, e, ("reencode",), 0.5) for group in batch]
    assert 0 < sum(item.method == "reencode" for item in mixed) < len(mixed)  # some groups get an on-the-fly fake instead
    assert all(item.method is None or crops.loc[item.row, "label"] == "REAL" for item in mixed)


def test_rank_shares_are_equal_whole_batches_covering_the_epoch() -> None:
    pairing = build_pairing(crop_table({f"r{i}.mp4": ("REAL", None, 0, [0]) for i in range(7)}))
    batches = epoch_batches(pairing, "synthetic", 2, seed=1, epoch=0, methods=("self-blend",))
    assert [len(batch) for batch in batches] == [2, 2, 2, 1]
    shares = [rank_share(batches, rank, 3) for rank in range(3)]
    assert [len(share) for share in shares] == [2, 2, 2]
    assert [batch for share in shares for batch in share[:1]] + [shares[0][1]] == batches  # rank r takes batches r, r+3, ...
    assert shares[1][1] == batches[0] and shares[2][1] == batches[1]  # padding wraps around
    assert rank_share(batches, 0, 1) == batches


def test_config_flags_map_onto_the_dataclasses() -> None:
    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, TrainConfig, "training")
    args = parser.parse_args(["--epochs", "3", "--zoom-range", "1.2", "1.3", "--no-amp", "--sampler", "synthetic", "--input-size", "96"])
    config = dataclass_from_args(TrainConfig, args)
    assert (config.epochs, config.zoom_range, config.amp, config.sampler, config.input_size) == (3, (1.2, 1.3), False, "synthetic", 96)
    assert config.lr == TrainConfig().lr and TrainConfig.from_dict(config.to_dict()) == config
    resumed = dataclass_from_args(TrainConfig, parser.parse_args(["--lr", "0.01"]), base=config)
    assert (resumed.lr, resumed.epochs) == (0.01, 3)
    extract_parser = argparse.ArgumentParser()
    add_dataclass_arguments(extract_parser, ExtractConfig, "extraction")
    assert dataclass_from_args(ExtractConfig, extract_parser.parse_args(["--shard", "2/4"])).shard == (2, 4)
    for bad, message in [({"flip_prob": 1.5}, r"must be in \[0, 1\]: flip_prob=1.5"), ({"epochs": 0}, "must be >= 1: epochs=0"),
                         ({"train_chunks": "x"}, "bad chunk list 'x'"), ({"zoom_range": (1.3, 1.2)}, "zoom_range must be")]:
        with pytest.raises(ValueError, match=message):
            TrainConfig(**bad)



PEOPLE = {  # video: (label, original, chunk, identity, method, donor)
    "a.mp4": ("REAL", None, 0, "ann", "", ""), "a-swap.mp4": ("FAKE", "a.mp4", 0, "ann", "face-swap", "bob"),
    "a-warp.mp4": ("FAKE", "a.mp4", 0, "ann", "part-warp", ""),
    "b.mp4": ("REAL", None, 0, "bob", "", ""), "b-blend.mp4": ("FAKE", "b.mp4", 0, "bob", "self-blend", ""),
    "c.mp4": ("REAL", None, 1, "cid", "", ""), "c-swap.mp4": ("FAKE", "c.mp4", 1, "cid", "face-swap", "ann"),
    "d.mp4": ("REAL", None, 0, "dee", "", ""), "d-warp.mp4": ("FAKE", "d.mp4", 0, "dee", "part-warp", ""),
}


def people_table() -> pd.DataFrame:
    crops = crop_table({video: (label, original, chunk, [0, 10]) for video, (label, original, chunk, *_) in PEOPLE.items()})
    for position, name in enumerate(("identity", "method", "donor"), start=3):
        crops[name] = [PEOPLE[video][position] for video in crops["video"]]
    return crops


def videos_of(splits: dict, name: str) -> list[str]:
    return sorted(splits[name].videos["video"])


def test_identities_and_methods_held_out_keep_originals_with_their_fakes() -> None:
    crops = people_table()
    config = TrainConfig(train_chunks="0", val_chunks="1", test_chunks="", test_identities="bob", test_methods="part-warp")
    splits = split_by_chunk(crops, crops.drop_duplicates("video"), config)
    assert videos_of(splits, "test") == ["b-blend.mp4", "b.mp4"]  # bob's original with its fake, from chunk 0
    assert videos_of(splits, "train") == ["a.mp4", "d.mp4"]  # no part-warp, no fake with bob's face swapped in
    assert videos_of(splits, "val") == ["c-swap.mp4", "c.mp4"]
    assert len(splits["test"].crops) == 4 and set(splits["train"].crops["identity"]) == {"ann", "dee"}
    by_identity = split_by_chunk(crops, crops.drop_duplicates("video"), TrainConfig(train_chunks="0-1", val_chunks="", test_chunks="",
                                                                        val_identities="dee", test_identities="ann,cid"))
    assert videos_of(by_identity, "val") == ["d-warp.mp4", "d.mp4"]
    assert videos_of(by_identity, "test") == ["a-swap.mp4", "a-warp.mp4", "a.mp4", "c-swap.mp4", "c.mp4"]
    assert videos_of(by_identity, "train") == ["b-blend.mp4", "b.mp4"]


def test_held_out_names_that_empty_a_split_or_do_not_exist_are_one_line_errors() -> None:
    crops = people_table()
    videos = crops.drop_duplicates("video")
    base = {"train_chunks": "0", "val_chunks": "1", "test_chunks": ""}
    cases = [
        ({"test_identities": "eve"}, "--val-identities/--test-identities: unknown identity eve; the crop index has ann, bob, cid, dee"),
        ({"val_methods": "deepfake"}, "--val-methods/--test-methods: unknown method deepfake; the crop index has face-swap, part-warp, self-blend"),
        ({"test_identities": "ann,bob,dee"}, r"the train split \(chunks 0\) has no face crops after holding out identities ann,bob,dee; "
                                             r"extracted chunks: 0-1; set --train-chunks or hold out fewer"),
        ({"test_identities": "cid", "test_methods": "face-swap"}, r"the val split \(chunks 1\) has no face crops after holding out "
                                                                  r"identities cid and methods face-swap; .* or hold out fewer"),
        ({"val_identities": "ann", "test_identities": "ann"}, "identities ann are held out for both validation and test"),
    ]
    for settings, message in cases:
        with pytest.raises(DataError, match=message):
            split_by_chunk(crops, videos, TrainConfig(**{**base, **settings}))
    bare = crop_table(FAMILY)
    with pytest.raises(DataError, match="unknown identity ann; the crop index has no identity column"):
        split_by_chunk(bare, video_table(bare), TrainConfig(**base, test_identities="ann"))
