"""Fault injection for the crash tests: the process SIGKILLs itself at a named point.

Only `Settings.fault_injection` turns it on (refused in production mode). It
names the point, or `file:<path>`: the point is then read from that file at
each check, so a crash-trial driver can arm one point after another in a
running process instead of paying a restart per trial (tests/crash/trials.py).
"""
from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

log = logging.getLogger("microlend.faults")

FILE_PREFIX = "file:"


def armed_point(configured: str) -> str:
    if not configured.startswith(FILE_PREFIX):
        return configured
    try:
        return Path(configured[len(FILE_PREFIX):]).read_text().strip()
    except OSError:
        return ""


def crash_at(configured: str, point: str) -> None:
    if configured and armed_point(configured) == point:
        log.error("fault injection: SIGKILL at %s", point)
        os.kill(os.getpid(), signal.SIGKILL)
