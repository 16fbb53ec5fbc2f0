"""The local model server against oversized bodies, and where it listens.

Bodies over the limit get HTTP 413 naming the limit, whether they declare their length or come
chunked, and health checks keep answering while they arrive. The server listens on loopback
unless told otherwise (read from the kernel's table of listening sockets, /proc/net/tcp).
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from distml.ports import free_ports
from distml.serving.local import LocalServer, http_json

pytestmark = pytest.mark.slow

NAME = "digits"
LIMIT = 1024 * 1024


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory):
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from distml.training.model_folder import save_model_folder
    from distml.training.models import build_model

    folder = tmp_path_factory.mktemp("limits") / "mlp"
    save_model_folder(build_model("mlp", (8, 8, 1), 10), folder, architecture="mlp", task="classification",
                      input_shape=[8, 8, 1], classes=[str(c) for c in range(10)], metrics={}, onnx=True)  # fmt: skip
    return folder


def instances_body(count: int) -> bytes:
    return json.dumps({"instances": [[[[0.5]] * 8] * 8] * count}).encode()


def post(port: int, path: str, body: bytes, *, chunked: bool = False) -> tuple[int, dict]:
    """(status, JSON body) of a POST that stops sending once the server has answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        length = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {len(body)}"
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{length}\r\n\r\n".encode())
        pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        if chunked:
            pieces = [b"%x\r\n%b\r\n" % (len(piece), piece) for piece in pieces] + [b"0\r\n\r\n"]
        for piece in pieces:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
        response = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            response += chunk
            head, _, rest = response.partition(b"\r\n\r\n")
            declared = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if declared and len(rest) >= int(declared[0].split(b":")[1]):
                break
    head, _, rest = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(rest)


def test_bodies_over_the_limit_get_413_naming_it_and_health_keeps_answering(model_folder):
    path = f"/v1/models/{NAME}:predict"
    with LocalServer(model_folder, NAME, max_request_bytes=LIMIT) as server:
        within = instances_body(100)
        assert len(within) < LIMIT
        status, body = post(server.port, path, within)
        assert status == 200 and len(body["predictions"]) == 100

        oversized = instances_body(4000)  # 1.5 MB: also a batch the model takes, so only the size refuses it
        assert len(oversized) > LIMIT
        for chunked in (False, True):
            status, body = post(server.port, path, oversized, chunked=chunked)
            assert status == 413, (chunked, body)
            assert f"limit of {LIMIT} bytes" in body["error"] and "--max-request-mb" in body["error"]

        huge = b"[" * (50 * 1024 * 1024)
        results, latencies = [], []
        senders = [threading.Thread(target=lambda: results.append(post(server.port, path, huge))) for _ in range(2)]
        for thread in senders:
            thread.start()
        while any(thread.is_alive() for thread in senders):
            started = time.monotonic()
            assert http_json("GET", f"{server.url}/v1/models/{NAME}", timeout=10)[0] == 200
            latencies.append(time.monotonic() - started)
        for thread in senders:
            thread.join()
        assert [status for status, _ in results] == [413, 413]
        assert http_json("GET", f"{server.url}/v1/models/{NAME}")[0] == 200
        assert max(latencies, default=0) < 2.0


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a socket in LISTEN state on ``port`` (IPv4 only, from /proc/net/tcp)."""
    table = Path("/proc/net/tcp")
    if not table.exists():
        pytest.skip("needs Linux's /proc/net/tcp")
    addresses = set()
    for line in table.read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            addresses.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return addresses


def test_the_server_listens_on_loopback_unless_told_otherwise(model_folder):
    with LocalServer(model_folder, NAME) as server:
        assert listening_addresses(server.port) == {"127.0.0.1"}
    with LocalServer(model_folder, NAME, host="0.0.0.0") as server:
        assert listening_addresses(server.port) == {"0.0.0.0"}
        assert http_json("GET", f"{server.url}/v1/models/{NAME}")[0] == 200


def test_distml_serve_takes_host_and_limit_and_stops_on_sigterm(model_folder):
    port = free_ports(1)[0]
    command = [sys.executable, "-c", "from distml.cli import main; main()", "serve", "--model", str(model_folder),
               "--name", NAME, "--port", str(port), "--max-request-mb", "1"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if http_json("GET", f"http://127.0.0.1:{port}/v1/models/{NAME}", timeout=2)[0] == 200:
                    break
            except OSError:
                time.sleep(0.3)
        assert listening_addresses(port) == {"127.0.0.1"}
        status, body = post(port, f"/v1/models/{NAME}:predict", instances_body(4000))
        assert status == 413 and f"limit of {LIMIT} bytes" in body["error"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 143  # uvicorn re-raises the signal once stopped: distml exits 143
    finally:
        process.kill()
        process.wait()
    assert "127.0.0.1" in process.stdout.read().decode()
