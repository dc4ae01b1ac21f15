"""The operator's pages through the real ASGI app, on a fake node: what is shown, who gets in, what is refused."""
from __future__ import annotations

from collections.abc import Iterator
from typing import cast
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from sqlalchemy import insert, select

from lightning.errors import ConnectError, FundingError, NodeUnreachable
from lightning.port import Channel, ChannelClosed, ChannelOpened, LightningPort, NodeInfo
from marketplace.app import create_app
from marketplace.db.engine import Database
from marketplace.db.tables import outbox
from marketplace.services.accounts import create_user
from marketplace.services.loans import utc_today
from marketplace.settings import Settings
from marketplace.services.notices import notices_for
from tests.integration.test_reminders import make_active_loan
from tests.web.support import PASSWORD, TestClient, csrf_token, sign_in

PEER = "02" + "ab" * 32
OTHER_PEER = "03" + "cd" * 32


class FakeNode:
    """The few port calls the operator pages make; records the actions it was asked to do."""

    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.fail: Exception | None = None
        self.down = False
        self.chans = [
            Channel(PEER, "103x1x0", "CHANNELD_NORMAL", 1_000_000_000, 600_000_000, 590_000_000, 390_000_000),
            Channel(OTHER_PEER, None, "CHANNELD_AWAITING_LOCKIN", 500_000_000, 500_000_000, 0, 0),
        ]

    async def node_info(self) -> NodeInfo:
        if self.down:
            raise NodeUnreachable("socket missing")
        return NodeInfo("02" + "11" * 32, "microlend-node", "regtest", 812_345, "v25.05")

    async def channels(self) -> list[Channel]:
        if self.down:
            raise NodeUnreachable("socket missing")
        return list(self.chans)

    def _act(self, *call: object) -> None:
        if self.fail is not None:
            raise self.fail
        self.calls.append(call)

    async def connect(self, peer_id: str, host: str | None, port: int | None) -> None:
        self._act("connect", peer_id, host, port)

    async def open_channel(self, peer_id: str, amount_sat: int) -> ChannelOpened:
        self._act("open", peer_id, amount_sat)
        return ChannelOpened("c" * 64, "d" * 64, 0)

    async def close_channel(self, peer_id_or_scid: str) -> ChannelClosed:
        self._act("close", peer_id_or_scid)
        return ChannelClosed("mutual", ("e" * 64,))


@pytest.fixture
def node() -> FakeNode:
    return FakeNode()


@pytest.fixture
def people(database: Database, settings: Settings) -> dict[str, int]:
    return {name: create_user(database, settings, f"{name}@example.org", PASSWORD, role, name.capitalize())
            for name, role in (("ops", "operator"), ("lea", "lender"), ("bea", "borrower"))}


@pytest.fixture
def make(settings: Settings, database: Database, node: FakeNode, people: dict[str, int]) -> Iterator[object]:
    opened: list[TestClient] = []

    def client(name: str | None = None) -> TestClient:
        made = TestClient(create_app(settings, database=database, lightning=cast(LightningPort, node), workers=False)).__enter__()
        opened.append(made)
        if name:
            assert sign_in(made, f"{name}@example.org").status_code == 303
        return made

    yield client
    for made in opened:
        made.__exit__(None, None, None)


@pytest.fixture
def ops(make: object) -> TestClient:
    return make("ops")  # type: ignore[operator, no-any-return]


def post(client: TestClient, path: str, data: dict[str, str], page: str = "/operator") -> httpx.Response:
    response: httpx.Response = client.post(path, data={"csrf_token": csrf_token(client, page), **data},
                                           follow_redirects=False)
    return response


GETS = ["/operator", "/operator/outbox", "/operator/outbox?page=2"]
POSTS = ["/operator/connect", "/operator/channels/open", "/operator/channels/close", "/operator/verify"]


# --- who gets in --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", GETS)
def test_signed_out_is_sent_to_sign_in(make: object, path: str) -> None:
    client: TestClient = make()  # type: ignore[operator]
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=%2Foperator")


