"""The training worker: one process of a MultiWorkerMirroredStrategy job.

Started as ``python -m distml.training.worker ...`` by both launchers: as N local processes
(the local launcher writes their TF_CONFIG) or as the pods of a TFJob (the Training Operator
writes it). Without TF_CONFIG (a TFJob of one replica gets none) the strategy trains on
this process alone. Every worker prints one progress line per epoch and, at the end, a
checksum of its weights: workers trained in sync end with equal checksums.

Only the chief writes the Model folder; the other workers save to temporary folders they
remove, because saving a model under this strategy may run collective operations that
every worker must join.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distml.errors import DistmlError
from distml.inference.convert import OnnxConverter
from distml.inference.metrics import THRESHOLD as IOU_THRESHOLD
from distml.inference.metrics import binary_iou
from distml.staging import write_text_atomic
from distml.tfkeras import use_tf_keras
from distml.training.inputs import TrainingData, load_training_data
from distml.training.model_folder import save_model_folder
from distml.training.models import bce_dice_loss, build_model, task_of

# tf-keras (Keras 2) rather than Keras 3: Keras 3's model.fit fails under MultiWorkerMirroredStrategy
# (PerReplica conversion error); TensorFlow picks tf-keras only if asked before its first import,
# and this module imports TensorFlow only inside functions.
use_tf_keras()

#: The epoch history kept in the backup folder, so that a resumed run reports every epoch.
HISTORY_FILE = "distml-history.json"
#: Exit code of a worker that lost a peer: MultiWorkerMirroredStrategy's health check aborts the
#: collectives with UnavailableError when another worker dies (tensorflow 2.21
#: python/distribute/collective_all_reduce_strategy.py:337-339, 1030-1033). It is >= 128 (and above the codes a
#: signal gives, 129-192), so a TFJob replica under restartPolicy ExitCode is recreated and resumes
#: from its backup, as the dead peer is, rather than failing the job (training-operator v1.9.0
#: pkg/util/train/train_util.go:24-26, pkg/controller.v1/common/pod.go:350-366).
PEER_LOST_EXIT_CODE = 200


@dataclass
class WorkerConfig:
    """What one worker trains; ``batch_size`` is per worker (global batch = batch_size x workers)."""

    model: str
    data: Path
    out: Path
    epochs: int = 5
    batch_size: int = 32
    learning_rate: float = 1e-3
    image_size: int | None = None
    onnx: bool = False
    seed: int = 0
    backup_dir: Path | None = None  # default: .<out>.backup beside out (on the shared volume on a cluster)


@dataclass
class Role:
    """This process's place in the cluster, from TF_CONFIG."""

    task_type: str = "worker"
    index: int = 0
    workers: int = 1
    is_chief: bool = True
    rank: int = 0  # 0..workers-1 over chief and workers: which data shard this process reads
    name: str = field(init=False)

    def __post_init__(self) -> None:
        self.name = f"{self.task_type}-{self.index}"


def role_from_tf_config(raw: str | None) -> Role:
    """Chief is the ``chief`` task, else worker 0 (the Training Operator's rule); no TF_CONFIG: alone."""
    if not raw:
        return Role()
    config = json.loads(raw)
    cluster = config.get("cluster", {})
    task = config.get("task", {})
    task_type, index = task.get("type", "worker"), int(task.get("index", 0))
    has_chief = bool(cluster.get("chief"))
    workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
    is_chief = task_type == "chief" or (not has_chief and task_type == "worker" and index == 0)
    rank = index + 1 if has_chief and task_type == "worker" else index
    return Role(task_type, index, max(workers, 1), is_chief, rank)


