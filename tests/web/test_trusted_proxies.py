"""The client's address behind a proxy (issue 21, finding 5), through a real `microlend serve`.

uvicorn believed X-Forwarded-For only from 127.0.0.1 and nothing set the
trusted proxies, so behind a proxy at 127.0.0.2 every per-address limit was
site-wide: three wrong passwords on each of 7 accounts from clients behind it
locked others out ("Too many failed sign-ins from your network address").
Now MICROLEND_TRUSTED_PROXIES is passed to uvicorn: behind a listed proxy the
limits count the forwarded address; anyone else's X-Forwarded-For is ignored.
The proxy and the direct client are real sockets bound to 127.0.0.2 and 127.0.0.3.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from marketplace.db.engine import Database
from marketplace.db.tables import signin_failures
from tests.fixtures.served import ServedApp, serve

PROXY = "127.0.0.2"
DIRECT = "127.0.0.3"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServedApp]:
    app = serve(tmp_path / "data", {"MICROLEND_TRUSTED_PROXIES": PROXY, "MICROLEND_ARGON2_MEMORY_KIB": "8192",
                                    "MICROLEND_ARGON2_TIME_COST": "1"})
    try:
        yield app
    finally:
        app.stop()


def _from(app: ServedApp, local: str) -> httpx.Client:
    return httpx.Client(base_url=app.base_url, transport=httpx.HTTPTransport(local_address=local), timeout=30)


def _post(client: httpx.Client, path: str, fields: dict[str, str], forwarded: str) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded}
    page = client.get(path, headers=headers)
    found = _CSRF.search(page.text)
    assert found is not None, page.text
    return client.post(path, data={"csrf_token": found.group(1), **fields}, headers=headers, follow_redirects=False)


def _failures(app: ServedApp) -> list[str]:
    database = Database(f"sqlite:///{app.data_dir / 'microlend.sqlite3'}")
    try:
        return database.read(lambda c: list(c.execute(select(signin_failures.c.address)
                                                      .order_by(signin_failures.c.id)).scalars()))
    finally:
        database.dispose()


def test_behind_a_trusted_proxy_the_limits_count_the_forwarded_address(served: ServedApp) -> None:
    with _from(served, PROXY) as proxy:
        made = _post(proxy, "/signup", {"email": "victim@example.org", "password": "correct horse battery",
                                        "role": "lender", "display_name": ""}, "192.0.2.50")
        assert made.status_code == 303, made.text
        proxy.cookies.clear()
        # Someone behind the proxy fails three times on each of 7 accounts.
        for n in range(7):
            for _ in range(3):
                wrong = _post(proxy, "/signin", {"email": f"user{n}@example.org", "password": "wrong"},
                              "198.51.100.5")
                assert wrong.status_code in (401, 429)
        proxy.cookies.clear()
        # The next person behind the same proxy is not locked out by them.
        victim = _post(proxy, "/signin", {"email": "victim@example.org", "password": "correct horse battery"},
                       "203.0.113.10")
        assert victim.status_code == 303, victim.text
    assert set(_failures(served)) == {"198.51.100.5"}


def test_an_untrusted_peers_forwarded_header_is_ignored(served: ServedApp) -> None:
    with _from(served, DIRECT) as direct:
        wrong = _post(direct, "/signin", {"email": "someone@example.org", "password": "wrong"}, "198.51.100.99")
        assert wrong.status_code == 401
    assert _failures(served) == [DIRECT]
