"""The per-payment lock: held by another process it excludes us; that process's SIGKILL frees it.

And on PostgreSQL, a lock whose session was cut is no longer "still held", so
its holder does not release money on the strength of its own call.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import text

from marketplace.db.engine import Database
from marketplace.payments.locks import PaymentLocks, lock_key
from tests.crash.support import REPO_ROOT
from tests.databases import PostgresTemplate

HASH = "ab" * 32
HOLDER = """
import sys, time
from marketplace.db.engine import Database
from marketplace.payments.locks import payment_locks
locks = payment_locks(Database(sys.argv[1]))
assert locks.try_claim(sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


def test_a_lock_held_by_another_process_excludes_until_that_process_is_killed(database: Database,
                                                                              db_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db_url, HASH], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
        ours = PaymentLocks(database)
        assert not ours.try_claim(HASH)
        assert ours.try_claim("cd" * 32)  # other payments are free
        ours.release("cd" * 32)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        deadline = time.monotonic() + 10
        while not ours.try_claim(HASH):
            assert time.monotonic() < deadline, "the killed process's lock was never freed"
            time.sleep(0.05)
        assert ours.still_held(HASH)
        assert not ours.try_claim(HASH)  # not twice, not even in this process
        ours.release(HASH)
        assert not ours.still_held(HASH)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_a_lock_whose_session_was_cut_is_not_still_held(postgres_template: PostgresTemplate) -> None:
    # PostgreSQL only: SQLite's file locks have no session to lose.
    url = postgres_template.new_url()
    database = Database(url)
    ours = PaymentLocks(database)
    assert ours.try_claim(HASH) and ours.still_held(HASH)
    key = lock_key(HASH) & 0xFFFF_FFFF_FFFF_FFFF
    with database.engine.connect() as admin:
        cut = admin.execute(text(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid)"),
            {"hi": key >> 32, "lo": key & 0xFFFF_FFFF}).all()
        admin.commit()
    assert cut and all(row[0] for row in cut)
    assert not ours.still_held(HASH)
    ours.release(HASH)
    assert ours.try_claim(HASH)
    ours.release(HASH)
    database.dispose()
    postgres_template.drop(url)
