"""Running the pipelines: compile them, run them on KFP's local runner, upload and submit them to a cluster.

Tooling around the pipelines, apart from the pipelines themselves (``distml.pipelines`` only wires
components): ``params`` (``--param KEY=VALUE``, argument checks), ``compiled`` (pipeline YAML and the
staleness check), ``local_run`` (KFP's local subprocess runner), ``remote`` (the Kubeflow Pipelines API),
``progress`` (the events both report). The CLI (``distml compile|run|submit|upload|demo``) and the
notebooks call these; they report progress through a callback instead of printing. Imports KFP.
"""

from distml.runs.compiled import compile_all, compile_pipeline, stale_files
from distml.runs.local_run import DEFAULT_RUNS_DIR, LocalRun, run_pipeline_locally
from distml.runs.params import check_arguments, convert_param, parameter_kinds, parse_params
from distml.runs.progress import TaskProgress, TaskProgressCallback
from distml.runs.remote import FINAL_RUN_STATES, Submission, Upload, connect, submit, upload

__all__ = [
    "DEFAULT_RUNS_DIR",
    "FINAL_RUN_STATES",
    "LocalRun",
    "Submission",
    "TaskProgress",
    "TaskProgressCallback",
    "Upload",
    "check_arguments",
    "compile_all",
    "compile_pipeline",
    "connect",
    "convert_param",
    "parameter_kinds",
    "parse_params",
    "run_pipeline_locally",
    "stale_files",
    "submit",
    "upload",
]
