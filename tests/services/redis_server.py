"""A throwaway Redis from Debian's ``redis-server``, installed with apt-get when missing and we are root."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.services.server import LOCALHOST, Server, free_port, is_root, wait_until_answering


def start_redis() -> Server:
    binary = shutil.which("redis-server") or _install_redis_server()
    workdir = Path(tempfile.mkdtemp(prefix="discord-roles-test-redis-"))
    port, log = free_port(), workdir / "redis.log"
    command = [binary, "--bind", LOCALHOST, "--port", str(port), "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir), "--logfile", str(log)]
    # A session of its own: a Ctrl-C meant for pytest must not stop it before the tests' teardown.
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    server = Server(port, workdir, stop)
    try:
        wait_until_answering(port, lambda: process.poll() is None, log)
    except BaseException:
        server.stop()
        raise
    return server


def _install_redis_server() -> str:
    command = "apt-get install -y redis-server"
    if not is_root() or shutil.which("apt-get") is None:
        raise pytest.UsageError(
            f"Redis is not answering and redis-server is not installed: run `sudo {command}`, "
            f"or set DISCORD_ROLES_TEST_REDIS_URL"
        )
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update", "-qq"], [*command.split(), "-qq"]):
        done = subprocess.run(step, env=environment, capture_output=True, text=True, check=False)
        if done.returncode:
            raise pytest.UsageError(f"`{' '.join(step)}` failed ({done.returncode}):\n{done.stderr}")
    binary = shutil.which("redis-server")
    if binary is None:
        raise pytest.UsageError(f"`{command}` left no redis-server on PATH")
    return binary
