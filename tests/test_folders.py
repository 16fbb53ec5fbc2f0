"""The folder contracts (distml.folders): a round trip per contract, and one policy for a bad file.

A missing file is "not a <kind of folder> (no <file>)" naming the folder; a file that cannot be
read, is not JSON or is no JSON object names the file; both say what to do. Before this module the
readers answered a binary metrics.json, a directory in place of one, or broken JSON in three ways,
some of them with a traceback.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from distml import folders
from distml.data.sources import load_data, shard_data_folders
from distml.errors import DatasetError, DistmlError
from distml.inference.ecvl_backend import EcvlBackend
from distml.inference.gather import gather_shards, gather_step
from distml.selection.select import select_model
from distml.staging import staged_file, staged_files, write_text_atomic

MODEL_INFO = {
    "architecture": "mlp",
    "task": "classification",
    "input_shape": [8, 8, 1],
    "classes": ["0", "1"],
    "framework": "tensorflow",
    folders.EDDL_REFUSED_KEY: None,
}
SHARD = {
    "task": "classification",
    "images": 3,
    "correct": 2,
    "classes": ["0", "1"],
    "confusion_matrix": [[2, 1], [0, 0]],
}
GATHERED = {**SHARD, "accuracy": 2 / 3, "shards": [{"folder": "a", "images": 3}]}
DATA_INFO = folders.ArtifactInfo(format="npz", file="data.npz", source="npz:x.npz", name="x", task="classification")
PARTS = folders.PartsManifest(
    dataset="lesions", parts=[folders.PartInfo(0, "part-000-lesions.yml", 4, {"test": 4})], roots=[".."]
)

#: (contract, writer of a good folder, reader) for every folder contract.
CONTRACTS = {
    "data folder": (folders.DATA_METADATA, lambda f: folders.write_data_info(f, DATA_INFO), folders.read_data_info),
    "parts folder": (
        folders.PARTS_MANIFEST,
        lambda f: folders.write_parts_manifest(f, PARTS),
        folders.read_parts_manifest,
    ),
    "Model folder model.json": (
        folders.MODEL_INFO,
        lambda f: folders.write_model_info(f, MODEL_INFO),
        folders.read_model_info,
    ),
    "Model folder metrics.json": (
        folders.MODEL_METRICS,
        lambda f: folders.write_model_metrics(f, {"workers": 2, "test_accuracy": 0.5}),
        folders.read_model_metrics,
    ),
    "shard folder": (
        folders.SHARD_METRICS,
        lambda f: folders.write_shard_metrics(f, SHARD),
        folders.read_shard_metrics,
    ),
    "gathered folder": (
        folders.GATHERED_METRICS,
        lambda f: folders.write_gathered_metrics(f, GATHERED),
        folders.read_gathered_metrics,
    ),
}
EXPECTED = {
    "data folder": DATA_INFO,
    "parts folder": PARTS,
    "Model folder model.json": MODEL_INFO,
    "Model folder metrics.json": {"workers": 2, "test_accuracy": 0.5},
    "shard folder": SHARD,
    "gathered folder": GATHERED,
}
#: Bad content of a contract's file, and what the error must say about it.
MALFORMED = {
    "not JSON": (b"{not json", "as JSON"),
    "not UTF-8": (b"\xff\xfe\x00{", "not UTF-8"),
    "a JSON list": (b"[1, 2]", "must be a JSON object, not list"),
    "a directory": (None, "cannot read"),
}


@pytest.mark.parametrize("name", CONTRACTS)
def test_each_contract_reads_back_what_it_wrote(tmp_path, name):
    contract, write, read = CONTRACTS[name]
    written = write(tmp_path)
    assert written == tmp_path / contract.name
    assert read(tmp_path) == EXPECTED[name]
    assert stat.S_IMODE(written.stat().st_mode) == 0o644
    assert os.listdir(tmp_path) == [contract.name], "the atomic writer left a temporary file"


@pytest.mark.parametrize("name", CONTRACTS)
def test_a_missing_file_names_the_folder_the_file_and_what_to_do(tmp_path, name):
    contract, _, read = CONTRACTS[name]
    with pytest.raises(DistmlError) as caught:
        read(tmp_path)
    assert caught.value.where == str(tmp_path)
    assert f"no {contract.name}" in caught.value.what and contract.folder_kind in caught.value.what
    assert caught.value.hint == contract.remedy


@pytest.mark.parametrize("bad", MALFORMED)
@pytest.mark.parametrize("name", CONTRACTS)
def test_a_malformed_file_names_the_file_and_what_to_do(tmp_path, name, bad):
    contract, _, read = CONTRACTS[name]
    content, said = MALFORMED[bad]
    if content is None:
        (tmp_path / contract.name).mkdir()
    else:
        (tmp_path / contract.name).write_bytes(content)
    with pytest.raises(DistmlError) as caught:
        read(tmp_path)
    assert str(tmp_path / contract.name) in caught.value.where
    assert said in caught.value.what
    assert caught.value.hint == contract.remedy
    assert isinstance(caught.value, DatasetError) == (contract.error is DatasetError)


def test_the_readers_of_selection_gathering_and_the_ecvl_backend_follow_the_policy(tmp_path):
    """Each answered some bad file with a traceback (UnicodeDecodeError, IsADirectoryError, JSONDecodeError)."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "metrics.json").write_bytes(b"\xff\xfe")
    with pytest.raises(DistmlError, match="metrics.json: not UTF-8"):
        select_model([model])
    shard = tmp_path / "shard"
    (shard / "metrics.json").mkdir(parents=True)
    with pytest.raises(DistmlError, match="cannot read metrics.json"):
        gather_shards([shard], tmp_path / "out")
    (model / "model.json").write_text("{not json")
    with pytest.raises(DistmlError, match="cannot read model.json as JSON") as caught:
        EcvlBackend._eddl_file_of(model)
    assert caught.value.hint == folders.MODEL_INFO.remedy


