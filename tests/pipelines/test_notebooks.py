"""The notebooks of notebooks/, executed with nbclient on small parameters, and what they show.

Each runs in a fresh `python3` kernel (the ipykernel kernelspec of this environment; jupyter_client
starts it with this interpreter) with its working folder in a temporary directory, so its outputs
land there and not in the repository. The small settings come in through environment variables,
which the notebooks' first ("parameters") cell reads and the kernel inherits.

The cluster notebook talks to a local HTTP test double of the Kubeflow Pipelines v2beta1 API
(pytest-httpserver, tests/kfp_api_double.py) at the client's boundary: the kernel's
`kfp.Client(host=KFP_HOST)` makes the same calls it makes against a real KFP 2.x server.
"""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import kfp_api_double
import nbformat
import pytest
import yaml
from nbclient import NotebookClient
from PIL import Image

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("01_quickstart_local.ipynb", "02_submit_to_cluster.ipynb", "03_distributed_inference.ipynb")


def execute(name: str, cwd: Path) -> nbformat.NotebookNode:
    """NAME executed top to bottom in CWD; a cell that raises fails the test with the cell's traceback."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, kernel_name="python3", timeout=240, resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Everything the cells printed or showed as text, in order."""
    pieces = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                pieces.append(output.text)
            elif "data" in output:
                pieces.append((output.data.get("text/markdown") or output.data.get("text/plain", "")) + "\n")
    return "".join(pieces)


def pngs_of(notebook: nbformat.NotebookNode) -> list[Image.Image]:
    return [
        Image.open(io.BytesIO(base64.b64decode(output.data["image/png"])))
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if "image/png" in output.get("data", {})
    ]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_clean_and_take_parameters_first(name):
    """No outputs in the repository (small diffs); the first code cell is the tagged parameters cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "os.environ.get(" in code[0].source
    assert notebook.metadata.kernelspec.name == "python3"


@pytest.mark.slow
def test_quickstart_runs_train_select_deploy_locally(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTML_NB_MODELS", '["mlp", "cnn"]')
    monkeypatch.setenv("DISTML_NB_WORKERS", "1")
    monkeypatch.setenv("DISTML_NB_EPOCHS", "2")
    before = sorted(NOTEBOOKS.iterdir())

    text = text_of(execute("01_quickstart_local.ipynb", tmp_path))

    assert "train_select_deploy: SUCCEEDED in" in text
    for task in ("load-data", "train", "select-model", "deploy-kserve"):
        assert re.search(rf"\] {task}: SUCCEEDED in \d+\.\ds", text), task
    assert re.search(r"/train\s+mlp\s+0\.\d{4}", text) and re.search(r"/train\s+cnn\s+0\.\d{4}", text)
    assert "| rank | model | test_accuracy |" in text
    assert re.search(r"chosen: (mlp|cnn), Model folder", text)
    assert "status: Ready" in text
    assert "kind: InferenceService" in text

    (run_json,) = tmp_path.glob("distml-runs/train_select_deploy-*/run.json")
    summary = json.loads(run_json.read_text())
    assert summary["state"] == "SUCCEEDED"
    assert summary["arguments"] == {"models": ["mlp", "cnn"], "workers": 1, "epochs": 2}
    assert sorted(NOTEBOOKS.iterdir()) == before  # nothing written beside the notebooks


def test_cluster_notebook_uploads_and_runs_on_the_gpu_pool(tmp_path, monkeypatch, httpserver):
    """The notebook against the KFP API double: upload, run with the GPU pool's parameters, follow it."""
    kfp_api_double.serve_single_user(httpserver)
    uploads = kfp_api_double.expect_new_pipeline(httpserver, pipeline_id="pipe-7", version_id="ver-7")
    kfp_api_double.expect_new_experiment(httpserver, "nightly", experiment_id="exp-7")
    runs = kfp_api_double.runs_answering(
        httpserver,
        ("PENDING", {}),
        ("RUNNING", {"load-data": "SUCCEEDED", "infer-shard": "RUNNING"}),
        ("SUCCEEDED", {"load-data": "SUCCEEDED", "infer-shard": "SUCCEEDED", "gather-metrics": "SUCCEEDED"}),
    )
    monkeypatch.setenv("KFP_HOST", httpserver.url_for("/"))
    monkeypatch.setenv("KFP_EXPERIMENT", "nightly")
    monkeypatch.setenv("KFP_POLL_SECONDS", "0.05")

    text = text_of(execute("02_submit_to_cluster.ipynb", tmp_path))
    httpserver.check_assertions()

    ((upload_args, package),), (run,) = uploads, runs
    assert upload_args["name"] == "distributed_inference"
    compiled = next(yaml.safe_load_all(package))
    assert compiled["pipelineInfo"]["name"] == "distributed-inference"
    assert package == (tmp_path / "compiled" / "distributed_inference.yaml").read_bytes()
    assert run["experiment_id"] == "exp-7"
    assert run["pipeline_version_reference"] == {"pipeline_id": "pipe-7", "pipeline_version_id": "ver-7"}
    parameters = run["runtime_config"]["parameters"]
    assert parameters["node_selector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert parameters["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert parameters["gpus"] == "1"  # KFP's driver reads accelerator counts as strings (issue 11 defect 3)

    assert "exec-infer-shard: node selector <- pipelinechannel--node_selector" in text
    assert "accelerator {{$.inputs.parameters['pipelinechannel--accelerator']}} x" in text
    assert "pipeline distributed_inference (pipe-7), version distributed_inference (ver-7)" in text
    assert "infer-shard: RUNNING" in text and "infer-shard: SUCCEEDED" in text
    assert text.rstrip().endswith("run run-1: SUCCEEDED")


@pytest.mark.slow
def test_walkthrough_trains_splits_infers_gathers_and_draws(tmp_path, monkeypatch):
    parts, show, size = 3, 3, 32
    small = {"IMAGES": 30, "IMAGE_SIZE": size, "EPOCHS": 2, "WORKERS": 1, "PARTS": parts, "SHOW": show}
    for key, value in small.items():
        monkeypatch.setenv(f"DISTML_NB_{key}", str(value))

    notebook = execute("03_distributed_inference.ipynb", tmp_path)
    text = text_of(notebook)

    assert re.search(r"test MIoU \d\.\d{4} \(global batch 8, 1 workers\)", text)
    assert len(re.findall(r"part-\d{3}-synthetic-lesions\.yml: \d+ test images, MIoU \d\.\d{4}", text)) == parts
    assert "gathered == unsplit: True" in text
    (work,) = tmp_path.glob("distml-walkthrough-*")
    gathered = json.loads((work / "gathered" / "metrics.json").read_text())
    unsplit = json.loads((work / "unsplit" / "metrics.json").read_text())
    assert gathered["images"] == unsplit["images"] == 6  # 20% of 30
    assert gathered["miou"] == pytest.approx(unsplit["miou"], abs=1e-9)
    assert len(gathered["shards"]) == parts
    assert (work / "gathered" / "report.html").is_file()

    (grid,) = pngs_of(notebook)
    side = size * (128 // size)
    assert grid.size == (4 * (side + 6) + 170, 20 + show * (side + 6))
    first_prediction = grid.crop((2 * (side + 6), 20, 2 * (side + 6) + side, 20 + side)).convert("L")
    assert set(first_prediction.getdata()) <= {0, 255}  # a binary mask was drawn there
