"""One address's flood of sign-ins leaves everyone else signing in (issue 21, finding 1).

The hashing gate (workers running + waiting) used to be taken before the
per-address throttle was looked at, so attempts the throttle would refuse
still filled it: 30 threads posting wrong passwords from one address kept a
victim with the right password (from elsewhere) out with 429 "Many people are
signing in or up right now" on most tries. Now an address that the limits
refuse is turned away before the gate, and one address holds at most a few
places in it.

Deterministic: the gate's one worker is held by a blocker until the flood has
either been refused or is waiting in the gate, and the victim is queued.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from sqlalchemy import insert
from starlette.types import ASGIApp, Receive, Scope, Send

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import signin_failures
from marketplace.services import accounts
from marketplace.services.password_pool import PasswordPool, password_pool
from marketplace.settings import Settings
from tests.web.support import PASSWORD, TestClient, csrf_token_in

ATTACKER = ("198.51.100.66", 4000)
VICTIM = ("203.0.113.9", 4000)


def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait for a state of the gate (not a timing assertion: it fails only if the state never comes)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"never reached: {what}"
        time.sleep(0.01)


class PeerFromHeader:
    """The test's stand-in for many machines: each request's peer address comes from `x-test-peer`.

    One app and one event loop (as in a server process), so the gate's state is the one all requests share.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            peer = dict(scope["headers"]).get(b"x-test-peer")
            if peer is not None:
                scope = {**scope, "client": (peer.decode(), 4000)}
        await self.app(scope, receive, send)


def _form(client: TestClient, peer: tuple[str, int]) -> tuple[str, str]:
    """A machine's sign-in form: its CSRF token and its anonymous cookie (as a Cookie header)."""
    page = client.get("/signin", headers={"x-test-peer": peer[0]})
    cookie = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
    client.cookies.clear()
    return csrf_token_in(page.text), cookie


def _post_signin(client: TestClient, peer: tuple[str, int], form: tuple[str, str], email: str, password: str) -> int:
    response = client.post("/signin", data={"csrf_token": form[0], "email": email, "password": password},
                           headers={"x-test-peer": peer[0], "cookie": form[1]}, follow_redirects=False)
    status: int = response.status_code
    return status


def _waiting(pool: PasswordPool) -> int:
    return int(pool._threads.statistics().tasks_waiting)


def _flood_then_victim(settings: Settings, database: Database, attempts: int, emails: Callable[[int], str]) -> tuple[
        list[int], int]:
    """Hold the gate's worker; send `attempts` wrong passwords from ATTACKER at once; then the victim's sign-in."""
    pool = password_pool(settings)
    release = threading.Event()
    app = PeerFromHeader(create_app(settings, database=database, workers=False))
    with TestClient(app) as client, ThreadPoolExecutor(max_workers=attempts + 1) as threads:
        attacker_form, victim_form = _form(client, ATTACKER), _form(client, VICTIM)
        held = client.portal.start_task_soon(pool.run, lambda: release.wait(60))  # type: ignore[union-attr]
        _until(lambda: pool._threads.statistics().borrowed_tokens == 1, "the blocker holds the worker")
        flood: list[Future[int]] = [threads.submit(_post_signin, client, ATTACKER, attacker_form, emails(n), "wrong")
                                    for n in range(attempts)]
        # Every flood attempt has been answered already, or is waiting in the gate.
        _until(lambda: sum(f.done() for f in flood) + _waiting(pool) == attempts, "the flood is in or out")
        waiting_before = _waiting(pool)
        signed = threads.submit(_post_signin, client, VICTIM, victim_form, "victim@example.com", PASSWORD)
        _until(lambda: signed.done() or _waiting(pool) > waiting_before, "the victim is in or out")
        release.set()
        held.result(timeout=60)
        return [f.result(timeout=60) for f in flood], signed.result(timeout=60)


def test_a_throttled_address_takes_no_place_in_the_gate(settings: Settings, database: Database) -> None:
    """The address is over its failure limit: its attempts are refused before the gate, the victim gets in."""
    settings = settings.replace(password_hash_workers=1, password_hash_waiting=4)
    accounts.create_user(database, settings, "victim@example.com", PASSWORD, "lender")
    now = datetime.now(timezone.utc)
    database.run(lambda conn: conn.execute(insert(signin_failures), [
        {"email": f"someone{n}@example.com", "address": ATTACKER[0], "at": now - timedelta(seconds=n)}
        for n in range(settings.signin_failures_per_address)]))
    flood, victim = _flood_then_victim(settings, database, 8, lambda n: "victim@example.com")
    assert victim == 303
    assert flood == [429] * 8


def test_thirty_wrong_passwords_at_once_from_one_address_leave_the_victim_signing_in(
        settings: Settings, database: Database) -> None:
    """The reproduction: 30 at once from one address, on many accounts; the victim elsewhere still gets in."""
    settings = settings.replace(password_hash_workers=1, password_hash_waiting=6)
    accounts.create_user(database, settings, "victim@example.com", PASSWORD, "lender")
    flood, victim = _flood_then_victim(settings, database, 30, lambda n: f"guess{n}@example.com")
    assert victim == 303
    # The address got at most its share of the gate; every other attempt was turned away at once.
    assert set(flood) <= {401, 429}
    assert flood.count(401) <= settings.password_hash_per_address < settings.password_hash_waiting
