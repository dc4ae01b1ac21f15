"""Helpers for driving the real ASGI app (lifespan included) against the test database."""
from __future__ import annotations

import re
import warnings
from typing import Any

from sqlalchemy import func, select
from sqlalchemy import Table
from starlette.exceptions import StarletteDeprecationWarning

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import sessions, signin_failures, users
from marketplace.settings import Settings

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


with warnings.catch_warnings():
    # Starlette 1.x warns once, at import, that it prefers httpx2; httpx is what we depend on.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient as TestClient


def make_client(settings: Settings, database: Database, **kwargs: Any) -> TestClient:
    return TestClient(create_app(settings, database=database, workers=False), **kwargs)


def csrf_token_in(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "page has no CSRF field"
    return found.group(1)


def csrf_token(client: TestClient, path: str = "/signin") -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text
    return csrf_token_in(response.text)


def sign_up(client: TestClient, email: str, password: str = PASSWORD, role: str = "lender",
            display_name: str = "", **extra: str) -> Any:
    data = {"csrf_token": csrf_token(client, "/signup"), "email": email, "password": password,
            "role": role, "display_name": display_name, **extra}
    return client.post("/signup", data=data, follow_redirects=False)


def sign_in(client: TestClient, email: str, password: str = PASSWORD, **extra: str) -> Any:
    data = {"csrf_token": csrf_token(client, "/signin"), "email": email, "password": password, **extra}
    return client.post("/signin", data=data, follow_redirects=False)


def sign_out(client: TestClient) -> Any:
    return client.post("/signout", data={"csrf_token": csrf_token(client, "/dashboard")}, follow_redirects=False)


def count(database: Database, table: Table) -> int:
    return database.read(lambda conn: int(conn.execute(select(func.count()).select_from(table)).scalar_one()))


def row_counts(database: Database) -> tuple[int, int]:
    """Users and sessions: what a refused sign-up or sign-in must leave untouched."""
    return count(database, users), count(database, sessions)


def failure_count(database: Database) -> int:
    return count(database, signin_failures)
