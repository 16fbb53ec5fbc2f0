"""Serve a Model folder with KServe's own Python model server, on a laptop or in a pipeline step.

``distml.serving.kserve_model.DistmlModel`` is a ``kserve.Model``: V1 protocol (``GET /v1/models/NAME``, ``POST
/v1/models/NAME:predict`` with ``{"instances": [...]}``) and V2 (``POST /v2/models/NAME/infer``).
Requests of the wrong shape or type get HTTP 400 with a message saying what the model takes.
A Model folder with a Triton repository (every ONNX export) is also served under that
repository's model name, so ``/v2/models/<that name>/infer`` works here as it does on the
cluster's Triton predictor (distml.serving.isvc); V2 responses name the ONNX output tensor as
Triton does.

Prediction runs on ONNX Runtime when the folder has ``model.onnx`` (starts in about a second,
no TensorFlow import in the server, fastest for small batches on CPU), else on the tf-keras model
rebuilt from our own architecture with model.keras's weights (``load_model_folder``), so folders
written without ONNX serve too. The SavedModel (``model/1``, for TF Serving in the cluster) is not
loaded here: its graph is the artifact writer's, and graph ops can read and write files.

``LocalServer`` runs the server in a child process on a free loopback port and stops it;
``serve_and_check`` is the one-call check the demo and the deploy component use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from distml.errors import DistmlError
from distml.folders import read_model_info
from distml.ports import free_ports
from distml.training.model_folder import KERAS_FILE, ONNX_FILE, triton_model_name

#: Largest batch one request may carry (bounds the server's memory per request).
MAX_INSTANCES = 4096


def _import_kserve() -> Any:
    """kserve, imported with a clean argv (its model_server module parses sys.argv at import time)."""
    from distml.serving.kserve_model import kserve

    return kserve


class Predictor:
    """Batch prediction on a Model folder: ONNX Runtime if model.onnx is there, else the rebuilt tf-keras model.

    ``threads``: ONNX Runtime's intra-op threads (0: its default, one per core). One by default:
    a served request is mostly one instance, where a thread pool costs more in hand-offs than it
    computes in parallel (issue 15: the default pool adds to every request's latency), and the
    server's event loop needs the other core.
    """

    def __init__(self, model_dir: str | os.PathLike[str], *, threads: int = 1) -> None:
        folder = Path(model_dir)
        self.info = read_model_info(folder)
        self.input_shape = tuple(int(n) for n in self.info["input_shape"])
        if (folder / ONNX_FILE).exists():
            import onnxruntime

            from distml.inference.onnxruntime_backend import open_session

            self.backend = "onnxruntime"
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            self._session = open_session(folder / ONNX_FILE, ["CPUExecutionProvider"], options)
            self.input_name = self._session.get_inputs()[0].name
            self.output_name = self._session.get_outputs()[0].name
            dims = self._session.get_outputs()[0].shape[1:]
        elif (folder / KERAS_FILE).exists():
            from distml.training.model_folder import load_model_folder

            self.backend = "tensorflow"
            self._model, _ = load_model_folder(folder)
            self.input_name, self.output_name = "input", "output"
            dims = self._model.output_shape[1:]
        else:
            raise DistmlError(f"neither {ONNX_FILE} nor {KERAS_FILE}", where=str(folder), hint="Export the model.")
        #: What one instance gives (V2 model metadata); -1 where the graph leaves a size open.
        self.output_shape = tuple(n if isinstance(n, int) and n >= 0 else -1 for n in dims)

    def check(self, batch: Any) -> np.ndarray:
        """``batch`` as float32 of shape (N, *input_shape), or ValueError saying what is wrong."""
        if isinstance(batch, list) and len(batch) > MAX_INSTANCES:  # before converting what will be refused
            raise ValueError(f"give 1 to {MAX_INSTANCES} instances, not {len(batch)}")
        try:
            array = np.asarray(batch, dtype=np.float32)
        except (ValueError, TypeError) as err:
            raise ValueError(f"instances must be numbers in nested lists of equal lengths ({err})") from None
        expected = "[N, " + ", ".join(str(n) for n in self.input_shape) + "]"
        if array.ndim != len(self.input_shape) + 1 or tuple(array.shape[1:]) != self.input_shape:
            raise ValueError(f"instances have shape {list(array.shape)}, the model takes {expected}")
        if not 1 <= len(array) <= MAX_INSTANCES:
            raise ValueError(f"give 1 to {MAX_INSTANCES} instances, not {len(array)}")
        if not np.isfinite(array).all():
            raise ValueError("instances hold NaN or infinity")
        return array

    def session_options(self) -> Any:
        """The ONNX Runtime session's options (the thread counts it runs with)."""
        return self._session.get_session_options()

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """Model outputs for a checked float32 batch."""
        if self.backend == "onnxruntime":
            return self._session.run(None, {self.input_name: batch})[0]
        return self._model(batch, training=False).numpy()


def serving_names(model_dir: str | os.PathLike[str], name: str) -> list[str]:
    """The names ``model_dir`` is served under: ``name``, and its Triton repository's model name if another."""
    triton_name = triton_model_name(model_dir)
    return [name] if triton_name in (None, name) else [name, triton_name]


def make_kserve_models(model_dir: str | os.PathLike[str], name: str, *, threads: int = 1) -> list[Any]:
    """Loaded ``kserve.Model``s serving ``model_dir`` under each of serving_names (one Predictor shared)."""
    from distml.serving.kserve_model import make_models

    return make_models(model_dir, serving_names(model_dir, name), Predictor(model_dir, threads=threads))


#: Where ``distml serve`` listens unless told otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
#: Largest request body the server reads, unless told otherwise. Two 200 MB JSON bodies once took
#: the server from 0.2 to 5 GB and held a health check for 47 s. KServe decodes the JSON on the event
#: loop (kserve v0.21.0 python/kserve/kserve/protocol/rest/v1_endpoints.py:79-81, dataplane.py:359),
#: so the limit also bounds how long a health check can wait: about 1 s at 8 MiB on a shared 2-core
#: machine (benchmarks/serve_oversized.py). 8 MiB holds 4096 8x8 instances or ~60 of 64x64x3.
DEFAULT_MAX_REQUEST_BYTES = 8 * 1024 * 1024
#: Seconds the server waits for requests in flight when stopped (KServe's default is 30).
GRACE_PERIOD_S = 5


class BodySizeLimit:
    """ASGI wrapper: refuse a request whose body is over ``max_bytes`` with 413, before the app reads it.

    A declared ``Content-Length`` over the limit is refused without reading a byte; a chunked body
    is read up to the limit, then refused. A body within the limit is handed to the app whole.
    It wraps KServe's whole FastAPI app, outside its error middleware, so the 413 is ours.
    """

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send, declared.decode("latin-1"))
            return
        if declared is not None:  # within the limit, and the HTTP parser holds the body to that length
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(send, f"more than {self.max_bytes}")
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Any, size: str) -> None:
        message = (
            f"request body of {size} bytes is over this server's limit of {self.max_bytes} bytes "
            f"(distml serve --max-request-mb)"
        )
        body = json.dumps({"error": message}).encode("utf-8")
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close")]  # fmt: skip
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})


