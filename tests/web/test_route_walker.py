"""Every route of the app, every parameter, hostile values, four kinds of visitor: never a 5xx.

The routes come from the app's own router, so a new route is walked without
anyone remembering to add it. Its parameters are found from the app too:

- path parameters from the route itself;
- JSON API query parameters and body fields from the OpenAPI document;
- page query parameters and form fields by watching which names a handler
  reads (a probe request with good values, repeated while new names turn up),
  and from the forms and links of every page the probes render.

Then each parameter gets each hostile value in turn (Unicode digits, huge,
negative, fractional, exponent, empty, 10 KB, NUL, wrong types, a file, the
field twice) while the others keep good values, so every value reaches the
code that reads it. One app per visitor: anonymous, lender, borrower and
operator, on a real dev node (no 503 from a missing node hides a bug).
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import anyio
import httpx
import pytest
from sqlalchemy import insert
from starlette.datastructures import FormData, ImmutableMultiDict, QueryParams
from starlette.routing import Mount, Route

from lightning.cln import ClnAdapter
from marketplace.app import create_app
from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.tables import outbox
from marketplace.domain.journal import AccountKind
from marketplace.domain.loans.schedules import Frequency, Method
from marketplace.domain.loans.terms import LoanTerms
from marketplace.services import api_tokens, auth, deposits
from marketplace.services import loans as loan_service
from marketplace.services.accounts import create_user
from marketplace.services.lightning_calls import NodeFacts
from marketplace.settings import Settings
from marketplace.web.openapi import API_PREFIX, openapi_document
from marketplace.web.sessions import SESSION_COOKIE
from tests.fixtures.devnode import DevNode
from tests.ledger_helpers import deposit_entry
from tests.web.support import PASSWORD, TestClient, csrf_token_in

ROLES = ("anonymous", "lender", "borrower", "operator")
STORY = "A second sewing machine so I can take twice the orders."
TEN_KB = 10 * 1024
# Text values: what a form field, a query parameter or a path segment receives.
HOSTILE_TEXT = (
    "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
    "\u0661\u0660\u0660\u0660",  # Arabic-Indic 1000: int() reads it
    "99999999999999999999999999999999999999",
    "-1",
    "1.5",
    "1e999999999",
    "NaN",
    "",
    "9" * TEN_KB,
    "x" * TEN_KB,
    "1\x00",
    "null",
    "'\"<script>",
)
# On the second database, the values that can reach it (out of range for its integers, too long for its
# columns, a NUL its text refuses, quoting): the parsing in front of it is the same code on both and is
# walked with every value on SQLite.
DATABASE_TEXT = ("99999999999999999999999999999999999999", "-1", "", "9" * TEN_KB, "x" * TEN_KB, "1\x00",
                 "'\"<script>")
# Where the person is turned away before anything is read (401, 403, sent to sign in), a sample is enough.
GATED_SAMPLE = ("\u00b2", "\u0661\u0660\u0660\u0660", "-1", "9" * TEN_KB, "1\x00")
# JSON values: every kind of JSON thing, as raw JSON text.
HOSTILE_JSON = (
    '"\\u00b2"', '"\\u0661\\u0660\\u0660\\u0660"', "1.5", "1.0", "1e3", "1e999999999", "-1", "0",
    "99999999999999999999999999999999999999", "9" * 5000, '""', '"' + "x" * TEN_KB + '"', '"1\\u0000"',
    "null", "true", "[]", "{}", '"1000"',
)
DATABASE_JSON = ("-1", "0", "99999999999999999999999999999999999999", "9" * 5000, '"' + "x" * TEN_KB + '"',
                 '"1\\u0000"')
# Good values by field name: each hostile value is sent beside these, so it reaches the code that reads it.
GOOD = {
    "email": "walker@example.org", "password": PASSWORD, "display_name": "Walker", "role": "lender",
    "next": "/dashboard", "amount_sat": "2000", "rate": "12", "count": "6", "frequency": "weekly",
    "method": "annuity", "purpose": "business", "story": STORY, "name": "walker token", "address": "127.0.0.1:9735",
    "page": "1", "size": "10", "grade": "A", "sort": "rate", "dir": "desc", "rate_min": "1", "rate_max": "50",
    "term_min": "1", "term_max": "100", "left_min": "1", "limit": "10", "offset": "0", "status": "funding",
    "done": "funded", "rate_percent": "12", "rate_bps": "1200",
}
# Answers that mean "not for you": the handler stopped before reading anything.
_GATED = (401, 403)


@dataclass
class Person:
    user_id: int | None
    email: str
    client: TestClient
    ids: dict[str, int] = field(default_factory=dict)
    session: str | None = None
    csrf: str = ""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # the route's template, e.g. /loans/{loan_id}/fund
    path_names: tuple[str, ...]
    regex: re.Pattern[str]


@dataclass
class Params:
    query: set[str] = field(default_factory=set)
    form: set[str] = field(default_factory=set)
    json: set[str] = field(default_factory=set)


# --- finding the routes and their parameters -----------------------------------------------------------------


def endpoints_of(app: Any) -> list[Endpoint]:
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                found.append(Endpoint(method, route.path, tuple(route.param_convertors), route.path_regex))
        elif isinstance(route, Mount):  # /static/{path}: the file name is a path parameter too
            path = route.path + "/{path}"
            found.append(Endpoint("GET", path, ("path",), re.compile("^" + re.escape(route.path) + "/(?P<path>.*)$")))
        else:
            raise AssertionError(f"the walker does not know this kind of route: {route!r}")
    return found


def _api_params() -> dict[tuple[str, str], Params]:
    document = openapi_document()
    schemas = document["components"]["schemas"]
    found: dict[tuple[str, str], Params] = {}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            params = Params(query={p["name"] for p in operation.get("parameters", []) if p["in"] == "query"})
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
            if body is not None:
                schema = schemas[body["$ref"].rsplit("/", 1)[1]]
                params.json = set(schema.get("properties", {}))
            found[(method.upper(), API_PREFIX + path)] = params
    return found


class _Recorder:
    """Notes every name a handler looks up in its query string or form (class-level, while a probe runs)."""

    def __init__(self) -> None:
        self.query: set[str] = set()
        self.form: set[str] = set()
        self._saved: dict[str, Any] = {}

    def _note(self, mapping: object, key: object) -> None:
        if isinstance(key, str):
            if isinstance(mapping, FormData):
                self.form.add(key)
            elif isinstance(mapping, QueryParams):
                self.query.add(key)

    def __enter__(self) -> "_Recorder":
        recorder = self
        for name in ("__getitem__", "getlist", "__contains__"):
            original = getattr(ImmutableMultiDict, name)
            self._saved[name] = original

            def watched(mapping: Any, key: Any, *rest: Any, _original: Callable[..., Any] = original) -> Any:
                recorder._note(mapping, key)
                return _original(mapping, key, *rest)

            setattr(ImmutableMultiDict, name, watched)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(ImmutableMultiDict, name, original)


class _Forms(HTMLParser):
    """The forms (action, method, field names) and the links of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, str, set[str]]] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append((values.get("action", ""), values.get("method", "get").upper(), set()))
        elif tag in ("input", "select", "textarea", "button") and self.forms and values.get("name"):
            self.forms[-1][2].add(values["name"])
        elif tag == "a" and values.get("href"):
            self.links.append(values["href"])
        elif values.get("hx-get"):
            self.links.append(values["hx-get"])


