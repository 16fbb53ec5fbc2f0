"""`distml compile|run|submit|upload` and distml.runs.

The cluster commands talk to a local HTTP test double of the Kubeflow Pipelines REST API
(pytest-httpserver, tests/kfp_api_double.py) at the client's boundary: `kfp.Client(host=httpserver.url_for("/"))`
makes the same calls it makes against a real KFP 2.x server (healthz, experiments, runs, pipelines/upload,
pipelines/upload_version), and the double answers them as the v2beta1 API does.

No `from __future__ import annotations` here: KFP reads the test components' annotations.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import kfp_api_double
import pytest
import yaml
from click.testing import CliRunner
from kfp import dsl
from kfp.components import load_component_from_file
from werkzeug import Request, Response

import distml.pipelines
from distml import runs
from distml.cli import main
from distml.errors import DistmlError
from distml.runs import local_run

API = kfp_api_double.API


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def write_text(repeat: int, text: str, out: dsl.Output[dsl.Dataset]) -> int:
    """Writes TEXT REPEAT times; returns the length written."""
    content = text * repeat
    with open(out.path, "w") as handle:
        handle.write(content)
    out.metadata["repeat"] = repeat
    return len(content)


@dsl.component(base_image="python:3.11", install_kfp_package=False)
def measure(data: dsl.Input[dsl.Dataset], scale: float, strict: bool) -> float:
    """The scaled length of DATA; fails when STRICT, to exercise a failing task."""
    if strict:
        raise ValueError("strict mode refuses to measure")
    with open(data.path) as handle:
        return len(handle.read()) * scale


@dsl.pipeline(name="tiny", description="Two lightweight components, for the runner's tests.")
def tiny(repeat: int = 3, text: str = "ab", scale: float = 0.5, strict: bool = False, tags: dict = {}) -> float:  # noqa: B006
    written = write_text(repeat=repeat, text=text)
    return measure(data=written.outputs["out"], scale=scale, strict=strict).output


@dsl.pipeline(name="tiny-fan-out")
def tiny_fan_out(repeat: int = 2):
    written = write_text(repeat=repeat, text="abc")
    with dsl.ParallelFor([1.0, 2.0, 3.0], parallelism=3) as scale:
        measure(data=written.outputs["out"], scale=scale, strict=False)


@dsl.pipeline(name="tiny-if")
def tiny_if(strict: bool = True):
    written = write_text(repeat=2, text="ab")
    with dsl.If(written.outputs["Output"] == 4, name="long-enough"):
        measure(data=written.outputs["out"], scale=1.0, strict=strict)


@pytest.fixture
def tiny_registry(monkeypatch):
    """The registry holds only `tiny`, so the commands run it like any pipeline module."""
    monkeypatch.setattr(distml.pipelines, "all_pipelines", lambda: {"tiny": tiny})


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# --- parameters -------------------------------------------------------------------------------


def test_params_take_the_declared_types():
    got = runs.parse_params(
        tiny, ["repeat=4", "text=x=y", "scale=2", "strict=TRUE", 'tags={"run": [1, 2]}', "repeat=5"]
    )
    assert got == {"repeat": 5, "text": "x=y", "scale": 2.0, "strict": True, "tags": {"run": [1, 2]}}
    assert isinstance(got["scale"], float)
    assert runs.parse_params(tiny, ["strict=no"]) == {"strict": False}


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("repeats=3", "tiny has no parameter 'repeats'"),
        ("repeat=3.5", "'3.5' is not a valid int"),
        ("scale=big", "'big' is not a valid float"),
        ("strict=maybe", "'maybe' is not a valid bool"),
        ("tags=[1]", "'[1]' is not a valid dict"),
        ("tags={bad json", "is not a valid dict"),
        ("repeat", "'repeat' is not KEY=VALUE"),
    ],
)
def test_bad_params_are_named(item, message):
    with pytest.raises(DistmlError, match=message.replace("[", r"\[").replace("]", r"\]")):
        runs.parse_params(tiny, [item])


def test_cli_rejects_unknown_param_and_pipeline(tiny_registry, tmp_path):
    """Bad option values and arguments are usage errors (exit 2), as click's own."""
    result = invoke("run", "tiny", "--local", "--param", "epochs=3", "--out", tmp_path)
    assert result.exit_code == 2
    assert "Invalid value for '--param epochs': tiny has no parameter 'epochs'" in result.output
    assert "Parameters: repeat, scale, strict, tags, text" in result.output
    assert invoke("run", "tiny", "--local", "--param", "repeat=many", "--out", tmp_path).exit_code == 2
    assert invoke("submit", "tiny", "--host", "http://127.0.0.1:9", "--param", "nope=1").exit_code == 2
    result = invoke("run", "nope", "--local", "--out", tmp_path)
    assert result.exit_code == 2
    assert "unknown pipeline 'nope'. Known pipelines: tiny" in result.output
    assert invoke("run", "tiny", "--out", tmp_path).exit_code == 2  # --local is required
    assert not any(tmp_path.iterdir())


