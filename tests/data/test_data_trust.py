"""Untrusted dataset files: locations stay inside the dataset's folder or an allowed root, regular files only.

And manifests (parts.json, metadata.json) never point outside their folder; `data split` replaces
only what it wrote and never its own input.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from distml.cli import main
from distml.data.dtd import read_dataset
from distml.data.sources import load_arrays, load_data
from distml.data.split import split_dataset, write_parts
from distml.data.synth import synth_lesions
from distml.errors import DatasetError, DistmlError
from distml.inference.cleanup import remove_parts
from distml.inference.shard import run_inference


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def dataset_with(folder: Path, location: str, name: str = "data.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ok.png").write_bytes(b"png")
    path = folder / name
    path.write_text(f'name: t\nimages:\n  - ok.png\n  - "{location}"\n', encoding="utf-8")
    return path


@pytest.fixture
def outside(tmp_path) -> Path:
    secret = tmp_path / "elsewhere" / "secret.png"
    secret.parent.mkdir()
    secret.write_bytes(b"secret")
    return secret


def test_load_refuses_a_location_that_climbs_out_of_the_folder(tmp_path, outside):
    source = dataset_with(tmp_path / "ds", "../elsewhere/secret.png")
    with pytest.raises(
        DatasetError, match=r"images\[1\]\.location \.\./elsewhere/secret\.png: outside the dataset's folder"
    ):
        load_data(f"dtd:{source}", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_load_refuses_an_absolute_location_unless_its_root_is_allowed(tmp_path, outside):
    source = dataset_with(tmp_path / "ds", str(outside))
    with pytest.raises(DatasetError, match="outside the dataset's folder .* --allow-root"):
        load_data(f"dtd:{source}", tmp_path / "out")
    load_data(f"dtd:{source}", tmp_path / "out", allow_roots=[outside.parent])
    copied = read_dataset(tmp_path / "out" / "dataset.yml")
    assert (tmp_path / "out" / copied.images[1].location).read_bytes() == b"secret"


def test_load_refuses_a_symlink_out_of_the_folder(tmp_path, outside):
    source = dataset_with(tmp_path / "ds", "link.png")
    (tmp_path / "ds" / "link.png").symlink_to(outside)
    with pytest.raises(
        DatasetError, match=r"images\[1\]\.location link\.png: a symbolic link to .*secret\.png, outside"
    ):
        load_data(f"dtd:{source}", tmp_path / "out")


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_load_reads_regular_files_only(tmp_path, kind):
    folder = tmp_path / "ds"
    if kind == "device":
        source, roots, rule = dataset_with(folder, "/dev/null"), ["/dev"], "a character device"
    else:
        source, roots = dataset_with(folder, "special"), []
        if kind == "fifo":
            os.mkfifo(folder / "special")
            rule = "a FIFO"
        else:
            (folder / "special").mkdir()
            rule = "a directory"
    with pytest.raises(DatasetError, match=f"images\\[1\\]\\.location .*: not a regular file \\({rule}\\)"):
        load_data(f"dtd:{source}", tmp_path / "out", allow_roots=roots)
    assert not (tmp_path / "out").exists()


def test_ground_truth_paths_and_planes_follow_the_same_rule(tmp_path, outside):
    folder = tmp_path / "ds"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"png")
    (folder / "d.yml").write_text("images:\n  - {location: a.png, label: ../elsewhere/secret.png}\n")
    with pytest.raises(DatasetError, match=r"images\[0\]\.label \.\./elsewhere/secret\.png: outside"):
        load_data(f"dtd:{folder / 'd.yml'}", tmp_path / "out")
    (folder / "p.yml").write_text('images:\n  - [a.png, "/etc/passwd"]\n')
    with pytest.raises(DatasetError, match=r"images\[0\]\.location\[1\] /etc/passwd: outside"):
        load_data(f"dtd:{folder / 'p.yml'}", tmp_path / "out")


def test_the_cli_names_allowed_roots_with_allow_root(tmp_path, outside):
    source = dataset_with(tmp_path / "ds", str(outside))
    refused = run("data", "load", f"dtd:{source}", "--out", tmp_path / "out")
    assert refused.exit_code == 1 and "outside the dataset's folder" in refused.output
    loaded = run("data", "load", f"dtd:{source}", "--out", tmp_path / "out", "--allow-root", outside.parent)
    assert loaded.exit_code == 0, loaded.output
    checked = run("data", "info", source, "--check-files")
    assert checked.exit_code == 1 and "outside the dataset's folder" in checked.output
    checked = run("data", "info", source, "--check-files", "--allow-root", outside.parent)
    assert checked.exit_code == 0, checked.output


def test_split_refuses_locations_outside_by_name(tmp_path, outside):
    source = dataset_with(tmp_path / "ds", "../elsewhere/secret.png")
    result = run("data", "split", source, "--parts", 2, "--out", tmp_path / "parts")
    assert result.exit_code == 1
    assert "images[1].location ../elsewhere/secret.png: outside the dataset's folder" in result.output
    assert not list((tmp_path / "parts").glob("*")) if (tmp_path / "parts").exists() else True
    allowed = run("data", "split", source, "--parts", 2, "--out", tmp_path / "parts", "--allow-root", outside.parent)
    assert allowed.exit_code == 0, allowed.output


def test_infer_refuses_a_part_that_points_outside_before_loading_anything(tmp_path, outside):
    part = dataset_with(tmp_path / "ds", "../elsewhere/secret.png")
    part.write_text(part.read_text() + "split:\n  test: [0, 1]\n")
    with pytest.raises(DatasetError, match=r"images\[1\]\.location .*: outside the dataset's folder"):
        run_inference("onnxruntime", tmp_path / "no-model.onnx", part, tmp_path / "shard")
    assert not (tmp_path / "shard").exists()


def test_parts_of_a_split_may_point_into_the_dataset_they_were_cut_from(tmp_path):
    dataset_file = synth_lesions(tmp_path / "data", images=4, size=8)
    dataset = read_dataset(dataset_file)
    write_parts(dataset, split_dataset(dataset, 2), tmp_path / "parts")
    manifest = json.loads((tmp_path / "parts" / "parts.json").read_text())
    assert manifest["roots"] == ["../data"]
    result = run("data", "info", tmp_path / "parts" / manifest["parts"][0]["file"], "--check-files")
    assert result.exit_code == 0, result.output
    # A part file copied elsewhere loses that: its folder is then all it may read.
    stray = tmp_path / "stray" / "part.yml"
    stray.parent.mkdir()
    stray.write_text((tmp_path / "parts" / manifest["parts"][0]["file"]).read_text())
    assert run("data", "info", stray, "--check-files").exit_code == 1


def test_cleanup_refuses_a_manifest_entry_outside_its_folder(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    parts = tmp_path / "parts"
    parts.mkdir()
    entry = {"index": 0, "file": "../victim.txt", "images": 1, "splits": {}}
    (parts / "parts.json").write_text(json.dumps({"dataset": "x", "parts": [entry]}))
    with pytest.raises(DistmlError, match=r"parts\[0\]\.file: file entry '\.\./victim\.txt' points outside its folder"):
        remove_parts(parts)
    assert victim.read_text() == "keep me"


def test_metadata_file_entry_outside_its_folder_is_refused(tmp_path):
    np.savez(
        tmp_path / "secret.npz",
        x_train=np.zeros((2, 1)),
        y_train=np.zeros(2),
        x_test=np.zeros((1, 1)),
        y_test=np.zeros(1),
    )
    folder = tmp_path / "data"
    folder.mkdir()
    metadata = {"format": "npz", "file": "../secret.npz", "source": "npz:x", "name": "x", "task": "classification"}
    (folder / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DatasetError, match=r"metadata\.json: file: file entry '\.\./secret\.npz' points outside"):
        load_arrays(folder)
    result = run("data", "shard", folder, "--shards", 1, "--out", tmp_path / "shards")
    assert result.exit_code == 1 and "points outside its folder" in result.output


# --------------------------------------------------------------------------- split replaces only its own files


@pytest.fixture
def toy(tmp_path) -> Path:
    return synth_lesions(tmp_path / "data", images=6, size=8)  # dataset name: synthetic-lesions


def test_split_leaves_files_it_did_not_write(tmp_path, toy):
    out = tmp_path / "parts"
    out.mkdir()
    other = out / "part-005-synthetic-lesions.yml"  # a user's file, matching the old clean-up pattern
    other.write_text("mine")
    assert run("data", "split", toy, "--parts", 2, "--out", out).exit_code == 0
    assert other.read_text() == "mine"


def test_split_refuses_to_overwrite_a_file_it_did_not_write(tmp_path, toy):
    out = tmp_path / "parts"
    out.mkdir()
    mine = out / "part-000-synthetic-lesions.yml"
    mine.write_text("mine")
    result = run("data", "split", toy, "--parts", 2, "--out", out)
    assert result.exit_code == 1 and "exists and was not written by a split" in result.output
    assert mine.read_text() == "mine"


def test_split_never_replaces_its_own_input(tmp_path, toy):
    out = tmp_path / "parts"
    assert run("data", "split", toy, "--parts", 2, "--out", out).exit_code == 0
    part = out / "part-000-synthetic-lesions.yml"
    text = part.read_text()
    # The part is itself a dataset named "...-part-0-of-2"; rename it so its parts would land on it.
    part.write_text(text.replace('name: "synthetic-lesions-part-0-of-2"', 'name: "synthetic-lesions"'))
    before = part.read_bytes()
    result = run("data", "split", part, "--parts", 1, "--out", out, "--allow-root", tmp_path)
    assert result.exit_code == 1 and "would be replaced or removed" in result.output
    assert part.read_bytes() == before


def test_split_keeps_another_datasets_parts_in_the_same_folder(tmp_path, toy):
    out = tmp_path / "parts"
    assert run("data", "split", toy, "--parts", 3, "--out", out).exit_code == 0
    theirs = sorted(p.name for p in out.glob("part-*.yml"))
    other = synth_lesions(tmp_path / "other", images=4, size=8)
    text = other.read_text().replace('name: "synthetic-lesions"', 'name: "lesions"')
    other.write_text(text)
    result = run("data", "split", other, "--parts", 2, "--out", out)
    assert result.exit_code == 1 and "holds the parts of another dataset ('synthetic-lesions'" in result.output
    assert sorted(p.name for p in out.glob("part-*.yml")) == theirs


def test_a_new_split_of_the_same_dataset_removes_only_its_earlier_parts(tmp_path, toy):
    out = tmp_path / "parts"
    assert run("data", "split", toy, "--parts", 3, "--out", out).exit_code == 0
    (out / "notes.txt").write_text("keep")
    assert run("data", "split", toy, "--parts", 2, "--out", out).exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "notes.txt",
        "part-000-synthetic-lesions.yml",
        "part-001-synthetic-lesions.yml",
        "parts.json",
    ]
