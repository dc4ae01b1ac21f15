"""Shared set-up for the benchmarks: a dev node subprocess and a migrated database."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyln.client import LightningRpc

from marketplace.db import migrate
from marketplace.db.engine import Database

REPO = Path(__file__).resolve().parents[1]


class BenchNode:
    def __init__(self, root: Path) -> None:
        self.dir = root / "devnode"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = (root / "devnode.log").open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", "lightning.devnode", "--data-dir", str(self.dir)],
                                        cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        while True:
            try:
                LightningRpc(self.rpc("marketplace")).getinfo()
                LightningRpc(self.rpc("wallet")).getinfo()
                break
            except (OSError, ValueError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def rpc(self, node: str) -> str:
        return str(self.dir / node / "lightning-rpc")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="microlend-bench-"))


def fresh_database(root: Path, url: str | None) -> Database:
    """SQLite under root, or a new database on the PostgreSQL server given by url."""
    if url:
        from sqlalchemy import create_engine, text
        from sqlalchemy.engine import make_url

        from marketplace.db.engine import normalize_url

        server = make_url(normalize_url(url))
        name = f"mlbench_{os.getpid()}_{int(time.time())}"
        admin = create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        database = Database(server.set(database=name).render_as_string(hide_password=False))
    else:
        database = Database(f"sqlite:///{root / 'bench.sqlite3'}")
    migrate.upgrade(database.engine)
    return database