@pytest.mark.parametrize("path", POSTS)
def test_signed_out_post_is_sent_to_sign_in(make: object, node: FakeNode, path: str) -> None:
    client: TestClient = make()  # type: ignore[operator]
    response = post(client, path, {"peer_id": PEER, "amount_sat": "100000", "channel": "103x1x0"}, "/signin")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")
    assert node.calls == []


@pytest.mark.parametrize("who", ["lea", "bea"])
def test_lenders_and_borrowers_are_forbidden(make: object, node: FakeNode, who: str) -> None:
    client: TestClient = make(who)  # type: ignore[operator]
    for path in GETS:
        response = client.get(path)
        assert response.status_code == 403, path
        assert "microlend-node" not in response.text
    for path in POSTS:
        response = post(client, path, {"peer_id": PEER, "amount_sat": "100000", "channel": "103x1x0"}, "/dashboard")
        assert response.status_code == 403, path
    assert node.calls == []


# --- what is shown ------------------------------------------------------------------------------------


def test_operator_page_shows_node_channels_liquidity_and_tools(ops: TestClient) -> None:
    page = ops.get("/operator")
    assert page.status_code == 200
    html = page.text
    for expected in ("02" + "11" * 32, "microlend-node", "regtest", "812345", "v25.05",  # the node
                     "103x1x0", "CHANNELD_NORMAL", "CHANNELD_AWAITING_LOCKIN",  # channels and states
                     "1,000,000 sat", "600,000 sat", "400,000 sat",  # capacity, local, remote
                     'id="inbound">390,000 sat', 'id="outbound">590,000 sat',  # usable channels only
                     'id="last-pay-index">0', "payment listener", "reminders and notices",
                     'href="/operator/loans"', 'href="/operator/outbox"', 'action="/operator/verify"',
                     'action="/operator/connect"', 'action="/operator/channels/open"',
                     'action="/operator/channels/close"', '<option value="103x1x0"'):
        assert expected in html, expected
    assert "liquidity-warning" not in html


def test_node_down_still_renders(ops: TestClient, node: FakeNode) -> None:
    node.down = True
    page = ops.get("/operator")
    assert page.status_code == 200
    assert "cannot be reached" in page.text
    assert 'id="inbound">0 sat' in page.text


def test_liquidity_warnings(ops: TestClient, database: Database, people: dict[str, int]) -> None:
    today = utc_today()
    # 500,000 sat due within 7 days (one installment overdue, one in 3 days, one far away).
    make_active_loan(database, people["bea"], [people["lea"]],
                     [today - timedelta(days=2), today + timedelta(days=3), today + timedelta(days=40)],
                     installment_msat=250_000_000)
    # A funded loan waiting for its disbursement: 700,000 sat to pay out.
    make_active_loan(database, people["bea"], [people["lea"]], [today + timedelta(days=30)],
                     installment_msat=700_000_000, status="funded")
    html = ops.get("/operator").text
    assert 'id="due-soon">500,000 sat' in html
    assert 'id="pending-out">700,000 sat' in html
    assert html.count("liquidity-warning") == 2
    assert "below the repayments due in the next 7 days" in html
    assert "below the pending withdrawals and disbursements" in html


# --- actions: good input ------------------------------------------------------------------------------


def test_connect_open_close_call_the_node(ops: TestClient, node: FakeNode) -> None:
    response = post(ops, "/operator/connect", {"peer_id": PEER.upper().replace("0X", ""), "address": "node.example.org:9736"})
    assert response.status_code == 303 and response.headers["location"] == "/operator?done=connected"
    assert "Connected to the peer." in ops.get(response.headers["location"]).text
    assert post(ops, "/operator/connect", {"peer_id": f"{PEER}@[2001:db8::1]:9735", "address": ""}).status_code == 303
    assert post(ops, "/operator/connect", {"peer_id": PEER, "address": ""}).status_code == 303
    assert post(ops, "/operator/channels/open", {"peer_id": PEER, "amount_sat": "1,000,000"}).status_code == 303
    assert post(ops, "/operator/channels/close", {"channel": "103x1x0"}).status_code == 303
    assert post(ops, "/operator/channels/close", {"channel": PEER}).status_code == 303
    assert node.calls == [
        ("connect", PEER, "node.example.org", 9736), ("connect", PEER, "2001:db8::1", 9735),
        ("connect", PEER, None, None), ("open", PEER, 1_000_000), ("close", "103x1x0"), ("close", "103x1x0"),
    ]


