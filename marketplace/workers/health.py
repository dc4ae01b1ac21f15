"""What the background workers tell the operator: state, last error, progress."""
from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class WorkerHealth:
    name: str
    state: str = "starting"  # starting, running, waiting-for-lock, retrying, stopped
    last_error: str = ""
    last_error_at: float | None = None
    last_ok_at: float | None = None
    retry_in_s: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)
    last_pay_index: int = 0

    def ok(self) -> None:
        self.state = "running"
        self.last_ok_at = time.time()
        self.retry_in_s = 0.0

    def failed(self, message: str, retry_in_s: float) -> None:
        self.state = "retrying"
        self.last_error = message
        self.last_error_at = time.time()
        self.retry_in_s = retry_in_s

    def count(self, name: str, n: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + n