def test_part_and_metadata_entries_may_not_leave_their_folder(tmp_path):
    folders.write_parts_manifest(tmp_path, folders.PartsManifest("d", [folders.PartInfo(0, "../x.yml", 1, {})], []))
    with pytest.raises(DatasetError, match="points outside its folder"):
        folders.read_parts_manifest(tmp_path)
    folders.write_data_info(tmp_path, folders.ArtifactInfo("npz", "/etc/passwd", "s", "n", "classification"))
    with pytest.raises(DatasetError, match="not a path inside the folder"):
        folders.read_data_info(tmp_path)


def test_a_shard_folder_is_never_taken_for_an_earlier_gather(tmp_path):
    folders.write_shard_metrics(tmp_path / "shard", SHARD)
    folders.write_gathered_metrics(tmp_path / "gathered", GATHERED)
    assert not folders.is_gathered_folder(tmp_path / "shard")
    assert folders.is_gathered_folder(tmp_path / "gathered")
    with pytest.raises(DistmlError, match="no `shards` list"):
        folders.read_gathered_metrics(tmp_path / "shard")


def test_staged_file_leaves_the_old_file_whole_and_no_scratch_on_failure(tmp_path):
    target = write_text_atomic(tmp_path / "dataset.yml", "old\n")
    with pytest.raises(RuntimeError), staged_file(target) as scratch:
        scratch.write_text("half")
        raise RuntimeError("writer died")
    assert target.read_text() == "old\n"
    assert os.listdir(tmp_path) == ["dataset.yml"]


def test_staged_files_change_nothing_until_all_are_written_and_the_manifest_comes_last(tmp_path, monkeypatch):
    (tmp_path / "keep.txt").write_text("other")
    with pytest.raises(RuntimeError), staged_files(tmp_path, last="parts.json") as staging:
        (staging / "a.yml").write_text("a")
        raise RuntimeError("writer died")
    assert sorted(os.listdir(tmp_path)) == ["keep.txt"]
    moved = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (moved.append(Path(b).name), real_replace(a, b)))
    with staged_files(tmp_path, last="parts.json") as staging:
        for name in ("parts.json", "b.yml", "a.yml"):
            (staging / name).write_text(name)
    assert moved == ["a.yml", "b.yml", "parts.json"]
    assert sorted(os.listdir(tmp_path)) == ["a.yml", "b.yml", "keep.txt", "parts.json"]


def test_shard_data_folders_leaves_no_half_written_shards_folder(tmp_path, monkeypatch):
    """It made one shard folder after another in place: a failure at the second left the first looking complete."""
    load_data("sklearn:digits", tmp_path / "digits")
    real_write_text = Path.write_text
    calls = []

    def write_text_failing_second(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real_write_text(path, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", write_text_failing_second)
    with pytest.raises(OSError, match="No space"):
        shard_data_folders(tmp_path / "digits", 3, tmp_path / "shards")
    assert [p.name for p in tmp_path.iterdir()] == ["digits"]


def test_gather_step_writes_the_report_output_and_returns_the_headline(tmp_path):
    shards = []
    for name, correct in (("a", 3), ("b", 1)):
        folders.write_shard_metrics(tmp_path / name, {**SHARD, "correct": correct, "dataset": f"part-{name}.yml"})
        shards.append(str(tmp_path / name))
    result = gather_step(shards, str(tmp_path / "summary"), str(tmp_path / "report.html"), report_images=0)
    assert (result.metric, result.value, result.images, result.shards) == ("accuracy", 4 / 6, 6, 2)
    assert result.ui_metrics() == {"accuracy": 4 / 6, "images": 6, "shards": 2}
    assert (tmp_path / "report.html").read_text() == (tmp_path / "summary" / "report.html").read_text()
    assert json.loads((tmp_path / "summary" / "metrics.json").read_text())["accuracy"] == 4 / 6


@pytest.mark.parametrize("writer", ["staged_folder", "staged_files", "staged_file"])
def test_a_signal_just_after_the_scratch_exists_leaves_nothing(tmp_path, monkeypatch, writer):
    """A signal may land between creating the scratch folder or file and the writer's ``try`` (test_signals.py
    sends one as soon as it appears): the scratch is created inside the ``try``, so it is still removed."""
    import distml.staging as staging

    real_mkdir, real_open = os.mkdir, os.open

    def mkdir_then_signal(path, *args, **kwargs):
        real_mkdir(path, *args, **kwargs)
        raise KeyboardInterrupt

    def open_then_signal(path, flags, *args, **kwargs):
        os.close(real_open(path, flags, *args, **kwargs))
        raise KeyboardInterrupt

    out = tmp_path / "out"
    out.mkdir()
    if writer == "staged_file":
        monkeypatch.setattr(os, "open", open_then_signal)
        context = staging.staged_file(out / "model.onnx")
    else:
        monkeypatch.setattr(os, "mkdir", mkdir_then_signal)
        context = getattr(staging, writer)(out / "new" if writer == "staged_folder" else out)
    with pytest.raises(KeyboardInterrupt), context:
        pass
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["out"]