# --- actions: bad input -------------------------------------------------------------------------------

BAD = [
    ("/operator/connect", {"peer_id": "", "address": ""}, 422, "Enter the peer"),
    ("/operator/connect", {"peer_id": PEER[:-2], "address": ""}, 422, "66 hexadecimal characters"),
    ("/operator/connect", {"peer_id": PEER[:-1] + "g", "address": ""}, 422, "66 hexadecimal characters"),
    ("/operator/connect", {"peer_id": "04" + PEER[2:], "address": ""}, 422, "starting with 02 or 03"),
    ("/operator/connect", {"peer_id": PEER, "address": "example.org:port"}, 422, "from 1 to 65535"),
    ("/operator/connect", {"peer_id": PEER, "address": "example.org:0"}, 422, "from 1 to 65535"),
    ("/operator/connect", {"peer_id": PEER, "address": "example.org:70000"}, 422, "from 1 to 65535"),
    ("/operator/connect", {"peer_id": PEER, "address": "example.org:"}, 422, "port is missing"),
    ("/operator/connect", {"peer_id": PEER, "address": ":9735"}, 422, "host:port"),
    ("/operator/connect", {"peer_id": PEER, "address": "bad host!:9735"}, 422, "host:port"),
    ("/operator/connect", {"peer_id": PEER, "address": "[::1"}, 422, "IPv6"),
    ("/operator/connect", {"peer_id": PEER + "@a.org:1", "address": "b.org:2"}, 422, "Give the address once"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "0"}, 422, "at least 20,000 sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "-5"}, 422, "more than 0 sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "abc"}, 422, "whole number of sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "1.5"}, 422, "whole number of sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": ""}, 422, "size in sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "16777216"}, 422, "at most 16,777,215 sat"),
    ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "9" * 40}, 422, "at most 16,777,215 sat"),
    ("/operator/channels/open", {"peer_id": "nope", "amount_sat": "100000"}, 422, "66 hexadecimal characters"),
    ("/operator/channels/close", {"channel": "999x1x0"}, 404, "no open channel by that name"),
    ("/operator/channels/close", {"channel": OTHER_PEER}, 404, "no open channel by that name"),  # not usable
    ("/operator/channels/close", {"channel": "'; drop table"}, 422, "short channel id"),
    ("/operator/channels/close", {"channel": ""}, 422, "Choose the channel"),
    ("/operator/channels/close", {"channel": "x" * 400}, 422, "too long"),
]


@pytest.mark.parametrize(("path", "data", "status", "message"), BAD, ids=[f"{p}-{d}" for p, d, _, _ in BAD])
def test_bad_input_is_refused_on_the_page_and_nothing_changes(
    ops: TestClient, node: FakeNode, path: str, data: dict[str, str], status: int, message: str,
) -> None:
    response = post(ops, path, data)
    assert response.status_code == status
    assert 'id="operator-error"' in response.text and message in response.text
    assert 'id="lightning-node"' in response.text  # the whole page again, with the forms
    assert node.calls == []


@pytest.mark.parametrize(("error", "status", "message"), [
    (ConnectError("All addresses failed", code=401), 409, "could not connect to that peer: All addresses failed"),
    (FundingError("Could not afford 100000sat", code=301), 409, "could not open the channel: Could not afford"),
    (NodeUnreachable("socket gone"), 503, "cannot be reached"),
])
def test_node_errors_become_messages(ops: TestClient, node: FakeNode, error: Exception, status: int,
                                     message: str) -> None:
    node.fail = error
    path, data = (("/operator/connect", {"peer_id": PEER, "address": ""}) if "connect" in message
                  else ("/operator/channels/open", {"peer_id": PEER, "amount_sat": "100000"}))
    response = post(ops, path, data)
    assert response.status_code == status
    assert message in response.text


