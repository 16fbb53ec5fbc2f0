"""cleanup_parts' core (issue 11 defect 11): it deletes parts where they are stored, and where a cluster's
object store keeps them (the task saw a downloaded copy) it deletes nothing and says what it left."""

from __future__ import annotations

import pytest

from distml.data.dtd import read_dataset
from distml.data.split import split_dataset, write_parts
from distml.data.synth import synth_lesions
from distml.inference.cleanup import cleanup_parts_step


@pytest.fixture
def parts(tmp_path):
    dataset = read_dataset(synth_lesions(tmp_path / "data", images=12, size=16))
    folder = tmp_path / "parts"
    written = write_parts(dataset, split_dataset(dataset, 3), folder)
    return folder, sorted(part.file for part in written)


@pytest.mark.parametrize("scheme", ["minio://mlpipeline", "s3://bucket", "gs://bucket"])
def test_object_store_parts_are_left_and_listed(parts, capsys, scheme):
    folder, names = parts
    uri = f"{scheme}/v2/artifacts/run-1/split-dataset/123/parts"
    report = cleanup_parts_step(str(folder), uri)
    assert report.removed == [] and report.left == [*names, "parts.json"]
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "parts.json"])  # the copy is untouched
    printed = capsys.readouterr().out
    assert f"left 4 part file(s) in the object store at {uri}" in printed and names[0] in printed


def test_stored_parts_are_removed(parts, capsys):
    folder, names = parts
    report = cleanup_parts_step(str(folder), str(folder))
    assert sorted(p.name for p in report.removed) == sorted([*names, "parts.json"]) and report.left == []
    assert not folder.exists()
    assert f"removed 4 part file(s) from {folder}" in capsys.readouterr().out
