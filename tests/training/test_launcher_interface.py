"""One launcher interface: ``dryrun()`` shows what ``run()`` starts, and a name → module map that
launch.train, the train component's step and ``distml train --launcher`` read."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from kubernetes import client as k8s
from werkzeug import Response

from distml.cli import main
from distml.errors import DistmlError
from distml.training import launch, launchers, local
from distml.training.kubernetes import ClusterOptions, KubernetesLauncher, job_name_for, pod_template
from distml.training.local import LocalLauncher
from distml.training.worker import WorkerConfig

#: A stand-in for distml.training.worker: records what it was started with; the chief writes metrics.json.
FAKE_WORKER = """
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
out = Path(args[args.index("--out") + 1])
tf_config = os.environ.get("TF_CONFIG", "")
index = json.loads(tf_config)["task"]["index"] if tf_config else 0
out.parent.mkdir(parents=True, exist_ok=True)
seen = {"argv": [sys.executable, "-m", "fake_worker", *args], "tf_config": tf_config}
(out.parent / f"seen-{index}.json").write_text(json.dumps(seen))
if index == 0:
    out.mkdir(exist_ok=True)
    (out / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5, "workers": 3}))
print(f"worker-{index} done", flush=True)
"""

#: A launcher module added to the map: its dry run and run say who called them.
FAKE_LAUNCHER = """
from distml.training.launchers import DryRun, Launcher


class FakeLauncher(Launcher):
    name = "fake"

    def dryrun(self, config, workers):
        return DryRun(self.name, (config.model, workers), f"fake plan: {config.model} on {workers} workers\\n")

    def schedule(self, dry_run):
        model, workers = self._own(dry_run)
        return {"launched_by": "fake", "model": model, "workers": workers}


