"""Gathering shard metrics: exact combination (never a mean of means), refusals, the report.

These tests write shard folders by hand (metrics.json as `distml infer` writes it), so they
need no model; test_inference_backends.py gathers real shards.
"""

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from distml.cli import main
from distml.errors import DistmlError
from distml.inference.gather import gather_shards
from distml.inference.metrics import ClassificationMetrics, SegmentationMetrics, binary_iou, combine


def test_binary_iou_uses_threshold_and_eps_like_deephealth():
    prediction = np.array([[[0.49, 0.5], [0.9, 0.0]]], dtype=np.float32)
    truth = np.array([[[1.0, 1.0], [0.0, 0.0]]], dtype=np.float32)
    # P = {(0,1), (1,0)}, G = {(0,0), (0,1)}: intersection 1, union 3.
    assert binary_iou(prediction, truth)[0] == pytest.approx((1 + 1e-6) / (3 + 1e-6), abs=1e-12)
    empty = np.zeros((1, 2, 2), dtype=np.float32)
    assert binary_iou(empty, empty)[0] == 1.0  # nothing to find, nothing found


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.0, 1.0), min_size=2, max_size=40),
    st.lists(st.integers(1, 10), min_size=1, max_size=5),
)
def test_segmentation_combination_equals_the_mean_over_all_images(ious, cuts):
    shards, start = [], 0
    for size in cuts:
        chunk = ious[start : start + size]
        start += size
        if chunk:
            shards.append({"task": "segmentation", "images": len(chunk), "iou_sum": float(np.sum(chunk))})
    rest = ious[start:]
    if rest:
        shards.append({"task": "segmentation", "images": len(rest), "iou_sum": float(np.sum(rest))})
    assert combine(shards)["miou"] == pytest.approx(float(np.mean(ious)), abs=1e-9)
    assert combine(shards)["images"] == len(ious)


def test_uneven_shards_are_weighted_by_images_not_averaged():
    shards = [
        {"task": "segmentation", "images": 1, "iou_sum": 1.0},
        {"task": "segmentation", "images": 3, "iou_sum": 0.0},
    ]
    assert combine(shards)["miou"] == pytest.approx(0.25)  # a mean of means would say 0.5


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=1, max_size=60), st.integers(1, 4))
def test_classification_combination_equals_the_unsplit_confusion_matrix(pairs, parts):
    classes = ["a", "b", "c", "d"]

    def summary(rows):
        metrics = ClassificationMetrics(classes)
        if rows:
            truths = np.array([t for t, _ in rows])
            scores = np.eye(4)[[p for _, p in rows]]
            metrics.update(scores, truths)
        return {"task": "classification", **metrics.summary()}

    whole = summary(pairs)
    shards = [summary(pairs[i::parts]) for i in range(parts)]
    gathered = combine(shards)
    assert gathered["confusion_matrix"] == whole["confusion_matrix"]
    assert gathered["accuracy"] == pytest.approx(whole["accuracy"], abs=1e-12)


def test_segmentation_metrics_accumulate_every_batch():
    metrics = SegmentationMetrics()
    ones = np.ones((3, 4, 4), dtype=np.float32)
    metrics.update(ones, ones)
    metrics.update(ones[:1], np.zeros((1, 4, 4), dtype=np.float32))  # a partial last batch counts
    assert metrics.summary()["images"] == 4
    # three perfect images, then one whose 16 predicted pixels miss an empty truth
    assert metrics.summary()["miou"] == pytest.approx((3 + 1e-6 / (16 + 1e-6)) / 4, abs=1e-12)


def write_shard(
    folder: Path, *, images: int, iou_sum: float, task: str = "segmentation", saved: int = 0, part: str | None = None
) -> Path:
    folder.mkdir(parents=True)
    metrics = {"task": task, "backend": "onnxruntime", "images": images, "seconds": 0.5}
    if part:
        metrics["dataset"] = f"/runs/split-dataset/parts/{part}"
    if task == "segmentation":
        metrics |= {"iou_sum": iou_sum, "miou": iou_sum / images}
    else:
        metrics |= {
            "classes": ["0", "1"],
            "confusion_matrix": [[images, 0], [0, 0]],
            "correct": images,
            "accuracy": 1.0,
        }
    (folder / "metrics.json").write_text(json.dumps(metrics))
    for i in range(saved):
        for kind in ("image", "gt", "output", "overlay"):
            Image.fromarray(np.full((4, 4), 255 * (i % 2), np.uint8)).save(folder / f"batch_0_{i}_{kind}.png")
    return folder


def test_gather_writes_metrics_and_a_report_with_samples_from_every_shard(tmp_path):
    a = write_shard(tmp_path / "a", images=2, iou_sum=1.5, saved=3)
    b = write_shard(tmp_path / "b", images=6, iou_sum=3.0, saved=3)
    gathered = gather_shards([a, b], tmp_path / "out", report_images=4)
    assert gathered["miou"] == pytest.approx(4.5 / 8)
    assert [s["images"] for s in gathered["shards"]] == [2, 6]
    report = (tmp_path / "out" / "report.html").read_text()
    assert report.count("<img") == 16
    assert report.count("batch_0_0_image.png") == 2  # round-robin: both shards show


