"""The worker's exit code when MultiWorkerMirroredStrategy lost a peer: >= 128, so that under
restartPolicy ExitCode the operator recreates the pod instead of failing the job (defect 6)."""

from __future__ import annotations

import sys
import types

import pytest

from distml.training import worker


@pytest.fixture
def tf_errors(monkeypatch):
    """The module TensorFlow's UnavailableError lives in (tensorflow/python/framework/errors_impl.py)."""
    module = types.ModuleType("tensorflow.python.framework.errors_impl")

    class UnavailableError(Exception):
        pass

    module.UnavailableError = UnavailableError
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def test_a_lost_peer_exits_with_a_retryable_code(monkeypatch, tf_errors, capsys):
    def lose_peer(config, progress):
        raise tf_errors.UnavailableError("cluster check alive failed, /job:worker/replica:0/task:1 is down")

    monkeypatch.setattr(worker, "train", lose_peer)
    code = worker.main(["--model", "mlp", "--data", "d", "--out", "o"])
    assert code == worker.PEER_LOST_EXIT_CODE >= 128
    assert "task:1 is down" in capsys.readouterr().out


def test_any_other_error_still_fails_the_replica(monkeypatch, tf_errors):
    def bug(config, progress):
        raise ValueError("labels of shape (8, 10) do not match logits (8, 2)")

    monkeypatch.setattr(worker, "train", bug)
    with pytest.raises(ValueError):
        worker.main(["--model", "mlp", "--data", "d", "--out", "o"])
