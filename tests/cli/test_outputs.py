"""Outputs: a command replaces only what it wrote itself, and an unwritable output is one line, nothing partial.

Disk full is simulated (PIL's save raising ENOSPC after a few images); not-a-directory and name too
long are real. Every CLI check also asserts that the command ended in SystemExit, not an exception
that CliRunner would keep apart from the output.
"""

import errno
import os

from click.testing import CliRunner
from PIL import Image as PILImage

from distml.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert result.output.startswith("error: ") and result.output.count("\n") == 1, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output


def hidden(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_synth_refuses_an_existing_dataset_and_leaves_it_alone(tmp_path):
    out = tmp_path / "lesions"
    assert run("data", "synth", "lesions", "--images", "3", "--size", "16", "--out", str(out)).exit_code == 0
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = run("data", "synth", "lesions", "--images", "5", "--size", "16", "--seed", "9", "--out", str(out))
    assert_one_line_error(again, "not empty", "Choose a new or empty folder")
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_synth_on_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, monkeypatch):
    saved = []
    real_save = PILImage.Image.save

    def save_until_full(self, fp, *args, **kwargs):
        if len(saved) == 4:
            raise OSError(errno.ENOSPC, "No space left on device", str(fp))
        saved.append(fp)
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "save", save_until_full)
    result = run("data", "synth", "lesions", "--images", "10", "--size", "16", "--out", str(tmp_path / "out"))
    assert_one_line_error(result, "No space left on device", "Free some space")
    assert sorted(os.listdir(tmp_path)) == []  # no images without a dataset.yml, no staging folder


def test_not_a_directory_and_a_name_too_long_are_one_line(tmp_path):
    (tmp_path / "file").write_text("a file")
    under_a_file = run("data", "synth", "digits", "--images", "5", "--out", str(tmp_path / "file" / "out"))
    assert_one_line_error(under_a_file, f"{tmp_path / 'file'}: File exists", "A file is in the way")
    too_long = run("data", "synth", "digits", "--images", "5", "--out", str(tmp_path / ("x" * 300)))
    assert_one_line_error(too_long, "File name too long", "shorter")
    assert sorted(os.listdir(tmp_path)) == ["file"]


def test_synth_size_is_bounded_before_allocating(tmp_path, monkeypatch):
    import distml.data.synth as synth

    def no_lesion(*_args):  # old code went on to allocate 11.7 GB here
        raise AssertionError("an image was built")

    monkeypatch.setattr(synth, "lesion_sample", no_lesion)
    result = run("data", "synth", "lesions", "--size", "20000", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "20000 is not in the range 8<=x<=2048" in result.output
    assert not (tmp_path / "out").exists()
