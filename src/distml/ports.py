"""Free TCP ports on loopback, for the processes we start: training workers, the local model server."""

from __future__ import annotations

import socket
from contextlib import ExitStack


def free_ports(count: int = 1) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now (all held open until all are chosen)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