def train(config: WorkerConfig, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Train under MultiWorkerMirroredStrategy, export on the chief; return the metrics."""
    role = role_from_tf_config(os.environ.get("TF_CONFIG"))
    # The chief's ONNX converter starts now: its imports overlap this worker's and its training.
    with OnnxConverter() if config.onnx and role.is_chief else contextlib.nullcontext() as converter:
        return _train(config, role, progress, converter)


def _train(config: WorkerConfig, role: Role, progress: Callable[[str], None], converter: Any) -> dict[str, Any]:
    import tensorflow as tf
    import tf_keras

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    task = task_of(config.model)
    data = load_training_data(
        config.data,
        worker_index=role.rank,
        workers=role.workers,
        image_size=config.image_size,
        with_test=role.is_chief,
    )
    _check_task(data, task, config)
    tf_keras.utils.set_random_seed(config.seed)
    global_batch = config.batch_size * strategy.num_replicas_in_sync
    steps = max(1, data.train_examples // global_batch)
    with strategy.scope():
        model = build_model(config.model, data.input_shape, len(data.classes))
        model.compile(
            optimizer=tf_keras.optimizers.Adam(config.learning_rate),
            loss=bce_dice_loss if task == "segmentation" else "sparse_categorical_crossentropy",
            metrics=[_metric(task)],
        )
    progress(
        f"{role.name} start examples={data.train_examples} global_batch={global_batch} steps_per_epoch={steps}"
        f" epochs={config.epochs}"
    )
    backup_root = config.backup_dir or config.out.parent / f".{config.out.name}.backup"
    backup_dir = backup_root / run_fingerprint(config, role.workers)
    # Only the chief keeps the history file: on a cluster every worker sees the same backup folder.
    epochs = _EpochHistory(backup_dir / HISTORY_FILE if role.is_chief else None)
    # Order matters: the history is saved before the backup, and the line is printed after it,
    # so a printed epoch is one a restarted worker will not train again.
    callbacks = [epochs.recorder(), tf_keras.callbacks.BackupAndRestore(str(backup_dir))]
    callbacks.append(epochs.printer(role.name, config.epochs, progress))
    model.fit(
        _train_dataset(data, global_batch, config.seed),
        epochs=config.epochs,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=callbacks,
    )
    metrics: dict[str, Any] = {
        "model": config.model,
        "workers": role.workers,
        "replicas": strategy.num_replicas_in_sync,
        "global_batch_size": global_batch,
        "steps_per_epoch": steps,
        "train_examples": data.train_examples,
        "epochs": epochs.history,
        "resumed_at_epoch": epochs.resumed_at,
    }
    if role.is_chief:
        metrics.update(_test_metrics(model, data, task))
    _export(model, config, role, data, task, metrics, converter)
    if role.is_chief:
        shutil.rmtree(backup_root, ignore_errors=True)
    progress(f"{role.name} done weights_sha256={weights_digest(model)}")
    return metrics


def run_fingerprint(config: WorkerConfig, workers: int) -> str:
    """Names the backup of one training run: a restart resumes only a run with the same settings.

    Each setting that changes what the weights mean is in it (not ``epochs``: a restart may ask for
    more); every worker computes the same name, so none has to remove another run's backup.
    """
    settings = {
        "model": config.model,
        "data": str(config.data),
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "image_size": config.image_size,
        "seed": config.seed,
        "workers": workers,
    }
    return "run-" + hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]


def weights_digest(model: Any) -> str:
    """SHA-256 of every weight's bytes, in order: equal digests mean equal models."""
    digest = hashlib.sha256()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def _check_task(data: TrainingData, task: str, config: WorkerConfig) -> None:
    if data.task != task:
        raise DistmlError(
            f"model {config.model} does {task} but the data is a {data.task} dataset",
            where=str(config.data),
            hint="Use unet-small for masks (segmentation) and mlp, cnn or lenet5 for class labels.",
        )
    if task == "segmentation" and (data.input_shape[0] % 4 or data.input_shape[1] % 4):
        raise DistmlError(
            f"unet-small needs image sides divisible by 4, got {data.input_shape[:2]}",
            hint="Pass --image-size 32 or 64.",
        )


def _metric(task: str) -> Any:
    import tf_keras

    if task == "segmentation":
        # Per-epoch progress: IoU over all pixels (pixel >= 0.5 positive, as binary_iou); test_miou is per image.
        return tf_keras.metrics.BinaryIoU(target_class_ids=[1], threshold=IOU_THRESHOLD, name="iou")
    return "accuracy"


def _train_dataset(data: TrainingData, global_batch: int, seed: int) -> Any:
    """Shuffled, repeated, batched by the global batch; the strategy splits batches over replicas."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((data.x_train, data.y_train))
    # Same seed on every worker: with DATA sharding, workers must see the same order to take disjoint elements.
    dataset = dataset.shuffle(len(data.x_train), seed=seed).repeat().batch(global_batch, drop_remainder=True)
    options = tf.data.Options()
    policy = tf.data.experimental.AutoShardPolicy
    options.experimental_distribute.auto_shard_policy = policy.OFF if data.presharded else policy.DATA
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def _test_metrics(model: Any, data: TrainingData, task: str, batch: int = 256) -> dict[str, float]:
    """Test metrics from plain forward passes (no collectives): the chief alone runs them."""
    if not len(data.x_test):
        return {}
    predictions = np.concatenate(
        [model(data.x_test[i : i + batch], training=False).numpy() for i in range(0, len(data.x_test), batch)]
    )
    eps = 1e-7
    if task == "segmentation":
        loss = np.mean(bce_dice_loss(data.y_test, predictions).numpy())  # the training loss
        return {"test_loss": float(loss), "test_miou": float(np.mean(binary_iou(predictions, data.y_test)))}
    picked = predictions[np.arange(len(data.y_test)), data.y_test]
    return {
        "test_loss": float(-np.mean(np.log(np.clip(picked, eps, 1.0)))),
        "test_accuracy": float(np.mean(np.argmax(predictions, axis=1) == data.y_test)),
    }


def _export(
    model: Any, config: WorkerConfig, role: Role, data: TrainingData, task: str, metrics: dict, converter: Any
) -> None:
    """Every worker saves (collectives may run); only the chief's folder is kept, with ONNX if asked."""
    target = config.out
    scratch = None
    if not role.is_chief:
        scratch = Path(tempfile.mkdtemp(prefix=f"distml-{role.name}-"))
        target = scratch / "model"
    try:
        save_model_folder(
            model,
            target,
            architecture=config.model,
            task=task,
            input_shape=list(data.input_shape),
            classes=data.classes,
            metrics=metrics,
            onnx=config.onnx and role.is_chief,
            converter=converter,
        )
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


class _EpochHistory:
    """Per-epoch metrics; two Keras callbacks fill it (``recorder``) and report it (``printer``).

    With a ``path`` (in the backup folder) the history is saved after each epoch and read back
    when BackupAndRestore resumes a restarted worker, so the history covers every epoch.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.history: list[dict[str, float]] = []
        self.resumed_at: int | None = None

    def recorder(self) -> Any:
        import tf_keras

        owner = self

        class Recorder(tf_keras.callbacks.Callback):
            def on_train_begin(self, logs: dict | None = None) -> None:
                self._first_epoch = True

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                if self._first_epoch:  # BackupAndRestore has set the epoch to resume at by now
                    self._first_epoch = False
                    owner._restore(epoch)
                self._started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                seconds = round(time.perf_counter() - self._started, 3)
                values = {key: float(value) for key, value in (logs or {}).items()}
                owner.history.append({"epoch": epoch + 1, **values, "seconds": seconds})
                owner._save()

        return Recorder()

    def printer(self, worker: str, epochs: int, progress: Callable[[str], None]) -> Any:
        """One line per epoch: worker, epoch, loss, metrics, seconds (and one if it resumed)."""
        import tf_keras

        owner = self

        class Printer(tf_keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                if owner.resumed_at == epoch + 1:
                    progress(f"{worker} resuming at epoch={epoch + 1}/{epochs}")

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                entry = owner.history[-1]
                shown = " ".join(
                    f"{key}={value:.4f}" for key, value in entry.items() if key not in ("epoch", "seconds")
                )
                progress(f"{worker} epoch={epoch + 1}/{epochs} {shown} seconds={entry['seconds']:.2f}")

        return Printer()

    def _restore(self, first_epoch: int) -> None:
        """Keep the saved epochs before ``first_epoch`` (0-based), the ones the backup holds."""
        if first_epoch > 0:
            self.resumed_at = first_epoch + 1
            if self.path and self.path.exists():
                saved = json.loads(self.path.read_text(encoding="utf-8"))
                self.history = [entry for entry in saved if entry["epoch"] <= first_epoch]

    def _save(self) -> None:
        if self.path:
            write_text_atomic(self.path, json.dumps(self.history))


def worker_args(config: WorkerConfig) -> list[str]:
    """The worker's command-line arguments for ``config`` (inverse of parse_args): both launchers pass these."""
    args = ["--model", config.model, "--data", str(config.data), "--out", str(config.out)]
    args += ["--epochs", str(config.epochs), "--batch-size", str(config.batch_size)]
    args += ["--learning-rate", repr(config.learning_rate), "--seed", str(config.seed)]
    if config.image_size:
        args += ["--image-size", str(config.image_size)]
    if config.backup_dir:
        args += ["--backup-dir", str(config.backup_dir)]
    if config.onnx:
        args.append("--onnx")
    return args


def parse_args(argv: list[str] | None = None) -> WorkerConfig:
    parser = argparse.ArgumentParser(prog="python -m distml.training.worker", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True, type=Path, help="a loaded-data folder (metadata.json)")
    parser.add_argument("--out", required=True, type=Path, help="the Model folder the chief writes")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32, help="per worker")
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--image-size", type=int, default=None, help="resize DTD images to this side")
    parser.add_argument("--onnx", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backup-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    return WorkerConfig(**vars(args))


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    try:
        train(config, progress=lambda line: print(line, flush=True))
    except DistmlError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    except Exception as err:
        if not _peer_lost(err):
            raise
        print(f"error: a peer worker was lost ({err}); exiting {PEER_LOST_EXIT_CODE} to be restarted", flush=True)
        return PEER_LOST_EXIT_CODE
    return 0


def _peer_lost(err: BaseException) -> bool:
    """An UnavailableError: what the strategy raises once it has aborted the collectives for a dead peer."""
    errors = sys.modules.get("tensorflow.python.framework.errors_impl")
    return errors is not None and isinstance(err, errors.UnavailableError)


if __name__ == "__main__":
    sys.exit(main())
