"""Roles on every protected route, and each user sees only their own balances."""
from __future__ import annotations

import pytest
from sqlalchemy import Connection

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.domain.journal import AccountKind, EntryDraft, LineDraft
from marketplace.services import accounts
from marketplace.settings import Settings
from tests.web.support import PASSWORD, TestClient, make_client, sign_in


def _deposit(database: Database, user_id: int, amount_msat: int) -> None:
    """A Lightning deposit as the ledger sees it: the node holds more, the user may use more."""
    def post(conn: Connection) -> None:
        node = ledger.account_id(conn, "system:node_asset")
        available = ledger.account_id(conn, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE))
        # Sign convention: + debit, - credit.
        ledger.post(conn, [EntryDraft("deposit", (LineDraft(node, amount_msat), LineDraft(available, -amount_msat)))])
    database.run(post)


@pytest.mark.parametrize("path", ["/dashboard", "/operator"])
def test_signed_out_pages_redirect_to_sign_in(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == f"/signin?next=%2F{path[1:]}"


def test_signed_out_api_gets_401_json(client: TestClient) -> None:
    response = client.get("/api/v1/me/balances")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "signin_required"


@pytest.mark.parametrize("role", ["lender", "borrower"])
def test_only_the_operator_opens_the_operator_page(client: TestClient, settings: Settings,
                                                   database: Database, role: str) -> None:
    accounts.create_user(database, settings, "user@example.com", PASSWORD, role)
    sign_in(client, "user@example.com")
    response = client.get("/operator")
    assert response.status_code == 403
    assert "cannot open this page" in response.text
    assert client.get("/dashboard").status_code == 200


def test_operator_page(client: TestClient, settings: Settings, database: Database) -> None:
    accounts.create_user(database, settings, "op@example.com", PASSWORD, "operator", "Node Op")
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender")
    sign_in(client, "op@example.com")
    page = client.get("/operator")
    assert page.status_code == 200
    assert '<span class="amount" id="user-count">2</span>' in page.text
    assert "Lightning node" in page.text
    assert "node operator" in client.get("/dashboard").text


def test_each_user_sees_only_their_own_balances(settings: Settings, database: Database) -> None:
    ada = accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender", "Ada")
    accounts.create_user(database, settings, "bob@example.com", PASSWORD, "borrower", "Bob")
    _deposit(database, ada, 1_234_567)
    with make_client(settings, database) as ada_client, make_client(settings, database) as bob_client:
        sign_in(ada_client, "ada@example.com")
        sign_in(bob_client, "bob@example.com")
        assert ada_client.get("/api/v1/me/balances").json() == {
            "available_msat": 1_234_567, "reserved_msat": 0, "pending_msat": 0}
        assert bob_client.get("/api/v1/me/balances").json() == {
            "available_msat": 0, "reserved_msat": 0, "pending_msat": 0}
        ada_page = ada_client.get("/dashboard").text
        bob_page = bob_client.get("/dashboard").text
        assert 'id="balance-available">1,234 sat<' in ada_page  # whole sats, rounded down (formatting.py)
        assert 'id="balance-available"' not in bob_page  # a borrower's empty balance is not shown at all
        assert "1,234" not in bob_page and "Ada" not in bob_page
        # There is no way to name another user: ids in the path or query are not routes or are ignored.
        assert bob_client.get(f"/api/v1/users/{ada}/balances").status_code == 404
        assert bob_client.get(f"/api/v1/me/balances?user_id={ada}").json()["available_msat"] == 0


def test_home_shows_who_is_signed_in(client: TestClient, settings: Settings, database: Database) -> None:
    assert "Sign up" in client.get("/").text
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender", "Ada <b>")
    sign_in(client, "ada@example.com")
    page = client.get("/").text
    assert "Hello" not in page and "Ada &lt;b&gt;" not in page  # a name is shown only on the person's own pages
    assert 'href="/dashboard"' in page and "Go to your dashboard" in page and "Start lending" not in page
    dashboard = client.get("/dashboard").text
    assert "Hello, Ada &lt;b&gt;" in dashboard  # escaped


def test_requires_role_decorator(settings: Settings, database: Database) -> None:
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response
    from starlette.routing import Route

    from marketplace.app import create_app
    from marketplace.domain.users import Role
    from marketplace.web.sessions import requires_role

    @requires_role(Role.BORROWER)
    async def borrowers_only(request: Request) -> Response:
        return PlainTextResponse(f"hello {request.state.user.display_name}")

    app = create_app(settings, database=database)
    app.router.routes.append(Route("/borrowers", borrowers_only))
    app.router.routes.append(Route("/api/borrowers", borrowers_only))
    accounts.create_user(database, settings, "bob@example.com", PASSWORD, "borrower", "Bob")
    accounts.create_user(database, settings, "ada@example.com", PASSWORD, "lender", "Ada")
    with TestClient(app) as client:
        assert client.get("/borrowers", follow_redirects=False).status_code == 303
        assert client.get("/api/borrowers").status_code == 401
        sign_in(client, "ada@example.com")
        assert client.get("/borrowers").status_code == 403
        assert client.get("/api/borrowers").json()["error"]["code"] == "forbidden"
        sign_in(client, "bob@example.com")
        assert client.get("/borrowers").text == "hello Bob"
