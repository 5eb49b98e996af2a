"""What the throwaway servers share: a free port, waiting for one to answer, stopping and deleting it."""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

LOCALHOST = "127.0.0.1"
READY_DEADLINE = 30.0  # seconds for a started server to answer: two busy cores can be slow


def answers(host: str, port: int) -> bool:
    """Whether something accepts a TCP connection there (a refused or timed-out connection: nothing does)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """A throwaway server: its port, and how to stop it and delete everything it wrote."""

    port: int
    workdir: Path
    stop_server: Callable[[], None]
    stopped: bool = field(default=False, init=False)

    def stop(self) -> None:
        """Stop the server and delete its files; once only, as both pytest_unconfigure and atexit may ask."""
        if self.stopped:
            return
        self.stopped = True
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOCALHOST, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_answering(port: int, alive: Callable[[], bool], log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while not answers(LOCALHOST, port):
        if not alive() or time.monotonic() > deadline:
            raise pytest.UsageError(f"the throwaway server on port {port} did not start:\n{tail(log)}")
        time.sleep(0.05)


def tail(log: Path) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    except OSError:
        return f"(no log at {log})"


def is_root() -> bool:
    return os.geteuid() == 0
