"""Real server processes for tests: daphne serving tests.asgi (or the demo project),
and redis-server.

Every process listens on a free port of 127.0.0.1 and is stopped when its context
manager exits.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Every server process started, with its log and when it started: a failing
#: test's report shows the state and the end of the log of each one still running
#: or started during that test (see tests/conftest.py).
STARTED: list[tuple[Path, subprocess.Popen, float]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on port {port} within {timeout} s")


def server_env(db_path: Path, redis_url: str | None = None, **extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="tests.server_settings",
        CB_TEST_DB=str(db_path),
        PYTHONPATH=str(ROOT),
        **extra,
    )
    if redis_url:
        env["CB_REDIS_URL"] = redis_url
    return env


def django_admin(env: dict, *args: str) -> str:
    """Run a management command in a separate process with the server settings.

    ``shell`` runs with ``-v 0`` so that its output is only what the script prints.
    """
    if args and args[0] == "shell":
        args = ("shell", "-v", "0", *args[1:])
    return run_module(env, "django", *args)


def run_module(env: dict, module: str, *args: str) -> str:
    """Run ``python -m <module> <args>`` in ``env``; return its output, or raise
    with its stderr if it fails."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def daphne(env: dict, log_path: Path):
    """Yield the port of a daphne process serving tests.asgi:application."""
    return asgi_server(env, log_path, "daphne")


def uvicorn(env: dict, log_path: Path):
    """Yield the port of a uvicorn process serving tests.asgi:application."""
    return asgi_server(env, log_path, "uvicorn")


def server_command(
    server: str, port: int, app: str = "tests.asgi:application", quiet: bool = False
) -> list[str]:
    """The ``python -m`` arguments serving ``app`` on 127.0.0.1:``port``;
    ``quiet`` keeps uvicorn's log to warnings (the benchmark's servers)."""
    if server == "uvicorn":
        command = ["uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
        command += ["--lifespan", "off", "--no-access-log"]
        return command + (["--log-level", "warning"] if quiet else [])
    return ["daphne", "-b", "127.0.0.1", "-p", str(port), app]


@contextlib.contextmanager
def asgi_server(
    env: dict,
    log_path: Path,
    server: str,
    app: str = "tests.asgi:application",
    cwd: Path = ROOT,
):
    with asgi_process(env, log_path, server, app, cwd) as (port, _):
        yield port


@contextlib.contextmanager
def asgi_process(
    env: dict,
    log_path: Path,
    server: str,
    app: str = "tests.asgi:application",
    cwd: Path = ROOT,
):
    """As :func:`asgi_server`, yielding ``(port, process)``: the process is the
    server itself (``python -m daphne``), whose memory a test may read."""
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", *server_command(server, port, app)],
            env=env,
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        STARTED.append((log_path, process, time.monotonic()))
        try:
            wait_for_port(port, process)
            yield port, process
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


DEMO_DIR = ROOT / "demo"


def demo_env(db_path: Path, **extra: str) -> dict:
    """The environment of the demo project (demo/) on its own SQLite database."""
    env = dict(os.environ)
    env.pop("CHANNELS_BINDING_REDIS_URL", None)
    env.update(DJANGO_SETTINGS_MODULE="demo_project.settings", DEMO_DB=str(db_path))
    env.update(extra)
    return env


def demo_manage(env: dict, *args: str) -> str:
    """Run ``demo/manage.py <args>`` in a separate process; return its output."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        env=env,
        cwd=DEMO_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout


def demo_server(env: dict, log_path: Path):
    """Yield the port of a daphne process serving the demo project.

    Run ``migrate`` and ``seed_demo`` first (see :func:`demo_manage`).
    """
    return asgi_server(
        env, log_path, "daphne", app="demo_project.asgi:application", cwd=DEMO_DIR
    )


def start_redis(workdir: Path, port: int) -> subprocess.Popen:
    """A redis-server on ``port`` (no persistence), started and listening."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed; `make test` installs it")
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, process)
    return process


@contextlib.contextmanager
def redis_server(workdir: Path):
    """Yield the URL of a fresh redis-server on a free port (no persistence)."""
    port = free_port()
    process = start_redis(workdir, port)
    try:
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)