def test_the_report_names_each_shard_by_its_part_file_as_kfp_calls_every_folder_shard(tmp_path):
    first = write_shard(tmp_path / "iteration-0" / "shard", images=2, iou_sum=1.0, part="part-000-lesions.yml")
    second = write_shard(tmp_path / "iteration-1" / "shard", images=2, iou_sum=1.0, part="part-001-lesions.yml")
    unnamed = write_shard(tmp_path / "by-hand", images=2, iou_sum=1.0)  # metrics.json without its part
    gather_shards([first, second, unnamed], tmp_path / "out")
    report = (tmp_path / "out" / "report.html").read_text()
    rows = re.findall(r"<tr><td(?: title='[^']*')?>([^<]*)</td>", report)
    assert rows == ["part-000-lesions.yml", "part-001-lesions.yml", "by-hand"]


def test_gather_refuses_a_shard_folder_without_metrics_naming_it(tmp_path):
    good = write_shard(tmp_path / "good", images=2, iou_sum=1.0)
    (tmp_path / "failed-shard").mkdir()
    with pytest.raises(DistmlError, match="no metrics.json") as err:
        gather_shards([good, tmp_path / "failed-shard"], tmp_path / "out")
    assert "failed-shard" in str(err.value)
    assert not (tmp_path / "out" / "metrics.json").exists()


def test_gather_refuses_mixed_tasks(tmp_path):
    seg = write_shard(tmp_path / "seg", images=2, iou_sum=1.0)
    cls = write_shard(tmp_path / "cls", images=2, iou_sum=0.0, task="classification")
    with pytest.raises(DistmlError, match="task 'classification' differs") as err:
        gather_shards([seg, cls], tmp_path / "out")
    assert "cls" in str(err.value)


def test_cli_gather_reports_and_fails_with_one_line(tmp_path):
    a = write_shard(tmp_path / "a", images=4, iou_sum=2.0)
    ok = CliRunner().invoke(main, ["gather", str(a), "--out", str(tmp_path / "out")])
    assert ok.exit_code == 0 and "MIoU 0.500000 over 4 images" in ok.output
    bad = CliRunner().invoke(main, ["gather", str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "o2")])
    assert bad.exit_code == 1 and bad.output.startswith("error: ") and "missing" in bad.output
    assert isinstance(bad.exception, SystemExit)  # a one-line error; CliRunner keeps a traceback out of output


def test_gather_refuses_the_same_shard_twice(tmp_path):
    a = write_shard(tmp_path / "a", images=2, iou_sum=1.0)
    with pytest.raises(DistmlError, match="given twice") as err:
        gather_shards([a, tmp_path / "." / "a"], tmp_path / "out")
    assert str(a) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_gather_refuses_shards_of_different_splits_and_incomplete_metrics(tmp_path):
    a = write_shard(tmp_path / "a", images=2, iou_sum=1.0)
    b = write_shard(tmp_path / "b", images=2, iou_sum=1.0)
    for folder, split in ((a, "test"), (b, "validation")):
        metrics = json.loads((folder / "metrics.json").read_text())
        (folder / "metrics.json").write_text(json.dumps({**metrics, "split": split}))
    with pytest.raises(DistmlError, match="split 'validation' differs from 'test'"):
        gather_shards([a, b], tmp_path / "out")
    c = write_shard(tmp_path / "c", images=2, iou_sum=1.0)
    metrics = json.loads((c / "metrics.json").read_text())
    del metrics["iou_sum"]
    (c / "metrics.json").write_text(json.dumps(metrics))
    with pytest.raises(DistmlError, match="lacks iou_sum") as err:
        gather_shards([c], tmp_path / "out")
    assert str(c) in str(err.value)


def test_gather_replaces_its_own_earlier_result_but_not_other_files(tmp_path):
    a = write_shard(tmp_path / "a", images=4, iou_sum=2.0)
    gather_shards([a], tmp_path / "out")
    b = write_shard(tmp_path / "b", images=4, iou_sum=4.0)
    assert gather_shards([a, b], tmp_path / "out")["miou"] == pytest.approx(0.75)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["metrics.json", "report.html"]
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(DistmlError, match="not empty"):
        gather_shards([a], tmp_path / "other")
    assert sorted(p.name for p in (tmp_path / "other").iterdir()) == ["notes.txt"]


def test_gather_never_replaces_a_shard_folder(tmp_path):
    a = write_shard(tmp_path / "a", images=4, iou_sum=2.0)
    b = write_shard(tmp_path / "b", images=4, iou_sum=4.0)
    before = (b / "metrics.json").read_bytes()
    with pytest.raises(DistmlError, match="--out is a shard folder being gathered"):
        gather_shards([a, b], b)
    with pytest.raises(DistmlError, match="not an earlier output of this command"):
        gather_shards([a], b)  # a shard folder not gathered this time is not ours either
    with pytest.raises(DistmlError, match="--out is a shard folder being gathered, or holds one"):
        gather_shards([a, b], tmp_path)
    assert (b / "metrics.json").read_bytes() == before and sorted(os.listdir(b)) == ["metrics.json"]


def test_a_failed_regather_keeps_the_earlier_result(tmp_path, monkeypatch):
    import distml.inference.gather as gather_module

    a = write_shard(tmp_path / "a", images=4, iou_sum=2.0)
    gather_shards([a], tmp_path / "out")
    earlier = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}

    def failing_report(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gather_module, "write_report", failing_report)
    with pytest.raises(OSError, match="No space left"):
        gather_shards([a, write_shard(tmp_path / "b", images=4, iou_sum=4.0)], tmp_path / "out")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == earlier
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