# --- the world the walker visits ------------------------------------------------------------------------------


@dataclass
class World:
    settings: Settings
    database: Database
    people: dict[str, Person]
    bolt11: str
    peer_id: str
    channel: str
    devnode: DevNode


def _credit(database: Database, user_id: int, amount_sat: int) -> None:
    database.run(lambda c: ledger.post(c, [deposit_entry(
        c, ledger.account_id(c, ledger.user_account_code(user_id, AccountKind.USER_AVAILABLE)), amount_sat * 1000)]))


async def _lightning_things(world_settings: Settings, database: Database, devnode: DevNode,
                            ids: dict[str, int]) -> dict[str, Any]:
    """Bob's loan, disbursed to the wallet, with a repayment invoice; Lea's deposit invoice; a wallet invoice."""
    port = ClnAdapter(devnode.rpc_path("marketplace"))
    wallet = devnode.adapter("wallet")
    terms = LoanTerms(20_000_000, 1800, 4, Frequency.WEEKLY, Method.ANNUITY)
    bob = ids["bob"]
    loan_b = loan_service.request_loan(database, world_settings, bob, terms, "transport", STORY)
    loan_service.pledge(database, world_settings, ids["leo"], loan_b, 20_000_000)
    principal = await wallet.create_invoice(20_000_000, f"walker-{time.time_ns()}", "principal", 3600)
    outcome = await loan_service.disburse(database, port, NodeFacts(port), world_settings, bob, loan_b,
                                          principal.bolt11)
    assert outcome.status == "succeeded", outcome.error
    repayment = await loan_service.repayment_invoice(database, port, world_settings, bob, loan_b, None)
    deposit = await deposits.create_deposit_invoice(database, port, world_settings, ids["lea"], 5_000_000)
    payable = await wallet.create_invoice(2_000_000, f"walker-pay-{time.time_ns()}", "to pay", 3600)
    channel = next(c.short_channel_id for c in await port.channels() if c.short_channel_id)
    return {"bolt11": payable.bolt11, "peer_id": (await wallet.node_info()).id, "channel": channel,
            "loan_b": loan_b, "repayment": repayment.id, "deposit": deposit.id}


