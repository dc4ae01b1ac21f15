"""Fault injection for the crash tests: the process SIGKILLs itself at a named point.

Only `Settings.fault_injection` turns it on (refused in production mode).
"""
from __future__ import annotations

import logging
import os
import signal

log = logging.getLogger("microlend.faults")


def crash_at(configured: str, point: str) -> None:
    if configured and configured == point:
        log.error("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
