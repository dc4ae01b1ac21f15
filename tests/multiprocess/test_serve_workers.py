"""`microlend serve --workers 3`: three worker processes on one socket, one of them runs the listener.

SIGKILL the worker that holds the worker lock, twice: another worker takes the
lock each time, the server keeps answering, and every payment is credited once.
"""
from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import httpx

from marketplace.db.engine import Database
from tests.crash.support import AppProcess, wait_for
from tests.databases import PostgresTemplate
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import make_user
from tests.multiprocess.cluster import FAST_ENV, credited, credits_per_hash, issue_invoices, pay
from tests.multiprocess.test_failover import AMOUNT_MSAT, _settings

_HOLDS = re.compile(r"process (\d+) holds the worker lock")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a killed worker stays a zombie until uvicorn reaps it
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def _holder(app: AppProcess) -> int | None:
    holders = [int(m.group(1)) for m in _HOLDS.finditer(app.log())]
    live = [pid for pid in holders if _alive(pid)]
    return live[-1] if live else None


def test_serve_with_three_workers_keeps_one_listener_through_kills(
        tmp_path: Path, postgres_template: PostgresTemplate, devnode: DevNode) -> None:
    # PostgreSQL only (the production case); SQLite's multi-process case is in test_failover.py.
    db_url = postgres_template.new_url()
    database = Database(db_url)
    settings = _settings(tmp_path, db_url)
    users = [database.run(make_user)[0] for _ in range(3)]
    made = issue_invoices(database, devnode.adapter("marketplace"), settings, users, 40, AMOUNT_MSAT)
    app = AppProcess(tmp_path, db_url, devnode.rpc_path("marketplace"), env=FAST_ENV, args=("--workers", "3"))
    app.start()
    wallet = devnode.rpc("wallet")
    try:
        app.wait_ready()
        killed: list[int] = []
        for i, (_, bolt11) in enumerate(made):
            if i in (10, 25):
                wait_for(lambda: _holder(app) is not None, 20, "a worker-lock holder", app)
                pid = _holder(app)
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            pay(wallet, bolt11)
        wait_for(lambda: credited(database) == len(made), 60, "every payment credited", app)
        wait_for(lambda: _holder(app) not in (None, *killed), 20, "a new holder", app)
        # (uvicorn also starts a replacement for each killed worker, in its own time; not asserted here)
        assert httpx.get(app.base_url + "/", timeout=5).status_code == 200
    finally:
        app.stop()
        time.sleep(0.2)
    assert set(credits_per_hash(database).values()) == {1} and len(credits_per_hash(database)) == len(made)
    database.dispose()
    postgres_template.drop(db_url)