def build_world(settings: Settings, database: Database, devnode: DevNode) -> World:
    settings = settings.replace(cln_rpc=devnode.rpc_path("marketplace"))
    ids = {name: create_user(database, settings, f"{name}@example.org", PASSWORD, role)
           for name, role in (("lea", "lender"), ("leo", "lender"), ("bea", "borrower"), ("bob", "borrower"),
                              ("ops", "operator"))}
    _credit(database, ids["lea"], 1_000_000)
    _credit(database, ids["leo"], 1_000_000)
    terms = LoanTerms(20_000_000, 1800, 12, Frequency.WEEKLY, Method.ANNUITY)
    loan_a = loan_service.request_loan(database, settings, ids["bea"], terms, "business", STORY)
    note = loan_service.pledge(database, settings, ids["lea"], loan_a, 2_000_000)
    made = anyio.run(_lightning_things, settings, database, devnode, ids)
    loan_b, repayment_id, deposit_id = made["loan_b"], made["repayment"], made["deposit"]
    now = datetime.now(timezone.utc)
    notice_ids = {}
    token_ids = {}
    for name in ("lea", "bob", "ops"):
        notice_ids[name] = database.run(lambda c: int(c.execute(insert(outbox).values(
            user_id=ids[name], kind="due", dedupe_key=f"walker:{name}", subject="s", body="b", created_at=now,
            status="sent", error="")).inserted_primary_key[0]))
        token_ids[name] = api_tokens.create_token(database, ids[name], f"{name} token").id
    people = {
        "anonymous": Person(None, "", None),  # type: ignore[arg-type]
        "lender": Person(ids["lea"], "lea@example.org", None, {  # type: ignore[arg-type]
            "loan_id": loan_a, "note_id": note, "invoice_id": deposit_id, "notice_id": notice_ids["lea"],
            "token_id": token_ids["lea"]}),
        "borrower": Person(ids["bob"], "bob@example.org", None, {  # type: ignore[arg-type]
            "loan_id": loan_b, "invoice_id": repayment_id, "notice_id": notice_ids["bob"],
            "token_id": token_ids["bob"], "note_id": note}),
        "operator": Person(ids["ops"], "ops@example.org", None, {  # type: ignore[arg-type]
            "loan_id": loan_b, "invoice_id": deposit_id, "notice_id": notice_ids["ops"],
            "token_id": token_ids["ops"], "note_id": note}),
    }
    return World(settings, database, people, made["bolt11"], made["peer_id"], made["channel"], devnode)


