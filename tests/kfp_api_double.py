"""A local HTTP test double of the Kubeflow Pipelines v2beta1 REST API, on pytest-httpserver.

`kfp.Client(host=server.url_for("/"))` makes the same calls against it as against a real KFP 2.x
server (healthz, experiments, pipelines and their versions, uploads, runs); these helpers teach
the server to answer them as the v2beta1 API does. Used by test_pipelines_cli.py (the CLI and
distml.runs) and test_notebooks.py (the cluster notebook, whose kernel reaches the
double over HTTP like any client).
"""

import json

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

API = "/apis/v2beta1"


def _json(body: dict) -> Response:
    return Response(json.dumps(body), content_type="application/json")


def serve_single_user(server: HTTPServer, tag_name: str = "2.17.0") -> HTTPServer:
    """Health, as a single-user install of KFP TAG_NAME answers it: what every client session asks first.

    The fields are the API server's (kubeflow/pipelines 2.17.0 backend/src/apiserver/main.go:465-490).
    """
    health = {"commit_sha": "abc1234", "tag_name": tag_name, "multi_user": False, "pipeline_store": "database"}
    server.expect_request(f"{API}/healthz").respond_with_json(health)
    return server


def expect_new_experiment(server: HTTPServer, name: str, experiment_id: str = "exp-1") -> None:
    """No experiment NAME yet (the list is empty), so the client creates it."""

    def create(request: Request) -> Response:
        assert request.get_json()["display_name"] == name
        return _json({"experiment_id": experiment_id, "display_name": name})

    server.expect_request(f"{API}/experiments", method="GET").respond_with_json({})
    server.expect_request(f"{API}/experiments", method="POST").respond_with_handler(create)


def expect_new_pipeline(
    server: HTTPServer, pipeline_id: str = "pipe-1", version_id: str = "ver-1"
) -> list[tuple[dict, bytes]]:
    """No pipeline of the name yet: an upload creates it with its first version, which the listing of
    its versions then shows. Returns the uploads as they arrive: (query arguments, file content)."""
    uploads: list[tuple[dict, bytes]] = []

    def upload(request: Request) -> Response:
        uploads.append((dict(request.args), request.files["uploadfile"].read()))
        return _json({"pipeline_id": pipeline_id, "display_name": request.args["name"]})

    def versions(request: Request) -> Response:
        name = uploads[-1][0]["name"] if uploads else ""
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": version_id, "display_name": name}
        return _json({"pipeline_versions": [version] if uploads else [], "total_size": len(uploads[-1:])})

    server.expect_request(f"{API}/pipelines", method="GET").respond_with_json({})
    server.expect_request(f"{API}/pipelines/upload", method="POST").respond_with_handler(upload)
    server.expect_request(f"{API}/pipelines/{pipeline_id}/versions", method="GET").respond_with_handler(versions)
    return uploads


def runs_answering(server: HTTPServer, *states: tuple[str, dict[str, str]], run_id: str = "run-1") -> list[dict]:
    """POST /runs accepts the run; GET /runs/RUN_ID walks through STATES (run state, task states).

    Returns the request bodies of the runs created, as they arrive.
    """
    created: list[dict] = []

    def create(request: Request) -> Response:
        created.append(request.get_json())
        return _json({"run_id": run_id, "state": "PENDING"})

    polls = iter(states)

    def get(request: Request) -> Response:
        state, tasks = next(polls)
        details = [{"display_name": task, "state": task_state} for task, task_state in tasks.items()]
        body = {"run_id": run_id, "state": state, "run_details": {"task_details": details}}
        failed = [task for task, task_state in tasks.items() if task_state == "FAILED"]
        if state == "FAILED" and failed:
            body["error"] = {"code": 2, "message": f"task {', '.join(failed)} failed"}
        return _json(body)

    server.expect_request(f"{API}/runs", method="POST").respond_with_handler(create)
    server.expect_request(f"{API}/runs/{run_id}", method="GET").respond_with_handler(get)
    return created
