"""ClusterOptions holds the TFJob's pods as a TrainingSpec: every placement field reaches the job, none is copied."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from distml.errors import DistmlError
from distml.tolerations import Toleration
from distml.training.kubernetes import ClusterOptions, cluster_spec, pod_template
from distml.training.spec import PvcMount, RunPolicy, TrainingSpec, worker_command
from distml.training.worker import WorkerConfig

#: A value other than the default for every field of TrainingSpec that the launch does not fill in.
PLACEMENT = {
    "chief": True,
    "gpus_per_worker": 2,
    "cpu": "4",
    "memory": "16Gi",
    "node_selector": {"pool": "gpu"},
    "tolerations": [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
    "pvcs": [PvcMount("datasets", "/mnt/datasets")],
    "env": {"TF_CPP_MIN_LOG_LEVEL": "2"},
    "service_account": "trainer",
    "run_policy": RunPolicy(restarts_per_replica=0),
    "restart_policy": "Never",
}


def test_every_placement_field_of_the_pods_reaches_the_tfjob_spec(tmp_path):
    filled_by_the_launch = {"image", "command", "workers"}
    assert set(PLACEMENT) == {f.name for f in dataclasses.fields(TrainingSpec)} - filled_by_the_launch
    work = PvcMount("work", "/mnt/distml")
    options = ClusterOptions(pod_template("registry/distml:1", **PLACEMENT), namespace="ml", pvc=work)
    config = WorkerConfig("mlp", Path("/mnt/distml/data"), Path("/mnt/distml/model"))

    spec = cluster_spec(config, 3, options)

    assert spec.image == "registry/distml:1"
    assert spec.command == worker_command(config) and spec.workers == 3
    for name, value in PLACEMENT.items():
        expected = [*value, work] if name == "pvcs" else value
        assert getattr(spec, name) == expected, name
    assert options.pods.pvcs == PLACEMENT["pvcs"], "the template is left as it was"


def test_a_bad_placement_fails_when_the_options_are_made_not_at_launch():
    with pytest.raises(DistmlError, match="GPUs per worker cannot be negative"):
        pod_template("img", gpus_per_worker=-1)