# --- local runner -----------------------------------------------------------------------------


def test_run_local_lists_outputs_and_progress(tiny_registry, tmp_path):
    result = invoke("run", "tiny", "--local", "--param", "repeat=5", "--param", "scale=2", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    for line in ("write-text: RUNNING", "write-text: SUCCEEDED in", "measure: SUCCEEDED in", "run: SUCCEEDED in"):
        assert line in result.stderr
    assert "(pipeline) │ Output" in result.stdout
    assert "20.0" in result.stdout  # len("ab" * 5) * 2

    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["state"] == "SUCCEEDED"
    assert summary["arguments"] == {"repeat": 5, "scale": 2.0}
    assert summary["outputs"] == {"Output": 20.0}
    assert summary["task_outputs"]["measure"] == {"Output": 20.0}
    written = Path(summary["task_outputs"]["write-text"]["out"])
    assert written.read_text() == "ab" * 5
    assert summary["task_outputs"]["write-text"]["Output"] == 10
    assert [t["task"] for t in summary["tasks"] if t["state"] == "SUCCEEDED"] == ["write-text", "measure", "run"]
    assert "strict mode" not in (run_dir / "kfp-local.log").read_text()
    assert "Executing task 'measure'" in (run_dir / "kfp-local.log").read_text()


def test_parallel_tasks_each_report_and_leave_logging_and_print_alone(tmp_path):
    """Tasks of a dsl.ParallelFor run at once; KFP's per-message logging set-up must not lose any."""
    import builtins
    import logging

    root, print_before = logging.getLogger(), builtins.print
    handlers_before, level_before = list(root.handlers), root.level
    events = []
    run = runs.run_pipeline_locally(tiny_fan_out, {}, out_dir=tmp_path, on_progress=events.append)
    assert [e.task for e in events if e.state == "SUCCEEDED"].count("measure") == 3
    # Each end was paired with its own start (same thread); an unpaired end would report 0 s.
    assert all(e.seconds > 0 for e in events if e.task == "measure" and e.state == "SUCCEEDED")
    assert {task: out["Output"] for task, out in run.task_outputs.items() if "measure" in task} == {
        "for-loop-2-iteration-0/measure": 6.0,
        "for-loop-2-iteration-1/measure": 12.0,
        "for-loop-2-iteration-2/measure": 18.0,
    }
    assert builtins.print is print_before
    assert root.handlers == handlers_before and root.level == level_before


def test_parallel_iterations_of_one_task_get_their_own_durations(monkeypatch):
    """ParallelFor iterations log the same task name from their own threads: a later iteration that
    ends first must not be given the duration of an earlier one (pairing starts and ends in order would)."""
    import logging
    import threading

    # KFP logs a task's start and end from the thread that runs it, one thread per running iteration.
    messages = ("Executing task 'measure'", "Task 'measure' finished with status SUCCESS")
    both_running = threading.Barrier(2)
    logged: dict[str, list[logging.LogRecord]] = {}

    def iteration(name: str) -> None:
        logged[name] = [logging.makeLogRecord({"msg": message}) for message in messages]
        both_running.wait()  # alive at the same time, so the two threads are told apart

    threads = [threading.Thread(target=iteration, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (first_start, first_end), (second_start, second_end) = logged["first"], logged["second"]
    assert first_start.thread != second_start.thread

    events = []
    watcher = local_run._TaskLogWatcher(0.0, events.append)
    # The first iteration starts at 0 s and ends at 10 s; the second starts at 1 s and ends at 2 s.
    for now, record in ((0.0, first_start), (1.0, second_start), (2.0, second_end), (10.0, first_end)):
        monkeypatch.setattr(local_run.time, "monotonic", lambda now=now: now)
        watcher.filter(record)
    assert [(e.state, e.elapsed_s, e.seconds) for e in events] == [
        ("RUNNING", 0.0, None),
        ("RUNNING", 1.0, None),
        ("SUCCEEDED", 2.0, 1.0),
        ("SUCCEEDED", 10.0, 10.0),
    ]


def test_run_local_failure_names_the_task_and_keeps_the_log(tmp_path):
    events = []
    with pytest.raises(DistmlError, match=r"pipeline tiny failed: .*'measure'") as raised:
        runs.run_pipeline_locally(tiny, {"strict": True}, out_dir=tmp_path, on_progress=events.append)
    (run_dir,) = tmp_path.iterdir()
    assert str(run_dir / "kfp-local.log") in str(raised.value)
    assert "ValueError: strict mode refuses to measure" in (run_dir / "kfp-local.log").read_text()
    assert json.loads((run_dir / "run.json").read_text())["state"] == "FAILED"
    assert ("measure", "FAILED") in [(e.task, e.state) for e in events]
    assert events[-1].task == "run" and events[-1].state == "FAILED"


def test_run_failure_inside_a_condition_shows_the_task_and_its_error(monkeypatch, tmp_path):
    """KFP says only which task failed inside the dsl.If branch; the cause was only in kfp-local.log."""
    monkeypatch.setattr(distml.pipelines, "all_pipelines", lambda: {"tiny_if": tiny_if})
    result = invoke("run", "tiny_if", "--local", "--out", tmp_path)
    assert result.exit_code == 1, result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "'measure' inside 'condition-1'" in error
    assert "task measure: ValueError: strict mode refuses to measure" in error
    (run_dir,) = tmp_path.iterdir()
    summary = json.loads((run_dir / "run.json").read_text())
    assert summary["error"].endswith("task measure: ValueError: strict mode refuses to measure")


# --- compile ----------------------------------------------------------------------------------


def test_compile_writes_loadable_yaml_and_check_catches_drift(tiny_registry, tmp_path):
    result = invoke("compile", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    compiled = tmp_path / "tiny.yaml"
    component = load_component_from_file(str(compiled))
    assert set(component.component_spec.inputs) == {"repeat", "text", "scale", "strict", "tags"}
    assert (tmp_path / "components" / "load_data.yaml").is_file()
    assert invoke("compile", "--out", tmp_path, "--check").exit_code == 0

    compiled.write_text(compiled.read_text().replace("defaultValue: 3", "defaultValue: 4"))
    result = invoke("compile", "--out", tmp_path, "--check")
    assert result.exit_code == 1
    assert f"{compiled}: differs from a fresh compile" in result.output
    compiled.unlink()
    (tmp_path / "old.yaml").write_text("{}")
    result = invoke("compile", "--out", tmp_path, "--check")
    assert f"{compiled}: missing" in result.output
    assert "old.yaml: no pipeline or component of that name" in result.output


def test_committed_yaml_equals_a_fresh_compile():
    """Every pipeline (and component) in the registry, compiled now, equals the committed YAML.

    Runs in a fresh process without DISTML_IMAGE and DISTML_WORK_PVC, so the defaults are what is compared.
    """
    env = {key: value for key, value in os.environ.items() if key not in ("DISTML_IMAGE", "DISTML_WORK_PVC")}
    result = subprocess.run(
        [sys.executable, "-c", "from distml.cli import main; main()", "compile", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert len(list(distml.pipelines.COMPILED_DIR.glob("*.yaml"))) == len(distml.pipelines.PIPELINE_NAMES)


# --- cluster: against the KFP API test double ---------------------------------------------------


@pytest.fixture
def kfp_api(httpserver):
    """The part of the KFP v2beta1 API every client session needs: health, as a single-user install."""
    return kfp_api_double.serve_single_user(httpserver)


def test_submit_sends_the_compiled_spec_and_follows_the_run(tiny_registry, kfp_api):
    kfp_api_double.expect_new_experiment(kfp_api, "nightly")
    created = kfp_api_double.runs_answering(
        kfp_api,
        ("RUNNING", {"write-text": "RUNNING"}),
        ("RUNNING", {"write-text": "SUCCEEDED", "measure": "RUNNING"}),
        ("SUCCEEDED", {"write-text": "SUCCEEDED", "measure": "SUCCEEDED"}),
    )
    host = kfp_api.url_for("/")
    result = invoke("submit", "tiny", "--host", host, "--experiment", "nightly", "--param", "repeat=7", "--poll", 0.1)
    assert result.exit_code == 0, result.output
    kfp_api.check_assertions()
    (body,) = created
    assert body["experiment_id"] == "exp-1"
    assert body["display_name"].startswith("tiny-")
    assert body["runtime_config"]["parameters"] == {"repeat": 7}
    assert body["pipeline_spec"]["pipelineInfo"]["name"] == "tiny"
    assert {"comp-write-text", "comp-measure"} <= set(body["pipeline_spec"]["components"])
    assert "measure: RUNNING" in result.stderr and "measure: SUCCEEDED" in result.stderr
    assert "run: SUCCEEDED" in result.stderr
    assert f"run run-1: SUCCEEDED; {host.rstrip('/')}/#/runs/details/run-1" in result.stdout


def test_submit_reports_a_failed_run_with_its_failed_tasks(tiny_registry, kfp_api):
    kfp_api_double.expect_new_experiment(kfp_api, "Default")
    kfp_api_double.runs_answering(kfp_api, ("FAILED", {"write-text": "SUCCEEDED", "measure": "FAILED"}))
    result = invoke("submit", "tiny", "--host", kfp_api.url_for("/"), "--poll", 0.1)
    assert result.exit_code == 1
    assert "run run-1 finished FAILED: task measure failed; failed tasks: measure" in result.output
    assert "/#/runs/details/run-1" in result.output


def test_submit_times_out_without_cancelling(tiny_registry, kfp_api):
    kfp_api_double.expect_new_experiment(kfp_api, "Default")
    kfp_api_double.runs_answering(kfp_api, *[("RUNNING", {})] * 50)
    with pytest.raises(DistmlError, match="run run-1 still RUNNING after") as raised:
        runs.submit("tiny", kfp_api.url_for("/"), timeout_s=0.2, poll_s=0.1)
    assert "goes on running on the cluster" in str(raised.value)
    assert not [r for r, _ in kfp_api.log if r.path.endswith(":terminate")]


def test_upload_creates_then_adds_versions(tiny_registry, kfp_api):
    uploads: list[tuple[str, dict, bytes]] = []

    def store(request: Request) -> Response:
        uploads.append((request.path, dict(request.args), request.files["uploadfile"].read()))
        if request.path.endswith("upload"):
            body = {"pipeline_id": "pipe-1", "display_name": request.args["name"]}
        else:
            body = {"pipeline_id": "pipe-1", "pipeline_version_id": "ver-2", "display_name": request.args["name"]}
        return Response(json.dumps(body), content_type="application/json")

    listings = iter([{}, {"pipelines": [{"pipeline_id": "pipe-1", "display_name": "tiny"}]}])
    kfp_api.expect_request(f"{API}/pipelines", method="GET").respond_with_handler(
        lambda request: Response(json.dumps(next(listings)), content_type="application/json")
    )
    kfp_api.expect_request(f"{API}/pipelines/upload", method="POST").respond_with_handler(store)
    kfp_api.expect_request(f"{API}/pipelines/upload_version", method="POST").respond_with_handler(store)
    host = kfp_api.url_for("/")

    result = invoke("upload", "tiny", "--host", host)
    assert result.exit_code == 0, result.output
    assert "created pipeline tiny (pipe-1)" in result.output
    result = invoke("upload", "tiny", "--host", host, "--version", "v2")
    assert result.exit_code == 0, result.output
    assert "added version v2 (ver-2) to tiny" in result.output
    kfp_api.check_assertions()

    (first_path, first_args, first_file), (second_path, second_args, second_file) = uploads
    assert first_path.endswith("/pipelines/upload") and first_args["name"] == "tiny"
    assert second_path.endswith("/upload_version") and second_args == {"name": "v2", "pipelineid": "pipe-1"}
    assert first_file == second_file
    assert yaml.safe_load(first_file)["pipelineInfo"]["name"] == "tiny"
    filters = [json.loads(r.args["filter"]) for r, _ in kfp_api.log if r.path == f"{API}/pipelines"]
    assert filters[0]["predicates"][0]["stringValue"] == "tiny"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_host_fails_fast_naming_it(tiny_registry):
    host = f"http://127.0.0.1:{_closed_port()}"
    started = time.monotonic()
    result = invoke("upload", "tiny", "--host", host)
    assert time.monotonic() - started < 10
    assert result.exit_code == 1
    assert f"cannot reach Kubeflow Pipelines at {host}" in result.output
    assert "kubectl port-forward" in result.output
    assert isinstance(result.exception, SystemExit)  # CliRunner keeps an exception (traceback) apart from output


@pytest.mark.parametrize(
    ("status", "body", "content_type", "message"),
    [
        (404, "404 page not found", "text/plain", "answered HTTP 404"),
        (401, "unauthorized", "text/plain", "needs credentials"),
        (200, "<html>Sign in</html>", "text/html", "did not answer with JSON"),
    ],
)
def test_host_that_is_not_the_kfp_api_is_named(tiny_registry, httpserver, status, body, content_type, message):
    httpserver.expect_request(f"{API}/healthz").respond_with_data(body, status=status, content_type=content_type)
    result = invoke("submit", "tiny", "--host", httpserver.url_for("/"))
    assert result.exit_code == 1
    assert message in result.output
    assert httpserver.url_for("/").rstrip("/") in result.output


def test_server_errors_carry_the_servers_message(tiny_registry, kfp_api):
    kfp_api.expect_request(f"{API}/experiments", method="GET").respond_with_json(
        {"error_message": "namespace is required in multi-user mode", "code": 3}, status=400
    )
    result = invoke("submit", "tiny", "--host", kfp_api.url_for("/"))
    assert result.exit_code == 1
    assert "submitting tiny failed: HTTP 400: namespace is required in multi-user mode" in result.output


def test_host_must_be_an_url(tiny_registry):
    result = invoke("upload", "tiny", "--host", "kfp.example.com")
    assert result.exit_code == 2
    assert "Invalid value for '--host': 'kfp.example.com' is not an http(s) URL" in result.output


@pytest.mark.parametrize("command", ["submit", "upload"])
@pytest.mark.parametrize("tag", ["2.13.1", "v2.5.0", "1.8.5"])
def test_a_backend_older_than_2_14_is_refused_before_anything_is_sent(tiny_registry, httpserver, command, tag):
    """Issue 11 defect 10: dsl.Collected needs KFP >= 2.14.0 (kubeflow/pipelines commit ed828b513a)."""
    kfp_api_double.serve_single_user(httpserver, tag_name=tag)
    result = invoke(command, "tiny", "--host", httpserver.url_for("/"))
    assert result.exit_code == 1
    assert f"Kubeflow Pipelines {tag} is too old: these pipelines need backend 2.14.0 or newer" in result.output
    assert [request.path for request, _ in httpserver.log] == [f"{API}/healthz"]  # nothing uploaded or run


@pytest.mark.parametrize("tag", ["2.14.0", "2.17.0", "unknown"])
def test_a_recent_or_untagged_backend_is_accepted(tiny_registry, httpserver, tag):
    kfp_api_double.serve_single_user(httpserver, tag_name=tag)
    assert runs.connect(httpserver.url_for("/")) is not None


# --- what the local runner ignores ----------------------------------------------------------

NOISY_PIPELINE = '''
import sys

from kfp import dsl

import distml.pipelines
from distml.cli import main


@dsl.component(base_image="ghcr.io/example/tool:1", install_kfp_package=False)
def square(x: int) -> int:
    return x * x


@dsl.pipeline(name="noisy")
def noisy():
    with dsl.ParallelFor([1, 2, 3, 4]) as x:
        square(x=x).set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)


distml.pipelines.all_pipelines = lambda: {"noisy": noisy}
sys.exit(main(["run", "noisy", "--local", "--out", sys.argv[1]]))
'''


def test_run_says_once_what_the_local_runner_ignores(tmp_path):
    """KFP warns per task about the non-Python image and the accelerator; `distml run` says each once."""
    script = tmp_path / "noisy.py"
    script.write_text(NOISY_PIPELINE)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONWARNINGS"}
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "runs")], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    notes = [line for line in output.splitlines() if line.startswith("note: ")]
    assert sorted(notes) == [  # in the order the runner met them
        "note: KFP's local runner ignores the tasks' accelerator settings (they apply on a cluster)",
        "note: KFP's local runner runs every task in this Python environment, not in its container image",
    ]
    assert "Warning" not in output and "have no effect" not in output and "warnings.warn" not in output
    assert output.count("square: SUCCEEDED") == 4  # the progress, one line per task
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["notes"] == [note.removeprefix("note: ") for note in notes]