#: KServe's per-request log lines: uvicorn's access line and, from the timing middleware KServe
#: always installs, two ``kserve.trace`` lines (wall and CPU time), whatever enable_latency_logging
#: says (kserve 0.21.0 python/kserve/kserve/protocol/rest/server.py:62-64 PrintTimings and :183-187
#: TimingMiddleware; logging.py:89-99 sets both loggers to INFO).
REQUEST_LOGGERS = ("uvicorn.access", "kserve.trace")


def run_server(
    models: list[Any],
    port: int,
    *,
    host: str = DEFAULT_HOST,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    log_requests: bool = False,
) -> None:
    """Serve loaded models (make_kserve_models) on ``host:port`` in this process until SIGINT/SIGTERM.

    HTTP only (no gRPC port). KServe 0.21's ``ModelServer.start`` builds a ``RESTServer`` whose
    uvicorn config hard-codes ``host="0.0.0.0"`` (kserve/kserve v0.21.0
    python/kserve/kserve/protocol/rest/server.py:127) and offers no body limit, so the REST server
    is built here the way ``ModelServer.start`` builds it (kserve/model_server.py:385), then its
    uvicorn config gets our host and our app wrapped in ``BodySizeLimit``. uvicorn's own
    ``Server.serve`` handles SIGINT and SIGTERM (uvicorn 0.55 server.py:88, ``capture_signals``).
    Without ``log_requests`` the three lines KServe logs per request are off (REQUEST_LOGGERS at
    WARNING, set after KServe and uvicorn configured their logging): writing them costs about a
    fifth of a small model's throughput (issue 15).
    """
    kserve = _import_kserve()
    from kserve.model_server import FASTAPI_APP_IMPORT_STRING, app
    from kserve.protocol.rest.server import RESTServer

    server = kserve.ModelServer(
        http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False, grace_period=GRACE_PERIOD_S
    )
    for model in models:
        server.register_model(model)
    rest = RESTServer(
        FASTAPI_APP_IMPORT_STRING,
        server.dataplane,
        server.model_repository_extension,
        port,
        workers=1,
        grace_period=GRACE_PERIOD_S,
    )
    rest.config.host = host
    rest.config.app = BodySizeLimit(app, max_request_bytes)
    if not log_requests:
        for logger_name in REQUEST_LOGGERS:
            logging.getLogger(logger_name).setLevel(logging.WARNING)
    asyncio.run(rest.start())


