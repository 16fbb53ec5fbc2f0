"""Load on the local KServe model server against a KServe echo server, N clients on loopback.

Reports requests/s and p50/p99 latency of ``POST /v1/models/NAME:predict`` (one instance per
request, keep-alive connections) for:
  * ``distml serve`` (distml.serving.local.LocalServer) on a Model folder;
  * the floor: KServe's ModelServer, as it comes, with a model whose predict returns its input
    (what any model served by KServe pays: HTTP, JSON, routing, KServe's logging);
  * with ``--before DIR``, LocalServer from an older checkout's src/ (``git worktree add DIR COMMIT``).
The servers run one after the other, round after round (interleaved: other work on a shared
machine hits all of them alike), each in its own child process; the ratios are per round.
Target (issue 15): p50 of distml serve <= 1.15x the echo server's, 8 clients, 1 instance.

    .venv/bin/python benchmarks/serve_load.py [--model DIR] [--clients 8] [--requests 2000] [--rounds 3]

Without --model it trains nothing: it saves an untrained mlp for 8x8 digits (with model.onnx)
in a temporary folder, since the timing does not depend on the weights. The in-process line is
the Predictor alone (check + predict, no HTTP).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from distml.ports import free_ports
from distml.serving.local import LocalServer, Predictor, http_json, read_model_info


def make_model(root: Path) -> Path:
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = root / "mlp"
    model = build_model("mlp", (8, 8, 1), 10)
    save_model_folder(model, folder, architecture="mlp", task="classification", input_shape=[8, 8, 1],
                      classes=[str(c) for c in range(10)], metrics={}, onnx=True)  # fmt: skip
    return folder


def percentiles(latencies: list[float]) -> tuple[float, float]:
    values = np.asarray(latencies) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def http_load(port: int, name: str, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """``clients`` threads share a budget of ``requests``; each stops at the budget or the deadline."""
    remaining = [requests]
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds
    path = f"/v1/models/{name}:predict"

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] == 0:
                    break
                remaining[0] -= 1
            start = time.perf_counter()
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            if response.status != 200:
                with lock:
                    errors[0] += 1
        connection.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return {"requests": len(latencies), "errors": errors[0], "seconds": elapsed, "rps": len(latencies) / elapsed,
            "p50_ms": p50, "p99_ms": p99}  # fmt: skip


def in_process(predictor: Predictor, instance: list, requests: int, seconds: float) -> dict:
    """The same single-instance predictions without HTTP: check + predict, as the server does."""
    latencies = []
    deadline = time.monotonic() + seconds
    started = time.perf_counter()
    while len(latencies) < requests and time.monotonic() < deadline:
        start = time.perf_counter()
        predictor.predict(predictor.check([instance])).tolist()
        latencies.append(time.perf_counter() - start)
    elapsed = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return {"requests": len(latencies), "seconds": elapsed, "rps": len(latencies) / elapsed, "p50_ms": p50,
            "p99_ms": p99}  # fmt: skip


ECHO = """
import sys
port = int(sys.argv[1])
sys.argv = sys.argv[:1]  # kserve.model_server parses argv when imported
import kserve

class Echo(kserve.Model):
    def __init__(self):
        super().__init__("echo")
        self.ready = True

    def predict(self, payload, headers=None):
        return {"predictions": payload["instances"]}

kserve.ModelServer(http_port=port, enable_grpc=False, workers=1, enable_latency_logging=False).start([Echo()])
"""


class EchoServer:
    """KServe's ModelServer with the echo model, in a child process."""

    name = "echo"

    def __enter__(self) -> EchoServer:
        self.port = free_ports(1)[0]
        self._process = subprocess.Popen([sys.executable, "-c", ECHO, str(self.port)], stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if http_json("GET", f"http://127.0.0.1:{self.port}/v1/models/echo", timeout=2)[0] == 200:
                    return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise SystemExit("the echo server did not start")

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=15)


def before_server(src: Path, folder: Path) -> LocalServer:
    """LocalServer whose child imports distml from ``src`` (an older checkout)."""
    server = LocalServer(folder, "bench")
    start = server.start

    def start_with_old_source(timeout_s: float = 90.0) -> LocalServer:
        saved = os.environ.get("PYTHONPATH")
        os.environ["PYTHONPATH"] = str(src)
        try:
            return start(timeout_s)
        finally:
            if saved is None:
                del os.environ["PYTHONPATH"]
            else:
                os.environ["PYTHONPATH"] = saved

    server.start = start_with_old_source  # type: ignore[method-assign]
    return server


def line(label: str, result: dict) -> str:
    return (f"{label:<12}: {result['requests']} requests ({result['errors']} errors) in {result['seconds']:.2f} s = "
            f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Model folder [an untrained digits mlp]")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="Total requests per measurement (bound)")
    parser.add_argument("--seconds", type=float, default=30.0, help="Time bound per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, default=None, help="Also load LocalServer of this checkout's src/")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or make_model(Path(tmp))
        shape = read_model_info(folder)["input_shape"]
        instance = np.random.default_rng(0).random(shape, dtype=np.float32).tolist()
        body = json.dumps({"instances": [instance]}).encode()
        predictor = Predictor(folder)
        local = in_process(predictor, instance, args.requests, args.seconds)
        print(f"model {folder} ({predictor.backend}), one instance per request, {args.clients} clients")
        print(f"in-process  : {local['requests']} calls, p50 {local['p50_ms']:.3f} ms, p99 {local['p99_ms']:.3f} ms")
        servers = {"echo": EchoServer, "distml": lambda: LocalServer(folder, "bench")}
        if args.before:
            servers["before"] = lambda: before_server(args.before / "src", folder)
        ratios: dict[str, list[float]] = {name: [] for name in servers if name != "echo"}
        for r in range(args.rounds):
            results = {}
            for label, make in servers.items():
                with make() as server:
                    http_load(server.port, server.name, body, args.clients, min(200, args.requests), args.seconds)
                    results[label] = http_load(server.port, server.name, body, args.clients, args.requests,
                                               args.seconds)  # fmt: skip
                print(f"round {r + 1} " + line(label, results[label]))
            for label in ratios:
                ratios[label].append(results[label]["p50_ms"] / results["echo"]["p50_ms"])
            print(f"round {r + 1} p50 ratios to echo: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in ratios.items()))
        for label, values in ratios.items():
            print(f"p50 {label}/echo: median {statistics.median(values):.2f}, min {min(values):.2f}, "
                  f"max {max(values):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
