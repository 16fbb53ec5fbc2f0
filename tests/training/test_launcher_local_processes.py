"""Local launcher, process handling only: a stand-in worker module (no TensorFlow) plays the workers.

The launcher runs ``python -m <WORKER_MODULE> <args>``; these tests point WORKER_MODULE at
``fake_worker`` (written to a tmp folder on PYTHONPATH), whose first argument picks a behaviour.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from distml.training import local
from distml.training.local import WorkerFailed, run_local_workers

FAKE_WORKER = """
import json, os, signal, sys, time
from pathlib import Path

mode, marker = sys.argv[1], Path(sys.argv[2])
index = json.loads(os.environ.get("TF_CONFIG") or '{"task": {"index": 0}}')["task"]["index"]
name = f"worker-{index}"
if mode == "peer-fails-first":
    if index == 1:  # dies first; worker-0 then fails as a collective op would, having lost its peer
        print(f"{name} out of memory", flush=True)
        marker.touch()
        sys.exit(3)
    while not marker.exists():
        time.sleep(0.005)
    time.sleep(0.01)
    print(f"{name} lost its peer", flush=True)
    sys.exit(1)
if mode == "bad-bytes":
    sys.stdout.buffer.write(f"{name} caf\\xe9 \\xff\\xfe\\n".encode("latin-1"))
    sys.stdout.buffer.flush()
    print(f"{name} done", flush=True)
    sys.exit(0)
if mode == "chatty":
    for n in range(40):
        print(f"{name} line {n}", flush=True)
    sys.exit(0)
if mode == "ignore-sigterm":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print(f"{name} ready", flush=True)
    while True:
        time.sleep(1)
"""

LAUNCHER = """
import json, sys, threading
from distml.training import local

lock = threading.Lock()  # progress comes from reader threads, the pids from the main thread


def say(line):
    with lock:
        print(line, flush=True)


local.WORKER_MODULE = "fake_worker"
local.run_local_workers(
    ["ignore-sigterm", "unused"],
    2,
    log_dir=sys.argv[1],
    progress=say,
    started=lambda pids: say(json.dumps(pids)),
)
"""


@pytest.fixture
def fake_worker(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "fake"
    folder.mkdir()
    (folder / "fake_worker.py").write_text(FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")])))
    monkeypatch.setattr(local, "WORKER_MODULE", "fake_worker")
    return folder


def _alive(pid: int) -> bool:
    """True for a running process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_the_worker_that_failed_first_is_blamed_not_the_peer_that_failed_after_it(fake_worker, tmp_path):
    with pytest.raises(WorkerFailed) as failure:
        run_local_workers(["peer-fails-first", str(tmp_path / "marker")], 2, log_dir=tmp_path / "logs", timeout=30)
    message = str(failure.value)
    assert message.startswith("worker-1 exited with code 3;"), message
    assert "worker-1 out of memory" in message


def test_undecodable_output_is_logged_with_replacement_characters_and_reading_goes_on(fake_worker, tmp_path):
    lines: list[str] = []
    logs = run_local_workers(["bad-bytes", "unused"], 1, log_dir=tmp_path / "logs", progress=lines.append, timeout=30)
    text = logs["worker-0"].read_text(encoding="utf-8")
    assert "worker-0 caf\ufffd \ufffd\ufffd\n" in text
    assert "worker-0 done\n" in text
    assert "worker-0 done" in lines


def test_progress_is_called_by_one_reader_at_a_time(fake_worker, tmp_path):
    """Each worker has its own reader thread; a progress callback such as print must not see two at once."""
    inside, overlaps, lines = [0], [], []

    def slow_progress(line: str) -> None:
        inside[0] += 1
        overlaps.append(inside[0] > 1)
        time.sleep(0.001)
        lines.append(line)
        inside[0] -= 1

    run_local_workers(["chatty", "unused"], 2, log_dir=tmp_path / "logs", progress=slow_progress, timeout=30)
    assert len(lines) == 80 and not any(overlaps)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_second_signal_while_the_workers_stop_leaves_no_worker_running(fake_worker, tmp_path, sig):
    """Workers that ignore SIGTERM hold the graceful stop; a second signal then must not leave them running.

    A second SIGTERM is ignored (the stop runs its course: grace, then SIGKILL); a second Ctrl-C
    cuts the grace short and SIGKILLs at once.
    """
    launcher = subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, str(tmp_path / "logs")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    pids: dict[str, int] = {}
    try:
        assert launcher.stdout is not None
        # The pids and the workers' "ready" lines come in any order: a fast worker may print first.
        lines = [launcher.stdout.readline().strip() for _ in range(3)]
        pids = json.loads(next(line for line in lines if line.startswith("{")))
        assert {line for line in lines if not line.startswith("{")} == {"worker-0 ready", "worker-1 ready"}
        launcher.send_signal(sig)
        time.sleep(0.5)  # the launcher now waits out the workers' grace
        assert launcher.poll() is None and all(_alive(pid) for pid in pids.values())
        launcher.send_signal(sig)
        launcher.wait(timeout=10)
        deadline = time.monotonic() + 2
        while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in pids.values())
    finally:
        launcher.kill()
        launcher.wait()
        for pid in pids.values():
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
