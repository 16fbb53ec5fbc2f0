"""Two commands writing one --out at once: the second fails cleanly at once, or one wins whole; never a mix.

While a writer holds a folder (distml.staging.exclusive_writer, the lock every staged output and
every split takes), `data load`, `data split`, `data shard`, `infer` and `gather` into that folder
end in one line naming it and touch nothing. A writer that took no lock (an older distml) and
fills the folder first keeps it: the later one's rename fails with one line, its staging removed.
One test runs two real `distml data load` processes.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from distml.cli import main
from distml.errors import DistmlError
from distml.staging import exclusive_writer, staged_folder

REPO = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def assert_busy(result, out: Path) -> None:
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), (result.exception, result.output)
    assert result.output.startswith(f"error: {out}: another command is writing this folder now"), result.output
    assert result.output.count("\n") == 1, result.output


def lesions(tmp_path: Path) -> Path:
    made = run("data", "synth", "lesions", "--images", "10", "--size", "16", "--out", str(tmp_path / "ds"))
    assert made.exit_code == 0, made.output
    return tmp_path / "ds" / "dataset.yml"


def test_a_second_writer_of_a_held_folder_fails_at_once_and_the_lock_goes_with_the_first(tmp_path):
    out = tmp_path / "out"
    with exclusive_writer(out):
        assert (tmp_path / ".out.lock").exists()
        with pytest.raises(DistmlError, match="another command is writing this folder now"), exclusive_writer(out):
            pass
    assert sorted(os.listdir(tmp_path)) == []
    with exclusive_writer(out):  # free again once the first is done
        pass


def test_a_stale_lock_file_of_a_killed_writer_blocks_nobody(tmp_path):
    (tmp_path / ".out.lock").write_text("")  # left by a writer that got SIGKILL: the kernel dropped its lock
    with staged_folder(tmp_path / "out") as staging:
        (staging / "a").write_text("mine")
    assert sorted(os.listdir(tmp_path)) == ["out"]


@pytest.mark.parametrize("command", ["load", "synth", "split", "shard", "infer", "gather"])
def test_every_writer_refuses_a_folder_another_command_is_writing(tmp_path, command):
    out = tmp_path / "out"
    if command == "load":
        args = ["data", "load", "synthetic:digits", "--images", "5", "--out", str(out)]
    elif command == "synth":
        args = ["data", "synth", "digits", "--images", "5", "--out", str(out)]
    elif command == "split":
        args = ["data", "split", str(lesions(tmp_path)), "--parts", "2", "--out", str(out)]
    elif command == "shard":
        assert run("data", "load", "sklearn:digits", "--out", str(tmp_path / "npz")).exit_code == 0
        args = ["data", "shard", str(tmp_path / "npz"), "--shards", "2", "--out", str(out)]
    elif command == "infer":
        args = ["infer", "--model", str(tmp_path / "none.onnx"), "--dataset", str(lesions(tmp_path)), "--out", str(out)]
    else:
        shard = tmp_path / "shard"
        shard.mkdir()
        (shard / "metrics.json").write_text('{"task": "segmentation", "images": 2, "iou_sum": 1.0, "split": "test"}')
        args = ["gather", str(shard), "--out", str(out)]
    before = snapshot(tmp_path)
    with exclusive_writer(out):
        result = run(*args)
        assert_busy(result, out)
        assert {k: v for k, v in snapshot(tmp_path).items() if k != ".out.lock"} == before  # nothing written
    assert not out.exists()


def test_a_folder_filled_by_an_unlocked_writer_meanwhile_is_kept_whole(tmp_path):
    out = tmp_path / "out"
    refused = pytest.raises(DistmlError, match="another command wrote this output folder while this one ran")
    with refused, staged_folder(out) as staging:
        (staging / "ours.txt").write_text("ours")
        out.mkdir()  # the other writer's rename lands first
        (out / "theirs.txt").write_text("theirs")
    assert snapshot(tmp_path) == {"out/theirs.txt": b"theirs"}  # theirs whole, ours gone, no staging folder


@pytest.mark.slow
def test_two_data_load_processes_into_one_folder(tmp_path):
    """Real processes: the second starts once the first is writing; one result, whole, and one clean error."""
    out = tmp_path / "out"
    distml = [sys.executable, "-c", "from distml.cli import main; main()"]
    command = [*distml, "data", "load", "synthetic:lesions", "--size", "32", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    first = subprocess.Popen([*command, "--images", "4000"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.*")) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run([*command, "--images", "20"], env=env, capture_output=True, text=True, timeout=120)
    _, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 1, second.stderr
    assert (
        second.stderr.strip().splitlines()[-1] == f"error: {out}: another command is writing this folder now. "
        "Wait for it to finish, or write to another folder."
    )
    assert "Traceback" not in second.stderr
    dataset = yaml.safe_load((out / "dataset.yml").read_text())
    assert len(dataset["images"]) == 4000  # the first one's, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
