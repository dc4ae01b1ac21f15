"""The embedded default runs the dev node as a child process of `microlend run`.

It is started and stopped by the app's lifespan (uvicorn re-raises SIGTERM
after shutting down, so code after `uvicorn.run` never runs), and on Linux
the kernel also sends it SIGTERM if the app dies without a shutdown (kill -9).
"""
from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from pyln.client import LightningRpc
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool

PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: the lifespan still stops the child on a clean shutdown

START_TIMEOUT_S = 20.0
NODES = ("marketplace", "wallet")


class DevNodeChild:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def socket(self, node: str) -> Path:
        return self.data_dir / node / "lightning-rpc"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "devnode.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "lightning.devnode", "--data-dir", str(self.data_dir)],
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the dev node exited at start; see {self.data_dir / 'devnode.log'}")
            try:
                for node in NODES:
                    LightningRpc(str(self.socket(node))).getinfo()
                return
            except (OSError, ValueError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the dev node did not answer within {START_TIMEOUT_S:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def devnode_lifespan(child: DevNodeChild) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """A lifespan extra: the dev node runs (at least) as long as the app, and stops with it."""

    @asynccontextmanager
    async def running(_app: Starlette) -> AsyncIterator[None]:
        if child.process is None or child.process.poll() is not None:
            await run_in_threadpool(child.start)
        try:
            yield
        finally:
            await run_in_threadpool(child.stop)

    return running
