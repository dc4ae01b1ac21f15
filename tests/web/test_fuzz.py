"""Whatever is posted to the auth forms, the answer is never a 500 (and never a crash)."""
from __future__ import annotations

from hypothesis import given, settings as hyp_settings, strategies as st

from marketplace.db.engine import Database
from marketplace.settings import Settings
from tests.web.support import csrf_token, make_client

FIELDS = ["email", "password", "display_name", "role", "next", "csrf_token"]
field_names = st.one_of(st.sampled_from(FIELDS), st.text(max_size=12))
field_values = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["lender", "borrower", "operator", "ada@example.com", "correct horse battery", "/dashboard"]),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1000, max_size=1300),
)
forms = st.lists(st.tuples(field_names, field_values), max_size=8)
content_types = st.sampled_from([
    "application/x-www-form-urlencoded", "multipart/form-data", "multipart/form-data; boundary=b",
    "text/plain", "application/json", "",
])
paths = st.sampled_from(["/signup", "/signin", "/signout"])
EXAMPLES = hyp_settings(max_examples=75, deadline=None)

# One app per test (not per example) keeps this fast; the client's default
# raise_server_exceptions turns any server error into a failing example.


def test_random_form_posts_never_fail_with_500(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        token = csrf_token(client, "/signup")

        @EXAMPLES
        @given(path=paths, fields=forms, with_token=st.booleans(), token_in_header=st.booleans())
        def post(path: str, fields: list[tuple[str, str]], with_token: bool, token_in_header: bool) -> None:
            client.cookies.delete("ml_session")  # a successful sign-up would change the token
            headers = {}
            data = [(name, value) for name, value in fields if name != "csrf_token" or not with_token]
            if with_token and token_in_header:
                headers["X-CSRF-Token"] = token
            elif with_token:
                data.append(("csrf_token", token))
            response = client.post(path, data=dict(data), headers=headers, follow_redirects=False)
            assert response.status_code < 500

        post()


def test_random_raw_bodies_never_fail_with_500(settings: Settings, database: Database) -> None:
    with make_client(settings, database) as client:
        token = csrf_token(client, "/signup")

        @EXAMPLES
        @given(path=paths, body=st.binary(max_size=300), content_type=content_types)
        def post(path: str, body: bytes, content_type: str) -> None:
            headers = {"X-CSRF-Token": token}
            if content_type:
                headers["Content-Type"] = content_type
            response = client.post(path, content=body, headers=headers, follow_redirects=False)
            assert response.status_code < 500

        post()