# --- visiting -------------------------------------------------------------------------------------------------


class Visitor:
    """One person's browser on their own app; keeps them signed in whatever the requests do to the session."""

    def __init__(self, world: World, person: Person, client: TestClient) -> None:
        self.world = world
        self.person = person
        self.client = client
        self.good = {**GOOD, "bolt11": world.bolt11, "peer_id": world.peer_id, "channel": world.channel,
                     "request_key": "walker-request-key-0001"}
        self.sent = 0
        self._sign_in()

    def _sign_in(self) -> None:
        self.client.cookies.clear()
        if self.person.user_id is not None:
            self.person.session = auth.start_session(self.world.database, self.world.settings, self.person.user_id,
                                                     "testclient")
            self.client.cookies.set(SESSION_COOKIE, self.person.session)
        page = self.client.get("/signin")
        assert page.status_code == 200, page.text
        self.person.csrf = csrf_token_in(page.text)
        self._cookies = dict(self.client.cookies)

    def path_for(self, endpoint: Endpoint, hostile: tuple[str, str] | None = None) -> str:
        path = endpoint.path
        for name in endpoint.path_names:
            value = hostile[1] if hostile and hostile[0] == name else (
                "style.css" if name == "path" else str(self.person.ids.get(name, 1)))
            path = path.replace("{" + name + "}", quote(value, safe=""))
        return path

    def send(self, endpoint: Endpoint, path: str, *, query: list[tuple[str, str]] | None = None,
             form: list[tuple[str, str]] | None = None, files: dict[str, Any] | None = None,
             json_text: str | None = None, token: str | None = None) -> httpx.Response:
        self.client.cookies.clear()
        for name, value in self._cookies.items():
            self.client.cookies.set(name, value)
        url = path + ("?" + urlencode(query) if query else "")
        headers = {}
        if endpoint.method == "GET":
            response = self.client.get(url, follow_redirects=False)
        elif json_text is not None:
            headers = {"Content-Type": "application/json", "X-CSRF-Token": self.person.csrf}
            response = self.client.request(endpoint.method, url, content=json_text.encode("utf-8", "surrogatepass"),
                                           headers=headers, follow_redirects=False)
        else:
            data = [("csrf_token", self.person.csrf if token is None else token), *(form or [])]
            if files:
                response = self.client.request(endpoint.method, url, data=dict(data), files=files,
                                               follow_redirects=False)
            else:
                body = urlencode(data, encoding="utf-8", errors="surrogatepass")
                response = self.client.request(endpoint.method, url, content=body, follow_redirects=False,
                                               headers={"Content-Type": "application/x-www-form-urlencoded"})
        self.sent += 1
        if SESSION_COOKIE in response.headers.get("set-cookie", ""):
            self._sign_in()  # signed out, or signed in as someone else: back to being this person
        return response


def good_form(visitor: Visitor, names: set[str], skip: str | None = None) -> list[tuple[str, str]]:
    return [(name, visitor.good.get(name, "1")) for name in sorted(names) if name not in (skip, "csrf_token")]


def _route_for(endpoints: list[Endpoint], method: str, path: str) -> Endpoint | None:
    """The endpoint the router would pick: the first whose pattern matches."""
    return next((e for e in endpoints if e.method == method and e.regex.match(path)), None)


# The names do not depend on the data: found once per test process, for every role's walk.
_DISCOVERED: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], Params]] = {}


