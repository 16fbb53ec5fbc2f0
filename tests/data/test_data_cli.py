"""`distml data ...`: exit codes, one-line errors, no partial output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from distml.cli import main
from distml.data.dtd import read_dataset


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def lesions(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lesions")
    result = run("data", "synth", "lesions", "--images", 30, "--size", 16, "--out", out)
    assert result.exit_code == 0, result.output
    return out / "dataset.yml"


def test_synth_is_deterministic_by_seed(tmp_path, lesions):
    again = tmp_path / "again"
    assert run("data", "synth", "lesions", "--images", 30, "--size", 16, "--out", again).exit_code == 0
    assert (again / "dataset.yml").read_bytes() == lesions.read_bytes()
    for name in ("images/lesion_00007.png", "ground_truth/lesion_00007_segmentation.png"):
        assert (again / name).read_bytes() == (lesions.parent / name).read_bytes()
    other = tmp_path / "other"
    assert run("data", "synth", "lesions", "--images", 30, "--size", 16, "--seed", 1, "--out", other).exit_code == 0
    assert (other / "images/lesion_00007.png").read_bytes() != (again / "images/lesion_00007.png").read_bytes()
    dataset = read_dataset(lesions)
    assert dataset.split_sizes() == {"training": 21, "validation": 3, "test": 6}


def test_split_prints_the_table_and_writes_parts(tmp_path, lesions):
    result = run("data", "split", lesions, "--parts", 4, "--out", tmp_path / "parts")
    assert result.exit_code == 0, result.output
    assert "part-003-synthetic-lesions.yml" in result.output.replace("\n", "")
    files = sorted(p.name for p in (tmp_path / "parts").glob("part-*.yml"))
    assert files == [f"part-00{i}-synthetic-lesions.yml" for i in range(4)]
    info = run("data", "info", tmp_path / "parts" / files[-1], "--check-files")
    assert info.exit_code == 0, info.output
    assert "9 images" in info.output and "all image files present" in info.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--parts", "0"], 1, "error: cannot split into 0 parts. Ask for 1 part or more."),
        (["--parts", "31"], 1, "error: cannot split 30 images into 31 parts"),
        (["--parts", "x"], 2, "Invalid value for '--parts'"),
    ],
)
def test_split_errors_leave_no_part_file(tmp_path, lesions, args, code, message):
    out = tmp_path / "out"
    result = run("data", "split", lesions, *args, "--out", out)
    assert result.exit_code == code
    assert message in result.output
    assert not out.exists() or os.listdir(out) == []  # hidden staging folders count too
    assert isinstance(result.exception, SystemExit)  # CliRunner keeps an exception (traceback) apart from output


def test_bad_dataset_is_one_line_naming_file_and_field(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("classes: [a]\nimages:\n  - {location: x.png, label: 4}\n")
    result = run("data", "split", bad, "--parts", 1, "--out", tmp_path / "out")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {bad}: images[0].label: class index 4 out of range")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_missing_files_only_reported_when_asked(tmp_path):
    data = tmp_path / "d.yml"
    data.write_text("images: [missing.png]\n")
    assert run("data", "info", data).exit_code == 0
    checked = run("data", "info", data, "--check-files")
    assert checked.exit_code == 1
    assert "images[0].location missing.png does not exist" in checked.output


def test_debug_shows_the_traceback_and_the_console_script_exists(tmp_path):
    script = Path(sys.executable).parent / "distml"
    assert script.exists()
    plain = subprocess.run([script, "data", "info", tmp_path / "none.yml"], capture_output=True, text=True)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    debug = subprocess.run([script, "--debug", "data", "info", tmp_path / "none.yml"], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "DatasetError" in debug.stderr
    helped = subprocess.run([script, "data", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "split" in helped.stdout
