"""Load on the local KServe model server: N concurrent clients on loopback, bounded in requests and time.

Reports requests/s and p50/p99 latency of ``POST /v1/models/NAME:predict`` (one instance per
request, keep-alive connections), and the same for calling the model in-process (the Predictor
the server uses, no HTTP), with their ratio: what serving over HTTP costs per prediction.

    .venv/bin/python benchmarks/serve_load.py [--model DIR] [--clients 8] [--requests 2000] [--seconds 30]

Without --model it trains nothing: it saves an untrained mlp for 8x8 digits (with model.onnx)
in a temporary folder, since the timing does not depend on the weights.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from distml.serving.local import LocalServer, Predictor, read_model_info


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


def http_load(server: LocalServer, body: bytes, clients: int, requests: int, seconds: float) -> dict:
    """``clients`` threads share a budget of ``requests``; each stops at the budget or the deadline."""
    remaining = [requests]
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    deadline = time.monotonic() + seconds
    path = f"/v1/models/{server.name}:predict"

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="Model folder [an untrained digits mlp]")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="Total requests (bound)")
    parser.add_argument("--seconds", type=float, default=30.0, help="Time bound per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or make_model(Path(tmp))
        shape = read_model_info(folder)["input_shape"]
        instance = np.random.default_rng(0).random(shape, dtype=np.float32).tolist()
        body = json.dumps({"instances": [instance]}).encode()
        predictor = Predictor(folder)
        local = in_process(predictor, instance, args.requests, args.seconds)
        with LocalServer(folder, "bench") as server:
            http_load(server, body, args.clients, min(100, args.requests), args.seconds)  # warm-up
            served = http_load(server, body, args.clients, args.requests, args.seconds)
    print(f"model {folder} ({predictor.backend}), one instance per request, {args.clients} clients")
    print(f"HTTP      : {served['requests']} requests ({served['errors']} errors) in {served['seconds']:.2f} s = "
          f"{served['rps']:.0f} req/s, p50 {served['p50_ms']:.2f} ms, p99 {served['p99_ms']:.2f} ms")  # fmt: skip
    print(f"in-process: {local['requests']} calls in {local['seconds']:.2f} s = {local['rps']:.0f} calls/s, "
          f"p50 {local['p50_ms']:.3f} ms, p99 {local['p99_ms']:.3f} ms")  # fmt: skip
    print(f"ratio in-process/HTTP throughput: {local['rps'] / served['rps']:.1f}x; "
          f"p50 latency HTTP/in-process: {served['p50_ms'] / local['p50_ms']:.0f}x")  # fmt: skip


if __name__ == "__main__":
    main()
