"""The dev node's SQLite file: keys, invoices, payments, channels, counters.

One connection shared by the server threads behind one lock; the same lock
carries a Condition that every state change notifies, which is how waiting
calls (waitanyinvoice, waitinvoice, wait) wake without polling.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    name TEXT PRIMARY KEY,
    node_id TEXT NOT NULL UNIQUE,
    private_key TEXT NOT NULL,
    port INTEGER NOT NULL,
    invoices_created INTEGER NOT NULL DEFAULT 0,
    invoices_updated INTEGER NOT NULL DEFAULT 0,
    invoices_deleted INTEGER NOT NULL DEFAULT 0,
    pay_index INTEGER NOT NULL DEFAULT 0,
    sendpays_created INTEGER NOT NULL DEFAULT 0,
    sendpays_updated INTEGER NOT NULL DEFAULT 0,
    fees_collected_msat INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS invoices (
    node TEXT NOT NULL,
    created_index INTEGER NOT NULL,
    label TEXT NOT NULL,
    bolt11 TEXT NOT NULL,
    payment_hash TEXT NOT NULL,
    payment_secret TEXT NOT NULL,
    preimage TEXT NOT NULL,
    amount_msat INTEGER,
    description TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    updated_index INTEGER,
    pay_index INTEGER,
    amount_received_msat INTEGER,
    paid_at INTEGER,
    PRIMARY KEY (node, created_index),
    UNIQUE (node, label),
    UNIQUE (node, payment_hash)
);
CREATE INDEX IF NOT EXISTS invoices_updated ON invoices (node, updated_index);
CREATE INDEX IF NOT EXISTS invoices_pay_index ON invoices (node, pay_index);
CREATE INDEX IF NOT EXISTS invoices_expiry ON invoices (status, expires_at);
CREATE INDEX IF NOT EXISTS invoices_bolt11 ON invoices (bolt11);
CREATE TABLE IF NOT EXISTS payments (
    node TEXT NOT NULL,
    created_index INTEGER NOT NULL,
    updated_index INTEGER,
    payment_hash TEXT NOT NULL,
    groupid INTEGER NOT NULL,
    destination TEXT NOT NULL,
    amount_msat INTEGER NOT NULL,
    amount_sent_msat INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    completed_at INTEGER,
    status TEXT NOT NULL,
    preimage TEXT,
    bolt11 TEXT,
    label TEXT,
    PRIMARY KEY (node, created_index)
);
CREATE INDEX IF NOT EXISTS payments_hash ON payments (node, payment_hash);
CREATE TABLE IF NOT EXISTS channels (
    id INTEGER PRIMARY KEY,
    opener TEXT NOT NULL,
    peer TEXT NOT NULL,
    short_channel_id TEXT NOT NULL,
    channel_id TEXT NOT NULL,
    funding_txid TEXT NOT NULL,
    total_msat INTEGER NOT NULL,
    opener_msat INTEGER NOT NULL,
    state TEXT NOT NULL,
    closer TEXT,
    opened_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS peers (node TEXT NOT NULL, peer TEXT NOT NULL, PRIMARY KEY (node, peer));
CREATE TABLE IF NOT EXISTS outputs (
    node TEXT NOT NULL,
    txid TEXT NOT NULL,
    output INTEGER NOT NULL,
    amount_msat INTEGER NOT NULL,
    blockheight INTEGER NOT NULL,
    spent INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (txid, output)
);
"""

Row = dict[str, Any]


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a process crash (not a power cut), which is
        # what a dev node needs, at a fraction of the cost of FULL.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)

    def close(self) -> None:
        with self.lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write under the lock; waiters are woken after commit."""
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield self.db
            except BaseException:
                self.db.execute("ROLLBACK")
                raise
            self.db.execute("COMMIT")
            self.changed.notify_all()

    def one(self, sql: str, args: tuple[Any, ...] = ()) -> Row | None:
        with self.lock:
            row = self.db.execute(sql, args).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, args: tuple[Any, ...] = ()) -> list[Row]:
        with self.lock:
            return [dict(r) for r in self.db.execute(sql, args).fetchall()]

    def meta(self, key: str, default: int) -> int:
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return default if row is None else int(row["value"])

    def set_meta(self, db: sqlite3.Connection, key: str, value: int) -> None:
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    @staticmethod
    def bump(db: sqlite3.Connection, node: str, counter: str) -> int:
        """Increment one of a node's CLN indexes and return the new value."""
        assert counter in {
            "invoices_created",
            "invoices_updated",
            "invoices_deleted",
            "pay_index",
            "sendpays_created",
            "sendpays_updated",
        }
        row = db.execute(
            f"UPDATE nodes SET {counter} = {counter} + 1 WHERE name = ? RETURNING {counter}",
            (node,),
        ).fetchone()
        return int(row[0])
