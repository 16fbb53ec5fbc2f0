"""Local launcher: two loopback workers train in sync; a killed worker ends the run cleanly and resumes."""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path

import pytest

from distml.data.sources import load_data
from distml.ports import free_ports
from distml.training.local import WorkerFailed, run_local_workers, tf_config
from distml.training.spec import worker_args
from distml.training.worker import WorkerConfig, role_from_tf_config


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "digits"
    load_data("sklearn:digits", folder)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_tf_config_gives_each_worker_its_index_and_worker_0_leads():
    ports = free_ports(3)
    assert len(set(ports)) == 3
    roles = [role_from_tf_config(tf_config(ports, i)) for i in range(3)]
    assert [(r.rank, r.is_chief, r.workers) for r in roles] == [(0, True, 3), (1, False, 3), (2, False, 3)]
    assert role_from_tf_config(None).is_chief  # one replica: the operator sets no TF_CONFIG


def test_chief_task_counts_as_rank_0():
    config = {"cluster": {"chief": ["c:1"], "worker": ["w:1", "w:2"]}, "task": {"type": "worker", "index": 0}}
    role = role_from_tf_config(json.dumps(config))
    assert (role.rank, role.is_chief, role.workers) == (1, False, 3)


@pytest.mark.slow
def test_two_workers_reach_90_percent_with_equal_weights(digits, tmp_path):
    out = tmp_path / "model"
    config = WorkerConfig("mlp", digits, out, epochs=8, batch_size=16, learning_rate=2e-3)
    lines: list[str] = []
    logs = run_local_workers(worker_args(config), 2, log_dir=tmp_path / "logs", progress=lines.append)

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["workers"] == 2 and metrics["global_batch_size"] == 32
    assert metrics["test_accuracy"] >= 0.90
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 9))
    digests = {name: re.search(r"weights_sha256=(\w+)", path.read_text()).group(1) for name, path in logs.items()}
    assert len(digests) == 2 and len(set(digests.values())) == 1, digests
    assert any(line.startswith("worker-1 epoch=8/8") for line in lines)
    assert (out / "model" / "1" / "saved_model.pb").exists() and (out / "model.keras").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs", "model"]  # backup and scratch folders removed


@pytest.mark.slow
def test_killing_a_worker_stops_the_run_without_orphans(digits, tmp_path):
    config = WorkerConfig("mlp", digits, tmp_path / "model", epochs=200, batch_size=16)
    pids: dict[str, int] = {}

    def kill_worker_1_after_first_epoch(line: str) -> None:
        if line.startswith("worker-1 epoch=1/"):
            threading.Thread(target=os.kill, args=(pids["worker-1"], signal.SIGKILL)).start()

    with pytest.raises(WorkerFailed) as failure:
        run_local_workers(
            worker_args(config),
            2,
            log_dir=tmp_path / "logs",
            progress=kill_worker_1_after_first_epoch,
            started=pids.update,
            timeout=120,
        )
    message = str(failure.value)
    assert "worker-1 exited with code -9 (killed by SIGKILL)" in message
    assert "worker-1 epoch=1/200" in message  # its last log lines
    assert not any(_alive(pid) for pid in pids.values())
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_restarted_worker_resumes_after_its_last_epoch_and_keeps_the_history(digits, tmp_path):
    """BackupAndRestore: kill the worker after epoch 2, restart it with the same output (so backup) folder."""
    config = WorkerConfig("mlp", digits, tmp_path / "model", epochs=8, batch_size=8)
    pids: dict[str, int] = {}
    first: list[str] = []

    def kill_after_epoch_2(line: str) -> None:
        first.append(line)
        if line.startswith("worker-0 epoch=2/"):
            os.kill(pids["worker-0"], signal.SIGKILL)

    with pytest.raises(WorkerFailed):
        run_local_workers(
            worker_args(config), 1, log_dir=tmp_path / "logs-1", progress=kill_after_epoch_2, started=pids.update
        )
    done_before = [found for found in map(_epoch_line, first) if found]
    assert [epoch for epoch, _ in done_before][:2] == [1, 2]
    resume_at = done_before[-1][0] + 1

    second: list[str] = []
    run_local_workers(worker_args(config), 1, log_dir=tmp_path / "logs-2", progress=second.append, timeout=120)
    assert f"worker-0 resuming at epoch={resume_at}/8" in second
    assert [found[0] for found in map(_epoch_line, second) if found] == list(range(resume_at, 9))

    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["resumed_at_epoch"] == resume_at
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(1, 9))
    assert [f"{e['loss']:.4f}" for e in metrics["epochs"][: resume_at - 1]] == [loss for _, loss in done_before]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs-1", "logs-2", "model"]  # backup removed


def _epoch_line(line: str) -> tuple[int, str] | None:
    """(epoch, loss as printed) of an epoch line of worker-0, else None."""
    found = re.match(r"worker-0 epoch=(\d+)/\d+ loss=(\S+)", line)
    return (int(found.group(1)), found.group(2)) if found else None
