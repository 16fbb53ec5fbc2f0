"""SIGTERM (how KFP and Kubernetes stop a task) and SIGINT, sent for real to `distml` processes.

After either signal, within a few seconds: the command has exited, no process it started is left,
and no hidden staging folder is left beside (or inside) its output. Process trees are read from
/proc, so these tests need Linux.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distml.training.cancel import descendants

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process trees from /proc")

DISTML = [sys.executable, "-c", "from distml.cli import main; main()"]
EXIT_WITHIN_S = 10.0


def hidden(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.startswith(".")) if folder.is_dir() else []


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_and_check(process: subprocess.Popen, sig: int, tree: set[int]) -> float:
    """Send ``sig``; return the seconds until the command and every process of ``tree`` were gone."""
    sent = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"distml still running {EXIT_WITHIN_S} s after {signal.Signals(sig).name}") from None
    wait_for(lambda: not any(alive(pid) for pid in tree), 5.0, "the processes it started to end")
    return time.monotonic() - sent


def big_dataset(path: Path, images: int) -> Path:
    lines = ["name: big", "classes: [a, b]", "images:"]
    lines += [f"  - {{location: img/{i}.png, label: a}}" for i in range(images)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
@pytest.mark.parametrize("command", ["data load", "data split"])
def test_a_signal_mid_write_leaves_no_staging_folder(tmp_path, command, sig):
    if command == "data load":
        watched = tmp_path
        args = ["data", "load", "synthetic:lesions", "--images", "20000", "--size", "32"]
        args += ["--out", str(tmp_path / "out")]
    else:
        watched = tmp_path / "parts"
        dataset = big_dataset(tmp_path / "big.yml", 400_000)
        args = ["data", "split", str(dataset), "--parts", "100", "--out", str(watched)]
    process = subprocess.Popen([*DISTML, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: hidden(watched) or process.poll() is not None, 120, "the staging folder")
        assert process.poll() is None, "the command ended before it could be interrupted"
        stop_and_check(process, sig, set())
        assert hidden(watched) == []
        assert not (tmp_path / "out").exists()
        assert process.returncode == (143 if sig == signal.SIGTERM else 1), process.stderr.read().decode()
    finally:
        process.kill()
        process.wait()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sig", "stage", "epochs"),
    [
        (signal.SIGTERM, "distml.training.worker", 500),
        (signal.SIGINT, "distml.training.worker", 500),
        (signal.SIGTERM, "distml.serving.local", 1),
    ],
    ids=["sigterm-training", "sigint-training", "sigterm-serving"],
)
def test_a_signal_to_distml_demo_stops_every_task_worker_and_server(tmp_path, sig, stage, epochs):
    args = ["demo", "--out", str(tmp_path / "runs"), "--images", "10", "--parts", "1", "--epochs", str(epochs)]
    process = subprocess.Popen([*DISTML, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        tree: set[int] = set()

        def stage_running() -> bool:
            tree.update(descendants(process.pid))
            return process.poll() is not None or any(stage in command_line(pid) for pid in tree)

        wait_for(stage_running, 600, stage)
        assert process.poll() is None, "the demo ended before the stage was reached"
        time.sleep(1.0)
        tree.update(descendants(process.pid))
        assert any("kfp.dsl.executor_main" in command_line(pid) for pid in tree)
        seconds = stop_and_check(process, sig, tree)
        assert seconds < EXIT_WITHIN_S
        run_dirs = list((tmp_path / "runs").iterdir())
        assert len(run_dirs) == 1 and (run_dirs[0] / "run.json").is_file()
        leftovers = [p for p in run_dirs[0].rglob(".*") if p.is_dir()]
        assert leftovers == []
    finally:
        process.kill()
        process.wait()
        for pid in descendants(process.pid) | tree:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