def discover(visitors: dict[str, Visitor], endpoints: list[Endpoint]) -> dict[tuple[str, str], Params]:
    """Each endpoint's query and form names, from the API document, the handlers' own reads and the pages."""
    key = tuple((e.method, e.path) for e in endpoints)
    if key not in _DISCOVERED:
        _DISCOVERED[key] = _discover(visitors, endpoints)
    return _DISCOVERED[key]


def _discover(visitors: dict[str, Visitor], endpoints: list[Endpoint]) -> dict[tuple[str, str], Params]:
    found = {(e.method, e.path): Params() for e in endpoints}
    for key, params in _api_params().items():
        if key in found:
            found[key] = params
    pages: list[tuple[str, str]] = []
    for _ in range(3):  # again while new names turn up: a handler may read a field only once others are good
        grew = False
        for endpoint in endpoints:
            if endpoint.path.startswith(API_PREFIX):
                continue
            params = found[(endpoint.method, endpoint.path)]
            for visitor in visitors.values():
                with _Recorder() as seen:
                    response = visitor.send(endpoint, visitor.path_for(endpoint),
                                            query=good_form(visitor, params.query),
                                            form=good_form(visitor, params.form))
                if "text/html" in response.headers.get("content-type", ""):
                    pages.append((visitor.path_for(endpoint), response.text))
                before = len(params.query) + len(params.form)
                params.query |= seen.query
                params.form |= seen.form if endpoint.method != "GET" else set()
                grew = grew or len(params.query) + len(params.form) > before
        for page_path, html in pages:  # what the rendered pages offer: forms and links
            parser = _Forms()
            parser.feed(html)
            for action, method, names in parser.forms:
                target = _route_for(endpoints, method, urlsplit(action or page_path).path)
                if target is not None:
                    bucket = found[(target.method, target.path)]
                    names = names - {"csrf_token"}
                    into = bucket.query if method == "GET" else bucket.form
                    grew = grew or not names <= into
                    into |= names
            for link in parser.links:
                parts = urlsplit(link)
                target = _route_for(endpoints, "GET", parts.path or urlsplit(page_path).path)
                if target is not None:
                    bucket = found[("GET", target.path)]
                    names = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
                    grew = grew or not names <= bucket.query
                    bucket.query |= names
        pages.clear()
        if not grew:
            break
    return found


# --- the walk ---------------------------------------------------------------------------------------------


@dataclass
class Failure:
    method: str
    url: str
    where: str
    status: int
    excerpt: str


def _check(failures: list[Failure], endpoint: Endpoint, where: str, response: httpx.Response) -> None:
    text = response.text
    if response.status_code >= 500 or "invalid literal" in text or "Traceback" in text:
        failures.append(Failure(endpoint.method, str(response.url)[:160], where, response.status_code,
                                re.sub(r"\s+", " ", text)[:300]))


