"""`microlend serve` processes forked from a launcher that has already imported the app.

Importing the app (numpy, scipy, Starlette, SQLAlchemy, ...) costs seconds of CPU, and 8-16 s of wall time
on a loaded machine; a crash trial restarts the app every time, so that import would be most of its run time.
The launcher (`python -m tests.crash.forked`, driven over its stdin/stdout) imports once and forks one child per
start; each child is an ordinary process running the real CLI entry point (`marketplace.cli.main(["serve",
...])`) with its own environment, its own log, its own memory, killed with a real SIGKILL. Nothing but the
import is shared: the launcher opens no database, socket, thread or event loop before forking.

`ForkedApp` has the interface of tests.crash.support.AppProcess.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.crash.support import REPO_ROOT, app_env, free_port


class Launcher:
    """The launcher process; `spawn` forks a child and answers its pid."""

    def __init__(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
        self.process = subprocess.Popen([sys.executable, "-m", "tests.crash.forked"], cwd=REPO_ROOT, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        ready = self._read()
        if ready != "ready":
            raise RuntimeError(f"the launcher did not start: {ready!r}")

    def _read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def spawn(self, args: list[str], env: dict[str, str], log_path: Path) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"args": args, "env": env, "log": str(log_path)}) + "\n")
        self.process.stdin.flush()
        return int(self._read())

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=10)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class ForkedApp:
    def __init__(self, launcher: Launcher, tmp_path: Path, database_url: str, rpc_path: str, name: str = "app",
                 env: dict[str, str] | None = None) -> None:
        self.launcher = launcher
        self.env = app_env(tmp_path, database_url, rpc_path, env)
        self.log_path = tmp_path / f"{name}.log"
        self.port = free_port()
        self._pid: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self._pid is not None
        return self._pid

    def start(self, fault: str = "", **env: str) -> None:
        full = dict(self.env, MICROLEND_FAULT_INJECTION=fault, **env)
        self._pid = self.launcher.spawn(["serve", "--port", str(self.port)], full, self.log_path)

    def alive(self) -> bool:
        return self._pid is not None and _exists(self._pid)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"app exited at start:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"app did not answer in {timeout_s} s:\n{self.log()[-3000:]}")

    def wait_exit(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired("microlend serve", timeout_s)
            time.sleep(0.02)

    def kill9(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        while self.alive():
            time.sleep(0.01)

    def stop(self) -> None:
        self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _child(order: dict[str, Any]) -> None:
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.environ.clear()
    os.environ.update(order["env"])
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    code = 1
    try:
        from marketplace.cli import main

        code = main(order["args"])
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def serve_forever() -> None:
    # Everything `microlend serve` imports, imported once here.
    import marketplace.app  # noqa: F401
    import marketplace.cli  # noqa: F401
    import marketplace.cli.server_commands  # noqa: F401
    import uvicorn  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    print("ready", flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(order)
        print(pid, flush=True)


if __name__ == "__main__":
    serve_forever()