def test_missing_csrf_is_refused(ops: TestClient, node: FakeNode) -> None:
    response = ops.post("/operator/connect", data={"peer_id": PEER, "address": ""}, follow_redirects=False)
    assert response.status_code == 403
    assert node.calls == []


# --- ledger verification ------------------------------------------------------------------------------


def test_verify_ledger_shows_its_summary(ops: TestClient) -> None:
    response = post(ops, "/operator/verify", {})
    assert response.status_code == 200
    assert 'id="verify-summary">ledger OK:' in response.text
    assert "verify-problems" not in response.text


# --- the outbox and the person's own notices -----------------------------------------------------------


def add_notices(database: Database, user_id: int, n: int, prefix: str = "k") -> None:
    now = datetime.now(timezone.utc)
    database.run(lambda c: c.execute(insert(outbox), [
        {"user_id": user_id, "kind": "due", "dedupe_key": f"{prefix}:{user_id}:{i}", "subject": f"Subject {i:02d}",
         "body": f"Body {i}", "created_at": now, "status": "sent" if i % 2 else "pending", "error": ""}
        for i in range(n)]))


def test_outbox_lists_every_notice_newest_first_paged(ops: TestClient, database: Database,
                                                       people: dict[str, int]) -> None:
    add_notices(database, people["bea"], 55)
    first = ops.get("/operator/outbox")
    assert first.status_code == 200
    assert "55 in all" in first.text and "bea@example.org" in first.text
    assert first.text.index("Subject 54") < first.text.index("Subject 53")
    assert "Subject 04" not in first.text and "Page 1 of 2" in first.text
    second = ops.get("/operator/outbox?page=2")
    assert "Subject 04" in second.text and "Subject 00" in second.text and "Subject 05" not in second.text
    assert ops.get("/operator/outbox?page=99").status_code == 200  # past the end: an empty page
    for junk in ("0", "-1", "abc", "9" * 30, "\u00b2"):
        refused = ops.get(f"/operator/outbox?page={junk}")
        assert refused.status_code == 422 and "The page number must be a whole number from 1" in refused.text


def test_notices_for_and_mark_read_own_only(make: object, database: Database, people: dict[str, int]) -> None:
    add_notices(database, people["bea"], 3, "b")
    add_notices(database, people["lea"], 1, "l")
    mine = notices_for(database, people["bea"], 2)
    assert [n.subject for n in mine] == ["Subject 02", "Subject 01"]
    assert all(n.unread for n in mine)
    lea_notice = notices_for(database, people["lea"], 10)[0]

    bea: TestClient = make("bea")  # type: ignore[operator]
    assert post(bea, f"/notices/{mine[0].id}/read", {}, "/dashboard").status_code == 303
    assert not notices_for(database, people["bea"], 1)[0].unread
    # Someone else's notice, or none at all: not found, and nothing changes.
    assert post(bea, f"/notices/{lea_notice.id}/read", {}, "/dashboard").status_code == 404
    assert post(bea, "/notices/999999/read", {}, "/dashboard").status_code == 404
    assert post(bea, "/notices/abc/read", {}, "/dashboard").status_code == 404
    assert notices_for(database, people["lea"], 10)[0].unread
    # htmx gets the partial back.
    partial = bea.post(f"/notices/{mine[1].id}/read", data={"csrf_token": csrf_token(bea, "/dashboard")},
                       headers={"HX-Request": "true"})
    assert partial.status_code == 200 and 'id="notices"' in partial.text and "Mark as read" in partial.text
    oldest = notices_for(database, people["bea"], 10)[-1]
    signed_out: TestClient = make()  # type: ignore[operator]
    response = post(signed_out, f"/notices/{oldest.id}/read", {}, "/signin")
    assert response.status_code == 303 and response.headers["location"].startswith("/signin")
    read_at = database.read(lambda c: c.execute(select(outbox.c.read_at).where(outbox.c.id == oldest.id)).scalar())
    assert read_at is None
