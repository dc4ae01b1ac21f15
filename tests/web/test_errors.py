"""Unknown routes, wrong methods, unreadable bodies and crashes all get a clear, headed answer."""
from __future__ import annotations

import pytest
from starlette.routing import Route

from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.settings import Settings
from marketplace.web.security import CONTENT_SECURITY_POLICY
from tests.web.support import TestClient, csrf_token, row_counts


def _assert_security_headers(response: object) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-frame-options"] == "DENY"  # beside frame-ancestors 'none', for older browsers


def test_unknown_page_is_an_html_404(client: TestClient) -> None:
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Page not found" in response.text
    _assert_security_headers(response)


def test_unknown_api_route_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "There is no page at this address."}}
    _assert_security_headers(response)


def test_wrong_method_is_a_405(client: TestClient) -> None:
    response = client.put("/signin", headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 405
    assert "GET" in response.headers["allow"]
    response = client.delete("/api/v1/me/balances", headers={"X-CSRF-Token": csrf_token(client)})
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_security_headers_everywhere(client: TestClient) -> None:
    for path in ("/", "/signin", "/signup", "/static/site.css"):
        response = client.get(path)
        assert response.status_code == 200
        _assert_security_headers(response)


def test_strict_transport_security_only_over_https(settings: Settings, database: Database) -> None:
    with TestClient(create_app(settings, database=database)) as plain:
        assert "strict-transport-security" not in plain.get("/").headers
    with TestClient(create_app(settings.replace(https=True), database=database),
                    raise_server_exceptions=False) as served:
        for path in ("/", "/no/such/page", "/api/v1/me", "/static/site.css"):
            assert served.get(path).headers["strict-transport-security"] == "max-age=31536000", path


def test_the_favicon_is_a_small_svg(client: TestClient) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.content.startswith(b"<svg") and len(response.content) < 1024
    assert "no-store" not in response.headers["cache-control"]
    _assert_security_headers(response)
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/").text
    assert client.get("/static/favicon.svg").content == response.content


def test_static_css_is_served(client: TestClient) -> None:
    response = client.get("/static/site.css")
    assert response.headers["content-type"].startswith("text/css")
    assert "cache-control" not in response.headers or "no-store" not in response.headers["cache-control"]


UNREADABLE = [
    ("application/x-www-form-urlencoded", b"email=\xff\xfe%ff%00&password=\x80\x81&role=lender"),
    ("application/x-www-form-urlencoded", b"%%%&&&===&email"),
    ("multipart/form-data", b"garbage"),
    ("multipart/form-data; boundary=xyz", b"--xyz\r\nnonsense\r\n--xyz--"),
    ("multipart/form-data; boundary=xyz",
     b'--xyz\r\nContent-Disposition: form-data; name="email"; filename="a.txt"\r\n\r\nhi\r\n--xyz--\r\n'),
    ("application/json", b'{"email": "ada@example.com"}'),
    ("text/plain; charset=utf-16", b"\xff\xfe\x00\x00"),
]


# One database for all the cases: they must store nothing anyway.
def test_unreadable_bodies_are_4xx_and_store_nothing(client: TestClient, database: Database) -> None:
    before = row_counts(database)
    for path in ("/signup", "/signin"):
        token = csrf_token(client, path)
        for content_type, body in UNREADABLE:
            for headers in ({"Content-Type": content_type},
                            {"Content-Type": content_type, "X-CSRF-Token": token}):
                response = client.post(path, content=body, headers=headers)
                assert 400 <= response.status_code < 500, (path, body, response.text)
    assert row_counts(database) == before


def test_overlong_body_is_a_413(client: TestClient, database: Database) -> None:
    token = csrf_token(client, "/signup")
    before = row_counts(database)
    response = client.post("/signup", data={"csrf_token": token, "email": "a" * 100_000})
    assert response.status_code == 413
    _assert_security_headers(response)
    assert row_counts(database) == before


def test_a_crash_gets_a_polite_500_with_headers(settings: Settings, database: Database,
                                                caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(settings, database=database)

    async def boom(request: object) -> None:
        raise RuntimeError("kaboom")

    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.text
    assert "kaboom" not in response.text
    _assert_security_headers(response)
    assert "kaboom" in caplog.text
