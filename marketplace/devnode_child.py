"""The embedded default runs the dev node as a child process of `microlend run`."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from pyln.client import LightningRpc

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
            stdout=log, stderr=subprocess.STDOUT,
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