def walk(visitor: Visitor, endpoints: list[Endpoint], found: dict[tuple[str, str], Params]) -> list[Failure]:
    failures: list[Failure] = []
    for endpoint in endpoints:
        params = found[(endpoint.method, endpoint.path)]
        query = good_form(visitor, params.query)
        form = good_form(visitor, params.form)
        json_good = {name: visitor.good.get(name, "1") for name in params.json}
        baseline = visitor.send(endpoint, visitor.path_for(endpoint), query=query, form=form,
                                json_text=json.dumps(_typed(json_good)) if params.json else None)
        _check(failures, endpoint, "good values", baseline)
        turned_away = baseline.status_code in _GATED or (
            baseline.status_code == 303 and baseline.headers.get("location", "").startswith("/signin?"))
        second = visitor.world.database.engine.dialect.name != "sqlite"
        values = GATED_SAMPLE if turned_away else DATABASE_TEXT if second else HOSTILE_TEXT

        def send(path: str, *, q: list[tuple[str, str]] = query, f: list[tuple[str, str]] = form,
                 **extra: Any) -> httpx.Response:
            json_text = None
            if params.json and "files" not in extra and "token" not in extra:
                json_text = extra.pop("json_text", None) or json.dumps(_typed(json_good))
            return visitor.send(endpoint, path, query=q, form=f, json_text=json_text, **extra)

        for name in endpoint.path_names:
            for value in values:
                if name == "path" and "\x00" in value:
                    continue  # a NUL in a static file name is refused by the OS layer below Starlette, not us
                _check(failures, endpoint, f"path {name}={value[:12]!r}", send(visitor.path_for(endpoint, (name, value))))
        path = visitor.path_for(endpoint)
        for name in sorted(params.query):
            others = [(k, v) for k, v in query if k != name]
            for value in values:
                _check(failures, endpoint, f"query {name}={value[:12]!r}", send(path, q=[*others, (name, value)]))
            _check(failures, endpoint, f"query {name} twice", send(path, q=[*others, (name, "1"), (name, "2")]))
        if endpoint.method != "GET":
            for name in sorted(params.form):
                others = [(k, v) for k, v in form if k != name]
                for value in values:
                    _check(failures, endpoint, f"form {name}={value[:12]!r}", send(path, f=[*others, (name, value)]))
                _check(failures, endpoint, f"form {name} twice", send(path, f=[*others, (name, "1"), (name, "2")]))
                _check(failures, endpoint, f"form {name} as a file",
                       send(path, f=others, files={name: ("x.txt", b"1000", "text/plain")}))
            for value in ("\u00b2", "", "x" * 300):
                _check(failures, endpoint, f"csrf_token={value[:12]!r}", send(path, token=value))
            for name in sorted(params.json):
                for raw in HOSTILE_JSON[:4] if turned_away else DATABASE_JSON if second else HOSTILE_JSON:
                    body = {k: v for k, v in _typed(json_good).items() if k != name}
                    text = json.dumps(body)[:-1] + (", " if body else "") + f'"{name}": {raw}' + "}"
                    _check(failures, endpoint, f"json {name}={raw[:12]}", send(path, json_text=text))
            if params.json:
                for raw in ("[]", "1", '"x"', "{", "null", '{"a": ' * 2000 + "1" + "}" * 2000):
                    _check(failures, endpoint, f"json body {raw[:12]}", send(path, json_text=raw))
    return failures


def _typed(values: dict[str, str]) -> dict[str, Any]:
    """JSON bodies take numbers as numbers."""
    return {k: int(v) if v.isascii() and v.isdigit() else v for k, v in values.items()}


@pytest.fixture
def world(settings: Settings, database: Database, devnode: DevNode) -> World:
    return build_world(settings, database, devnode)


@pytest.fixture
def visitors(world: World) -> Iterator[dict[str, Visitor]]:
    opened: list[TestClient] = []
    try:
        made = {}
        for role in ROLES:
            app = create_app(world.settings, database=world.database, workers=False,
                             demo_wallet=world.devnode.adapter("wallet"))
            client = TestClient(app, raise_server_exceptions=False).__enter__()
            opened.append(client)
            made[role] = Visitor(world, world.people[role], client)
        yield made
    finally:
        for client in opened:
            client.__exit__(None, None, None)


@pytest.mark.parametrize("role", ROLES)
def test_no_route_answers_5xx_to_hostile_values(visitors: dict[str, Visitor], role: str) -> None:
    app = visitors[role].client.app
    endpoints = endpoints_of(app)
    found = discover(visitors, endpoints)
    failures = walk(visitors[role], endpoints, found)
    report = "\n".join(f"{f.method} {f.url} [{f.where}] -> {f.status}: {f.excerpt}" for f in failures[:40])
    assert not failures, f"{len(failures)} hostile request(s) as {role} answered badly:\n{report}"