LAUNCHER = FakeLauncher
"""


def _train_args(*extra: str) -> list[str]:
    return ["train", "--model", "mlp", "--data", "sklearn:digits", "--epochs", "1", *extra]


def test_a_local_dry_run_shows_each_process_and_its_tf_config_and_starts_nothing(tmp_path, monkeypatch):
    started: list[object] = []
    monkeypatch.setattr(subprocess, "Popen", lambda *args, **kwargs: started.append(args))
    out = tmp_path / "model"

    result = CliRunner().invoke(
        main, _train_args("--launcher", "local", "--workers", "3", "--out", str(out), "--dry-run")
    )

    assert result.exit_code == 0, result.output
    assert started == [] and not out.exists() and list(tmp_path.iterdir()) == [], "nothing started or written"
    text = result.stdout
    commands = [line.split("command: ", 1)[1] for line in text.splitlines() if "command: " in line]
    configs = [json.loads(line.split("TF_CONFIG: ", 1)[1]) for line in text.splitlines() if "TF_CONFIG: " in line]
    assert len(commands) == 3 and len(configs) == 3
    for command in commands:
        assert command.startswith(f"{sys.executable} -m distml.training.worker --model mlp --data sklearn:digits")
        assert f"--out {out.resolve()}" in command
    cluster = configs[0]["cluster"]["worker"]
    assert len(cluster) == 3 and len(set(cluster)) == 3, cluster
    assert all(address.startswith("127.0.0.1:") and int(address.split(":")[1]) > 0 for address in cluster)
    assert [config["cluster"]["worker"] for config in configs] == [cluster] * 3, "one cluster for every worker"
    assert [config["task"] for config in configs] == [{"type": "worker", "index": index} for index in range(3)]


def test_a_lone_worker_gets_no_tf_config():
    dry = LocalLauncher().dryrun(WorkerConfig("mlp", Path("data"), Path("model")), 1)
    assert [process.tf_config for process in dry.request.processes] == [""]
    assert "TF_CONFIG" not in dry.text.split("\n", 1)[1]


def test_the_local_run_starts_exactly_the_processes_of_its_dry_run(tmp_path, monkeypatch):
    (tmp_path / "fake_worker.py").write_text(FAKE_WORKER)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setattr(local, "WORKER_MODULE", "fake_worker")
    launcher = LocalLauncher(log_dir=tmp_path / "logs", timeout=60)
    config = WorkerConfig("mlp", tmp_path / "data", tmp_path / "run" / "model")

    dry = launcher.dryrun(config, 3)
    metrics = launcher.schedule(dry)

    assert metrics == {"test_accuracy": 0.5, "workers": 3}
    for index, planned in enumerate(dry.request.processes):
        seen = json.loads((tmp_path / "run" / f"seen-{index}.json").read_text())
        assert seen == {"argv": planned.argv, "tf_config": planned.tf_config}, planned.name
    assert sorted(path.name for path in (tmp_path / "logs").iterdir()) == [
        "worker-0.log",
        "worker-1.log",
        "worker-2.log",
    ]


def test_the_kubernetes_run_creates_the_tfjob_of_its_dry_run(httpserver, tmp_path):
    namespace = "team"
    config = WorkerConfig("mlp", tmp_path / "data", tmp_path / "model")
    options = ClusterOptions(pod_template("reg/distml:1"), namespace=namespace, run_key="run-7", poll_interval=0.01)
    name = job_name_for(config, options)
    job = f"/apis/kubeflow.org/v1/namespaces/{namespace}/tfjobs/{name}"
    missing = {"kind": "Status", "code": 404, "details": {"name": name, "kind": "tfjobs"}}

    def pods_finish(request):
        config.out.mkdir()
        (config.out / "metrics.json").write_text(json.dumps({"test_accuracy": 0.75}))
        done = {"status": {"conditions": [{"type": "Succeeded", "status": "True"}]}}
        return Response(json.dumps(done), content_type="application/json")

    httpserver.expect_ordered_request(job, method="GET").respond_with_response(
        Response(json.dumps(missing), status=404, content_type="application/json")
    )
    httpserver.expect_ordered_request(
        f"/apis/kubeflow.org/v1/namespaces/{namespace}/tfjobs", method="POST"
    ).respond_with_json({})
    httpserver.expect_ordered_request(job, method="GET").respond_with_handler(pods_finish)
    httpserver.expect_ordered_request(job, method="DELETE").respond_with_json({})
    api = k8s.ApiClient(k8s.Configuration(host=httpserver.url_for("/").rstrip("/")))
    launcher = KubernetesLauncher(options=options, api_client=api)

    dry = launcher.dryrun(config, 2)
    assert httpserver.log == [], "a dry run calls no API"
    metrics = launcher.schedule(dry)

    assert metrics == {"test_accuracy": 0.75}
    created = json.loads(next(request.data for request, _ in httpserver.log if request.method == "POST"))
    assert created == yaml.safe_load(dry.text)
    assert created["metadata"]["name"] == name and created["spec"]["tfReplicaSpecs"]["Worker"]["replicas"] == 2


def test_a_launcher_refuses_another_launchers_dry_run():
    options = ClusterOptions(pod_template("img"), namespace="team")
    foreign = KubernetesLauncher(options=options).dryrun(WorkerConfig("mlp", Path("d"), Path("m")), 2)
    with pytest.raises(DistmlError, match="local launcher cannot run a dry run of the kubernetes launcher"):
        LocalLauncher().schedule(foreign)


def test_every_mapped_module_defines_its_launcher_under_its_name():
    assert launchers.launcher_names() == ("local", "kubernetes")
    for name in launchers.LAUNCHER_MODULES:
        cls = launchers.launcher_class(name)
        assert issubclass(cls, launchers.Launcher) and cls.name == name
    with pytest.raises(TypeError, match="abstract"):
        launchers.Launcher()  # type: ignore[abstract]
    with pytest.raises(DistmlError, match="launcher 'slurm' unknown") as caught:
        launch.train(WorkerConfig("mlp", Path("d"), Path("m")), 2, launcher="slurm")
    assert "local, kubernetes" in str(caught.value.hint)


def test_the_kubernetes_launcher_needs_its_options_and_the_local_one_takes_none():
    with pytest.raises(DistmlError, match="needs ClusterOptions"):
        launchers.create_launcher("kubernetes")
    with pytest.raises(DistmlError, match="takes no options"):
        launchers.create_launcher("local", options=ClusterOptions(pod_template("img")))


def test_train_and_the_train_step_find_the_launcher_in_the_map(tmp_path, monkeypatch):
    (tmp_path / "fake_launcher.py").write_text(FAKE_LAUNCHER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(launchers.LAUNCHER_MODULES, "fake", "fake_launcher")

    metrics = launch.train(WorkerConfig("cnn", tmp_path / "data", tmp_path / "model"), 3, launcher="fake")
    assert metrics == {"launched_by": "fake", "model": "cnn", "workers": 3}

    step = launch.train_step(
        str(tmp_path / "data"),
        str(tmp_path / "model"),
        "minio://run/model",
        str(tmp_path / "logs"),
        model_name="mlp",
        workers=2,
        epochs=1,
        batch_size=8,
        learning_rate=0.01,
        image_size=0,
        onnx=False,
        launcher="fake",
        image="",
        gpus_per_worker=0,
        node_selector={},
        tolerations=[],
        namespace="",
        pvc="",
        timeout_seconds=60,
        progress=None,
    )
    assert step == {"launched_by": "fake", "model": "mlp", "workers": 2}


def test_the_cli_offers_and_dry_runs_a_launcher_added_to_the_map(tmp_path):
    # A launcher added to the map is offered by `distml train --launcher` and driven with no other change.
    (tmp_path / "fake_launcher.py").write_text(FAKE_LAUNCHER)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from distml.training import launchers
        launchers.LAUNCHER_MODULES["fake"] = "fake_launcher"
        from click.testing import CliRunner
        from distml.cli import main
        from distml.cli.train import train
        print(",".join(next(p for p in train.params if p.name == "launcher").type.choices))
        args = ["train", "--model", "lenet5", "--data", {str(tmp_path)!r}, "--out", "m", "--workers", "4"]
        result = CliRunner().invoke(main, [*args, "--launcher", "fake", "--dry-run"])
        print(result.exit_code, result.output, end="")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["local,kubernetes,fake", "0 fake plan: lenet5 on 4 workers"]
