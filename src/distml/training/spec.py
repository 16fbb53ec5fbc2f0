"""One training spec for both launchers: what to run (the worker's arguments) and where (pods).

The local launcher uses only :func:`worker_args`; the Kubernetes launcher builds a TFJob
from a :class:`TrainingSpec` (distml.training.tfjob).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from distml.errors import DistmlError
from distml.tolerations import Toleration
from distml.training.local import WORKER_MODULE
from distml.training.worker import WorkerConfig, worker_args

#: Our choice, not the operator's default (v1.9 defaults to None: training-operator v1.9.0
#: pkg/apis/kubeflow.org/v1/tensorflow_defaults.go:52-53): when the job ends, delete the pods still running
#: (workers left waiting on a failed peer hold their GPUs otherwise) and keep the finished ones, failed
#: pods' logs included (pkg/controller.v1/common/job.go:57-58). The launcher reads those logs, then
#: deletes the job.
DEFAULT_CLEAN_POD_POLICY = "Running"
#: A worker's own error (exit code 1-127) fails the job at once and its pod stays, with its logs; a
#: kill (>= 128: OOM, eviction, a lost peer, see distml.training.worker) recreates the pod, which resumes
#: from BackupAndRestore (pkg/controller.v1/common/pod.go:350-373, pkg/util/train/train_util.go:24-26).
#: Under OnFailure a job fails only through backoffLimit or activeDeadlineSeconds, and the operator
#: deletes every pod, logs included, before it writes Failed (pkg/controller.v1/common/job.go:206-247).
DEFAULT_RESTART_POLICY = "ExitCode"


@dataclass
class PvcMount:
    """``NAME:MOUNT``: a PersistentVolumeClaim mounted at an absolute path in every pod."""

    claim: str
    mount_path: str

    @classmethod
    def parse(cls, text: str) -> PvcMount:
        claim, _, mount = text.partition(":")
        if not claim or not mount.startswith("/"):
            raise DistmlError(f"bad PVC mount {text!r}", hint="Write NAME:MOUNT, e.g. training-data:/mnt/data.")
        return cls(claim, mount)


@dataclass
class RunPolicy:
    """The TFJob's spec.runPolicy (the v1 API ignores these fields anywhere else)."""

    clean_pod_policy: str = DEFAULT_CLEAN_POD_POLICY
    #: Restarts allowed per replica; the TFJob's backoffLimit scales it with the replica count
    #: (distml.training.tfjob.backoff_limit), None: no limit.
    restarts_per_replica: int | None = 3
    ttl_seconds_after_finished: int | None = None
    active_deadline_seconds: int | None = None


@dataclass
class TrainingSpec:
    """Pods of a training job: image, command, replicas and their placement."""

    image: str
    command: list[str]
    workers: int = 1
    chief: bool = False  # a separate Chief replica (workers counts it); else worker 0 leads
    gpus_per_worker: int = 0
    cpu: str | None = None
    memory: str | None = None
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[Toleration] = field(default_factory=list)
    pvcs: list[PvcMount] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    service_account: str | None = None
    run_policy: RunPolicy = field(default_factory=RunPolicy)
    restart_policy: str = DEFAULT_RESTART_POLICY

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise DistmlError(f"workers must be at least 1 (got {self.workers})")
        if self.gpus_per_worker < 0:
            raise DistmlError(f"GPUs per worker cannot be negative (got {self.gpus_per_worker})")


def worker_command(config: WorkerConfig) -> list[str]:
    """The container command of every TFJob replica: the same worker the local launcher starts."""
    return ["python", "-m", WORKER_MODULE, *worker_args(config)]
