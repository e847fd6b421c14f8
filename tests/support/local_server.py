"""Starting a local server process for tests (the Azure and GCS emulators): a free
loopback port, the process's output in a log file, and "answering" meaning the port takes
connections. No module state."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_on_free_port(command: Callable[[int], list[str]], workdir: str, name: str,
                       timeout: float = 60.0) -> tuple[subprocess.Popen, int]:
    """``command(port)`` started in ``workdir`` until its port answers (three tries: the port
    may be taken between choosing and binding it); its output in ``NAME-PORT.log``."""
    for _attempt in range(3):
        port = free_port()
        with open(os.path.join(workdir, f"{name}-{port}.log"), "wb") as log:
            proc = subprocess.Popen(command(port), stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return proc, port
            except OSError:
                time.sleep(0.1)
        stop(proc)
    raise RuntimeError(f"{name} did not start (see the {name}-*.log files in {workdir})")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
