"""Blocking database work from async code: one transaction in a worker thread, off the event loop."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio.to_thread
from sqlalchemy import Connection

from marketplace.db.engine import Database

T = TypeVar("T")


async def in_transaction(database: Database, work: Callable[[Connection], T]) -> T:
    """One writing transaction, off the event loop."""
    return await anyio.to_thread.run_sync(lambda: database.run(work))


async def reading(database: Database, work: Callable[[Connection], T]) -> T:
    return await anyio.to_thread.run_sync(lambda: database.read(work))
