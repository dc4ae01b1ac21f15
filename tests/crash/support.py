"""Real `microlend serve` processes for crash and multi-process tests: start, wait, SIGKILL, read logs."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def app_env(tmp_path: Path, database_url: str, rpc_path: str, env: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an app under test: none of ours inherited, cheap hashing, a short listener wait."""
    result = {k: v for k, v in os.environ.items() if not k.startswith("MICROLEND_")}
    result.update({
        "MICROLEND_DATA_DIR": str(tmp_path / "data"), "MICROLEND_DATABASE_URL": database_url,
        "MICROLEND_CLN_RPC": rpc_path, "MICROLEND_LISTENER_WAIT_S": "1",
        "MICROLEND_SECRET_KEY": "crash-test-secret", "MICROLEND_ARGON2_TIME_COST": "1",
        "MICROLEND_ARGON2_MEMORY_KIB": "8192",
    })
    result.update(env or {})
    return result


class AppProcess:
    """One `microlend serve` subprocess; its output goes to `log_path` (appended across restarts)."""

    def __init__(self, tmp_path: Path, database_url: str, rpc_path: str, name: str = "app",
                 env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        self.env = app_env(tmp_path, database_url, rpc_path, env)
        self.args = args
        self.log_path = tmp_path / f"{name}.log"
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, fault: str = "", **env: str) -> None:
        full = dict(self.env, MICROLEND_FAULT_INJECTION=fault, **env)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "marketplace.cli", "serve", "--port", str(self.port), *self.args],
                env=full, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT)

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"app exited at start ({self.process.returncode}):\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.base_url + "/", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"app did not answer in {timeout_s} s:\n{self.log()[-3000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_exit(self, timeout_s: float = 60) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def kill9(self) -> None:
        assert self.process is not None
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill9()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str, *apps: AppProcess) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    logs = "\n".join(f"--- {app.log_path.name}:\n{app.log()[-3000:]}" for app in apps)
    raise AssertionError(f"{what} did not happen in {timeout_s} s\n{logs}")
