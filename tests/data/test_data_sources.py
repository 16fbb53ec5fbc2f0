"""load_data sources, npz shards, and the load_data / split_dataset components on KFP's local runner."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from distml.data.dtd import check_files, read_dataset
from distml.data.sources import KERAS_ORIGIN_ENV, load_arrays, load_data, shard_arrays
from distml.data.synth import synth_lesions
from distml.errors import DatasetError
from distml.folders import read_data_info


def test_digits_become_keras_layout_arrays(tmp_path):
    info = load_data("sklearn:digits", tmp_path / "digits")
    arrays = load_arrays(tmp_path / "digits")
    assert info.format == "npz" and info.task == "classification"
    assert arrays["x_train"].shape[1:] == (8, 8, 1) and arrays["x_train"].dtype == np.float32
    assert len(arrays["x_train"]) + len(arrays["x_test"]) == 1797
    assert arrays["x_train"].min() >= 0.0 and arrays["x_train"].max() <= 1.0
    counts = {"train": len(arrays["x_train"]), "test": len(arrays["x_test"])}
    assert read_data_info(tmp_path / "digits").counts == counts


def test_dtd_source_copies_referenced_files_into_a_self_contained_folder(tmp_path):
    dataset_file = synth_lesions(tmp_path / "src", images=6, size=8)
    load_data(f"dtd:{dataset_file}", tmp_path / "copy")
    copied = read_dataset(tmp_path / "copy" / "dataset.yml")
    check_files(copied)
    assert copied == read_dataset(dataset_file)
    load_data(f"dtd:{dataset_file}", tmp_path / "inplace", copy_files=False)
    in_place = read_dataset(tmp_path / "inplace" / "dataset.yml")
    assert Path(in_place.images[0].location).is_absolute()
    check_files(in_place)
    assert not (tmp_path / "inplace" / "images").exists()


def test_a_failed_load_leaves_nothing(tmp_path):
    dataset_file = synth_lesions(tmp_path / "src", images=3, size=8)
    (tmp_path / "src" / "images" / "lesion_00002.png").unlink()
    with pytest.raises(DatasetError, match="lesion_00002.png does not exist"):
        load_data(f"dtd:{dataset_file}", tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_npz_source_is_checked(tmp_path):
    np.savez(tmp_path / "xy.npz", x=np.zeros((4, 2)), y=np.zeros(4))
    with pytest.raises(DatasetError, match="no train/test split"):
        load_data(f"npz:{tmp_path / 'xy.npz'}", tmp_path / "out")
    np.savez(
        tmp_path / "ok.npz", x_train=np.zeros((4, 2)), y_train=np.arange(4), x_test=np.ones((2, 2)), y_test=np.arange(2)
    )
    assert load_data(f"npz:{tmp_path / 'ok.npz'}", tmp_path / "out").counts == {"train": 4, "test": 2}


def test_npz_classes_cover_every_label_index_of_both_splits(tmp_path):
    np.savez(
        tmp_path / "gaps.npz",
        x_train=np.zeros((3, 2)),
        y_train=np.array([0, 2, 2]),
        x_test=np.zeros((2, 2)),
        y_test=np.array([4, 0]),
    )
    assert load_data(f"npz:{tmp_path / 'gaps.npz'}", tmp_path / "gaps").classes == ["0", "1", "2", "3", "4"]
    np.savez(
        tmp_path / "neg.npz",
        x_train=np.zeros((2, 2)),
        y_train=np.array([0, -1]),
        x_test=np.zeros((1, 2)),
        y_test=np.array([0]),
    )
    with pytest.raises(DatasetError, match="0-based indices, found -1"):
        load_data(f"npz:{tmp_path / 'neg.npz'}", tmp_path / "neg")
    assert not (tmp_path / "neg").exists()


def test_keras_sources_fail_fast_offline_naming_local_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras-cache"))
    monkeypatch.setenv(KERAS_ORIGIN_ENV, "http://127.0.0.1:9")  # discard port: nothing listens
    started = time.monotonic()
    with pytest.raises(DatasetError, match="cannot be reached.*sklearn:digits"):
        load_data("keras:fashion_mnist", tmp_path / "out")
    assert time.monotonic() - started < 5
    assert not (tmp_path / "out").exists()


def test_unknown_source_lists_the_known_ones(tmp_path):
    with pytest.raises(DatasetError, match="unknown data source 'csv:x'.*sklearn:digits"):
        load_data("csv:x", tmp_path / "out")


def test_shards_cut_training_rows_by_the_deephealth_rule(tmp_path):
    load_data("sklearn:digits", tmp_path / "digits")
    arrays = load_arrays(tmp_path / "digits")
    paths = shard_arrays(tmp_path / "digits", 4, tmp_path / "shards")
    assert [p.name for p in paths] == [f"shard-00{i}-of-004.npz" for i in range(4)]
    n = len(arrays["x_train"])
    sizes = [len(np.load(p)["x_train"]) for p in paths]
    assert sizes == [n // 4] * 3 + [n - 3 * (n // 4)]
    stacked = np.concatenate([np.load(p)["y_train"] for p in paths])
    assert np.array_equal(stacked, arrays["y_train"])
    assert all(len(np.load(p)["x_test"]) == len(arrays["x_test"]) for p in paths)


def test_shard_folders_are_loaded_data_folders_of_their_own(tmp_path):
    from distml.data.sources import shard_data_folders

    load_data("sklearn:digits", tmp_path / "digits")
    names = shard_data_folders(tmp_path / "digits", 3, tmp_path / "shards")
    assert names == ["shard-000-of-003", "shard-001-of-003", "shard-002-of-003"]
    infos = [read_data_info(tmp_path / "shards" / name) for name in names]
    total = len(load_arrays(tmp_path / "digits")["x_train"])
    assert [info.counts["train"] for info in infos] == [total // 3, total // 3, total - 2 * (total // 3)]
    assert all(info.format == "npz" and info.name.endswith(name) for info, name in zip(infos, names, strict=True))
    assert not list((tmp_path / "shards").glob("*.npz"))
