"""Password hashing through a small bounded pool, so a flood of sign-ups cannot eat the server.

argon2id takes its memory (64 MiB by default) for every hash while it runs:
40 sign-ups at once once took the server from 100 MB to 2.2 GB and made
everyone else wait. Here at most `workers` hashes run at a time, at most
`waiting` more requests wait for one, and anything beyond is refused at once
with HashingBusy (429 with Retry-After), before any work or any write.

A request takes a ticket (`with pool.ticket() as ticket:`) for everything it
hashes or verifies; the ticket is what is bounded. The web layer calls those
services through `pool.run(...)`: a request waiting its turn then waits in the
event loop, not in a worker thread, so the threads everyone else's pages need
stay free. The pool is per process and per configuration
(`password_pool(settings)`), like the hasher itself.
"""
from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher, Type

from marketplace.domain.errors import TooManyAttempts
from marketplace.settings import Settings
from marketplace.domain.messages import Message, N_

T = TypeVar("T")
_FIRST_GUESS_S = 0.2  # a hash's duration until one has been measured


class HashingBusy(TooManyAttempts):
    """429: as many sign-ins and sign-ups as the server takes at once are in progress."""

    code = "busy"

    def __init__(self, message: str | Message, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class AddressBusy(HashingBusy):
    """429: this network address already holds its share of the places in the gate."""

    code = "address_busy"


class Ticket:
    """One admitted request's right to hash: each hash still waits for a free worker."""

    def __init__(self, pool: "PasswordPool") -> None:
        self._pool = pool

    def hash(self, password: str) -> str:
        return self._pool._run(self._pool.hasher.hash, password)

    def run(self, work: Callable[[], T]) -> T:
        """Any other argon2 work (a verify) on a worker."""
        return self._pool._run(work)

    def decoy(self) -> str:
        """A hash of a random password, made once per pool: verified against when the email is unknown,
        so that answer takes as long as a wrong password."""
        if self._pool.decoy is None:
            made = self.hash(secrets.token_urlsafe(16))
            with self._pool._lock:
                self._pool.decoy = self._pool.decoy or made
        assert self._pool.decoy is not None
        return self._pool.decoy


class PasswordPool:
    def __init__(self, hasher: PasswordHasher, workers: int, waiting: int, per_address: int | None = None) -> None:
        if workers < 1 or waiting < 0:
            raise ValueError("a password pool needs at least one worker and no negative queue")
        self.hasher = hasher
        self.workers = workers
        self.waiting = waiting
        # Places in the gate one network address may hold at once (running or waiting).
        self.per_address = max(1, per_address if per_address is not None else workers + waiting)
        self._holding: dict[str, int] = {}
        self._admitted = threading.BoundedSemaphore(workers + waiting)
        self._running = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._inside = 0
        self._busy = 0
        self.peak_running = 0  # the most hashes ever running at once: what memory follows
        self._mean_s = _FIRST_GUESS_S
        self.decoy: str | None = None
        # The web's gate: requests wait for a thread here, as coroutines.
        self._threads = anyio.CapacityLimiter(workers)

    async def run(self, service: Callable[..., T], *args: object, address: str | None = None) -> T:
        """Run a blocking service that hashes (sign-in, sign-up) in one of `workers` threads.

        Up to `waiting` more requests wait (without a thread) for their turn;
        beyond that, HashingBusy at once. One `address` holds at most
        `per_address` of those places: a flood from one address is refused
        (AddressBusy) and leaves the rest of the gate to everyone else.
        """
        queued = self._threads.statistics()
        if address is not None and self._holding.get(address, 0) >= self.per_address:
            raise AddressBusy(N_("Your network address has several sign-ins or sign-ups in progress already. "
                                 "Please try again in a few seconds."), self._retry_after_s(queued.tasks_waiting))
        if queued.borrowed_tokens + queued.tasks_waiting >= self.workers + self.waiting:
            raise HashingBusy(N_("Many people are signing in or up right now, so this one was not started. "
                              "Please try again in a few seconds."), self._retry_after_s(queued.tasks_waiting))
        if address is None:
            return await anyio.to_thread.run_sync(lambda: service(*args), limiter=self._threads)
        # No await between the check above and this count: the event loop cannot let another request in between.
        self._holding[address] = self._holding.get(address, 0) + 1
        try:
            return await anyio.to_thread.run_sync(lambda: service(*args), limiter=self._threads)
        finally:
            left = self._holding[address] - 1
            if left:
                self._holding[address] = left
            else:
                del self._holding[address]

    @contextmanager
    def ticket(self) -> Iterator[Ticket]:
        if not self._admitted.acquire(blocking=False):
            raise HashingBusy(N_("Many people are signing in or up right now, so this one was not started. "
                              "Please try again in a few seconds."), self._retry_after_s(0))
        with self._lock:
            self._inside += 1
        try:
            yield Ticket(self)
        finally:
            with self._lock:
                self._inside -= 1
            self._admitted.release()

    def _run(self, work: Callable[..., T], *args: object) -> T:
        with self._running:
            with self._lock:
                self._busy += 1
                self.peak_running = max(self.peak_running, self._busy)
            started = time.monotonic()
            try:
                return work(*args)
            finally:
                elapsed = time.monotonic() - started
                with self._lock:
                    self._busy -= 1
                    self._mean_s = 0.8 * self._mean_s + 0.2 * elapsed

    def _retry_after_s(self, queued: int) -> int:
        """Roughly how long until the requests ahead are through: whole seconds, at least 1."""
        with self._lock:
            ahead, mean_s = self._inside + queued, self._mean_s
        return max(1, math.ceil(ahead * mean_s / self.workers))


@lru_cache(maxsize=8)
def _pool(time_cost: int, memory_kib: int, workers: int, waiting: int, per_address: int) -> PasswordPool:
    return PasswordPool(PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, type=Type.ID), workers, waiting,
                        per_address)


def password_pool(settings: Settings) -> PasswordPool:
    """The process's pool for these settings (one per configuration, so tests with cheap hashing get their own)."""
    return _pool(settings.argon2_time_cost, settings.argon2_memory_kib, settings.password_hash_workers,
                 settings.password_hash_waiting, settings.password_hash_per_address)
