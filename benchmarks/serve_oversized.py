"""The local model server under oversized bodies: its memory, and how long health checks wait.

Starts ``distml.serving.local.LocalServer`` on an untrained digits mlp (model.onnx), polls
``GET /v1/models/NAME`` every 50 ms from one thread, and sends ``--clients`` concurrent POSTs of
``--mb`` megabytes of valid-looking JSON to ``:predict``. The client stops sending as soon as the
server answers (a server that refuses early never receives the rest). Reports the server's
resident memory before and its peak (VmHWM), each body's status and time, and the health
latencies while the bodies were in flight.

    .venv/bin/python benchmarks/serve_oversized.py [--mb 200] [--clients 2] [--chunked]
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import tempfile
import threading
import time
from pathlib import Path

from distml.serving.local import LocalServer

HEALTH_PERIOD_S = 0.05


def make_model(root: Path) -> Path:
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = root / "mlp"
    save_model_folder(build_model("mlp", (8, 8, 1), 10), folder, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={}, onnx=True)  # fmt: skip
    return folder


def oversized_body(megabytes: int) -> bytes:
    """``{"instances": [...]}`` of about ``megabytes`` MB: many 8x8x1 instances of 0.5."""
    instance = json.dumps([[[0.5]] * 8] * 8).encode()
    count = megabytes * 1_000_000 // (len(instance) + 1)
    return b'{"instances": [' + b",".join([instance] * count) + b"]}"


def post_until_answered(
    port: int, path: str, body: bytes, *, chunked: bool = False, timeout_s: float = 300.0
) -> tuple[int, float, int]:
    """(HTTP status, seconds, bytes sent): send ``body``, stopping when the server answers early.

    ``chunked`` sends it with ``Transfer-Encoding: chunked`` (1 MiB chunks, no length declared).
    """
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
        pieces = [body[i : i + (1 << 20)] for i in range(0, len(body), 1 << 20)]
        if chunked:
            pieces = [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]
        sent = 0
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before reading everything
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(piece)
        response = b""
        try:
            while b"\r\n" not in response:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                response += chunk
        except ConnectionResetError:
            pass
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/") else 0
    return status, time.monotonic() - started, sent


def health_latency(port: int, name: str) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        sock.sendall(f"GET /v1/models/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass
    return time.monotonic() - started


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--chunked", action="store_true", help="declare no length (Transfer-Encoding: chunked)")
    args = parser.parse_args()
    body = oversized_body(args.mb)
    with tempfile.TemporaryDirectory() as root, LocalServer(make_model(Path(root)), "digits") as server:
        pid = server._process.pid
        rss_before = memory_kb(pid, "VmRSS")
        results: list[tuple[int, float, int]] = []
        latencies: list[float] = []
        done = threading.Event()

        def poll() -> None:
            while not done.is_set():
                latencies.append(health_latency(server.port, server.name))
                time.sleep(HEALTH_PERIOD_S)

        def send() -> None:
            results.append(
                post_until_answered(server.port, f"/v1/models/{server.name}:predict", body, chunked=args.chunked)
            )

        poller = threading.Thread(target=poll)
        poller.start()
        senders = [threading.Thread(target=send) for _ in range(args.clients)]
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        done.set()
        poller.join()
        peak = memory_kb(pid, "VmHWM")
    print(f"body {len(body) / 1e6:.0f} MB x {args.clients} concurrent{' (chunked)' if args.chunked else ''}")
    print(f"server RSS before {rss_before / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB")
    for status, seconds, sent in results:
        print(f"  POST -> HTTP {status} after {seconds:.2f} s, {sent / 1e6:.1f} MB sent")
    ordered = sorted(latencies)
    print(f"health checks during the bodies: {len(ordered)}, median {ordered[len(ordered) // 2] * 1000:.0f} ms, "
          f"max {ordered[-1] * 1000:.0f} ms")  # fmt: skip


if __name__ == "__main__":
    main()
