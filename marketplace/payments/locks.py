"""Who is paying this hash right now: a lock per outgoing payment, across processes.

A caller holds the lock of a payment hash for as long as it talks to the node
about that payment; the reconciler hands an invoice to the node again only
when it can take the lock itself, so it never races a live caller (in this
process or another). The locks die with their process, so a caller killed
mid-payment frees its payment at once.

- PostgreSQL: session advisory locks on one dedicated connection per process.
  If that connection is lost the locks are gone; `still_held` then answers
  False and the caller must not release money on the strength of its call.
- SQLite: POSIX record locks (one byte each) on a file beside the database.

Within one process the set of held hashes decides (record and advisory
locks are per process and per session, so they do not exclude a thread of
the same process).
"""
from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
from pathlib import Path

from sqlalchemy import Connection, Engine, text

from marketplace.db.engine import Database, discard

log = logging.getLogger("microlend.payment_locks")

# POSIX record-lock offsets must fit off_t; 2**62 leaves room for the 1-byte length.
_OFFSET_SPACE = 2**62


def lock_key(payment_hash: str) -> int:
    """A signed 64-bit key from the hash (collisions only make two payments wait on each other)."""
    digest = hashlib.sha256(b"microlend-payment:" + payment_hash.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PaymentLocks:
    """The locks of one database for this process. The session (or file) is open only while a lock is held."""

    def __init__(self, database: Database) -> None:
        self.engine: Engine = database.engine
        self.is_sqlite = database.is_sqlite
        self._mutex = threading.Lock()
        self._held: set[str] = set()
        self._conn: Connection | None = None
        self._fd: int | None = None

    # -- public ------------------------------------------------------------

    def try_claim(self, payment_hash: str) -> bool:
        """Take the payment's lock without waiting; False when anyone (here or elsewhere) holds it."""
        with self._mutex:
            if payment_hash in self._held:
                return False
            if not self._acquire(payment_hash):
                return False
            self._held.add(payment_hash)
            return True

    def release(self, payment_hash: str) -> None:
        with self._mutex:
            if payment_hash not in self._held:
                return
            self._held.discard(payment_hash)
            try:
                self._unlock(payment_hash)
            except Exception:  # a lost session already dropped the lock
                log.warning("could not unlock payment %s cleanly", payment_hash[:16], exc_info=True)
                self._drop_connection()
            if not self._held:
                self._close_backends()

    def still_held(self, payment_hash: str) -> bool:
        """True only if this process provably still holds the lock (PostgreSQL: the session is alive)."""
        with self._mutex:
            if payment_hash not in self._held:
                return False
            if self.is_sqlite:
                return True
            try:
                assert self._conn is not None
                key = lock_key(payment_hash) & 0xFFFF_FFFF_FFFF_FFFF  # pg_locks shows the key's two halves as oids
                found = self._conn.execute(text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 1 "
                    "AND pid = pg_backend_pid() AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid)"),
                    {"hi": key >> 32, "lo": key & 0xFFFF_FFFF}).scalar()
                return bool(found)
            except Exception:
                log.warning("payment lock session lost", exc_info=True)
                self._drop_connection()
                return False

    def held(self) -> frozenset[str]:
        with self._mutex:
            return frozenset(self._held)

    def use_engine(self, database: Database) -> None:
        """A later Database object for the same URL (tests, restarts in-process): use its engine when idle."""
        with self._mutex:
            if not self._held:
                self._close_backends()
                self.engine = database.engine

    def _close_backends(self) -> None:
        if self._conn is not None:  # no lock is held on it: back to the pool
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None
        if self._fd is not None:
            os.close(self._fd)  # drops every record lock of this process on the file: none is held
            self._fd = None

    # -- backends ----------------------------------------------------------

    def _acquire(self, payment_hash: str) -> bool:
        if self.is_sqlite:
            try:
                fcntl.lockf(self._file(), fcntl.LOCK_EX | fcntl.LOCK_NB, 1, self._offset(payment_hash))
            except (BlockingIOError, PermissionError):
                if not self._held:
                    self._close_backends()
                return False
            return True
        for attempt in (1, 2):
            try:
                got = self._session().execute(text("SELECT pg_try_advisory_lock(:k)"),
                                              {"k": lock_key(payment_hash)}).scalar()
                if not got and not self._held:
                    self._close_backends()
                return bool(got)
            except Exception:
                self._drop_connection()
                if attempt == 2:
                    raise
        return False

    def _unlock(self, payment_hash: str) -> None:
        if self.is_sqlite:
            fcntl.lockf(self._file(), fcntl.LOCK_UN, 1, self._offset(payment_hash))
            return
        if self._conn is not None:
            self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock_key(payment_hash)})

    @staticmethod
    def _offset(payment_hash: str) -> int:
        return lock_key(payment_hash) % _OFFSET_SPACE

    def _file(self) -> int:
        if self._fd is None:
            database_path = self.engine.url.database or "memory"
            path = Path(f"{database_path}.payments.lock")
            # Kept open for the process's life: closing any descriptor of the file drops all its record locks.
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    def _session(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _drop_connection(self) -> None:
        discard(self._conn)
        self._conn = None


_BY_URL: dict[str, PaymentLocks] = {}
_REGISTRY_MUTEX = threading.Lock()


def payment_locks(database: Database) -> PaymentLocks:
    """The process's locks for this database URL (shared by every Database object on it)."""
    with _REGISTRY_MUTEX:
        locks = _BY_URL.get(database.url)
        if locks is None:
            locks = _BY_URL[database.url] = PaymentLocks(database)
        elif locks.engine is not database.engine:
            locks.use_engine(database)
        return locks