class LocalServer:
    """The model server in a child process; a context manager that always stops it."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        name: str,
        port: int | None = None,
        *,
        host: str = DEFAULT_HOST,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        log_requests: bool = False,
    ) -> None:
        read_model_info(model_dir)  # fail here, not in the child, for a folder that is no model
        self.model_dir = Path(model_dir)
        self.name = name
        self.host = host
        self.max_request_bytes = max_request_bytes
        self.log_requests = log_requests
        self.port = port or free_ports(1)[0]
        self.url = f"http://{_client_address(host)}:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - the child's output, closed in __exit__

    def start(self, timeout_s: float = 90.0) -> LocalServer:
        """Start the child and wait until ``GET /v1/models/NAME`` says ready."""
        command = [sys.executable, "-m", "distml.serving.local", str(self.model_dir), self.name, str(self.port)]
        command += ["--host", self.host, "--max-request-bytes", str(self.max_request_bytes)]
        command += ["--log-requests"] if self.log_requests else []
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self._process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        try:
            self._wait_ready(timeout_s)
        except BaseException:  # Ctrl-C and surprises too: never leave a server behind
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        assert self._process is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise DistmlError(f"the model server exited with code {self._process.returncode}: {self.log_tail()}")
            try:
                status, body = http_json("GET", f"{self.url}/v1/models/{self.name}", timeout=2)
                if status == 200 and body.get("ready"):
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise DistmlError(f"the model server was not ready within {timeout_s:.0f} s: {self.log_tail()}")

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (graceful), then SIGKILL if it lingers."""
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def log_tail(self, lines: int = 8) -> str:
        self._log.seek(0)
        text = self._log.read().decode("utf-8", errors="replace").strip().splitlines()
        return " | ".join(text[-lines:])

    def predict(self, instances: Any) -> tuple[int, dict[str, Any]]:
        return http_json("POST", f"{self.url}/v1/models/{self.name}:predict", {"instances": instances})

    def __enter__(self) -> LocalServer:
        try:
            return self.start()
        except BaseException:
            self._log.close()  # __exit__ does not run when __enter__ fails
            raise

    def __exit__(self, *_exc: object) -> None:
        self.stop()
        self._log.close()


def _client_address(host: str) -> str:
    """Where a client on this machine reaches a server listening on ``host`` (wildcards: loopback)."""
    reachable = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"[{reachable}]" if ":" in reachable else reachable


def http_json(method: str, url: str, body: Any = None, *, timeout: float = 30.0) -> tuple[int, dict[str, Any]]:
    """(status, decoded JSON body) of one request; HTTP errors are returned, not raised."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raw = err.read()
        try:
            return err.code, json.loads(raw or b"{}")
        except ValueError:
            return err.code, {"error": raw.decode("utf-8", errors="replace")}


def serve_and_check(
    model_dir: str | os.PathLike[str], name: str, instances: Any = None, *, port: int | None = None
) -> dict[str, Any]:
    """Start the local server, check readiness and one prediction over HTTP (V1, and V2 under the name the
    cluster uses), stop it; report what it saw.

    ``instances`` defaults to one all-zero input of the model's shape. Raises DistmlError when the
    prediction does not come back with HTTP 200 and one prediction per instance, or V2 without outputs.
    """
    info = read_model_info(model_dir)
    if instances is None:
        instances = np.zeros((1, *info["input_shape"]), dtype=np.float32).tolist()
    start = time.monotonic()
    with LocalServer(model_dir, name, port) as server:
        started = time.monotonic() - start
        status, body = server.predict(instances)
        url = f"{server.url}/v1/models/{name}:predict"
        v2_url, v2_status, v2_body = _check_v2(server, model_dir, name, instances)
    predictions = body.get("predictions")
    if status != 200 or not isinstance(predictions, list) or len(predictions) != len(instances):
        raise DistmlError(f"local prediction check failed: HTTP {status}: {body}", where=url)
    if v2_status != 200 or not v2_body.get("outputs"):
        raise DistmlError(f"local V2 prediction check failed: HTTP {v2_status}: {v2_body}", where=v2_url)
    return {
        "url": url,
        "v2_url": v2_url,
        "status": "Ready",
        "http_status": status,
        "instances": len(instances),
        "predictions": predictions,
        "startup_seconds": round(started, 3),
    }


def _check_v2(
    server: LocalServer, model_dir: str | os.PathLike[str], name: str, instances: Any
) -> tuple[str, int, dict[str, Any]]:
    """One V2 request to the name the cluster uses (the Triton model's, else ``name``): (url, status, body)."""
    served = serving_names(model_dir, name)[-1]
    array = np.asarray(instances, dtype=np.float32)
    tensor = {"name": "input", "shape": list(array.shape), "datatype": "FP32", "data": array.ravel().tolist()}
    url = f"{server.url}/v2/models/{served}/infer"
    status, body = http_json("POST", url, {"inputs": [tensor]})
    return url, status, body


def _main(argv: list[str] | None = None) -> None:
    """Child-process entry of LocalServer: ``python -m distml.serving.local MODEL_DIR NAME PORT``."""
    parser = argparse.ArgumentParser(prog="python -m distml.serving.local")
    parser.add_argument("model_dir")
    parser.add_argument("name")
    parser.add_argument("port", type=int)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--max-request-bytes", type=int, default=DEFAULT_MAX_REQUEST_BYTES)
    parser.add_argument("--log-requests", action="store_true")
    args = parser.parse_args(argv)
    models = make_kserve_models(args.model_dir, args.name)
    run_server(
        models, args.port, host=args.host, max_request_bytes=args.max_request_bytes, log_requests=args.log_requests
    )


if __name__ == "__main__":
    _main()
