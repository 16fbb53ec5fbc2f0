"""Distributed training: the MultiWorkerMirroredStrategy worker, TFJob specs and launchers.

The names a notebook or script needs, importable from here (each module loads on first use:
importing the package loads no TensorFlow).
"""

from distml.lazy_exports import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "distml.training.launch": ("train", "prepare_data"),
        "distml.training.launchers": ("Launcher", "DryRun", "LAUNCHER_MODULES", "create_launcher"),
        "distml.training.local": ("LocalLauncher",),
        "distml.training.kubernetes": ("KubernetesLauncher", "ClusterOptions", "pod_template"),
        "distml.training.worker": ("WorkerConfig",),
        "distml.training.spec": ("TrainingSpec", "PvcMount", "RunPolicy"),
        "distml.training.model_folder": ("load_model_folder",),
        "distml.folders": ("read_model_info", "read_model_metrics"),  # the Model folder contract
    },
)
