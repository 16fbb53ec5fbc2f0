"""A restarted worker resumes from its backup only when it trains the same run."""

from __future__ import annotations

import os
import signal
from dataclasses import replace

import pytest

from distml.data.sources import load_data
from distml.training.local import WorkerFailed, run_local_workers
from distml.training.spec import worker_args
from distml.training.worker import WorkerConfig


@pytest.mark.slow
def test_a_changed_setting_starts_afresh_instead_of_restoring_the_earlier_backup(tmp_path):
    load_data("sklearn:digits", tmp_path / "digits")
    config = WorkerConfig("mlp", tmp_path / "digits", tmp_path / "model", epochs=4, batch_size=16)
    pids: dict[str, int] = {}

    def kill_after_epoch_2(line: str) -> None:
        if line.startswith("worker-0 epoch=2/"):
            os.kill(pids["worker-0"], signal.SIGKILL)

    with pytest.raises(WorkerFailed):
        run_local_workers(
            worker_args(config), 1, log_dir=tmp_path / "logs-1", progress=kill_after_epoch_2, started=pids.update
        )
    assert any((tmp_path / ".model.backup").iterdir())  # the killed run left a backup behind

    lines: list[str] = []
    changed = replace(config, learning_rate=0.01)
    run_local_workers(worker_args(changed), 1, log_dir=tmp_path / "logs-2", progress=lines.append, timeout=120)
    assert not any("resuming" in line for line in lines)
    assert [line.split()[1] for line in lines if line.startswith("worker-0 epoch=")] == [
        f"epoch={n}/4" for n in range(1, 5)
    ]
    assert not (tmp_path / ".model.backup").exists()  # the chief removes every backup when it is done
