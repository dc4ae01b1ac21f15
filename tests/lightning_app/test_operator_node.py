"""The operator connects, opens and closes a channel through the pages, against the dev node."""
from __future__ import annotations

import asyncio

import httpx

from marketplace.db.engine import Database
from marketplace.services.accounts import create_user
from marketplace.settings import Settings
from tests.fixtures.devnode import DevNode
from tests.web.support import PASSWORD, TestClient, csrf_token, sign_in


def post(client: TestClient, path: str, data: dict[str, str]) -> httpx.Response:
    response: httpx.Response = client.post(path, data={"csrf_token": csrf_token(client, "/operator"), **data},
                                           follow_redirects=False)
    return response


def scids_with(devnode: DevNode, peer_id: str) -> set[str]:
    channels = asyncio.run(devnode.adapter("marketplace").channels())
    return {c.short_channel_id for c in channels
            if c.peer_id == peer_id and c.state == "CHANNELD_NORMAL" and c.short_channel_id}


def test_operator_connects_opens_and_closes_a_channel(app_client: TestClient, database: Database,
                                                      node_settings: Settings, devnode_session: DevNode) -> None:
    create_user(database, node_settings, "ops@example.org", PASSWORD, "operator")
    assert sign_in(app_client, "ops@example.org").status_code == 303
    carol = devnode_session.rpc("carol").getinfo()["id"]
    marketplace = devnode_session.rpc("marketplace").getinfo()["id"]

    page = app_client.get("/operator")
    assert page.status_code == 200
    assert marketplace in page.text and "CHANNELD_NORMAL" in page.text
    before = scids_with(devnode_session, carol)

    connected = post(app_client, "/operator/connect", {"peer_id": carol, "address": "127.0.0.1:9735"})
    assert connected.status_code == 303, connected.text

    # Refusals first: nothing reaches the node, nothing changes.
    for data, status in (({"peer_id": carol, "amount_sat": "0"}, 422),
                         ({"peer_id": carol, "amount_sat": "lots"}, 422),
                         ({"peer_id": carol, "amount_sat": "99999999"}, 422),
                         ({"peer_id": carol[:-1], "amount_sat": "1000000"}, 422)):
        refused = post(app_client, "/operator/channels/open", data)
        assert refused.status_code == status and 'id="operator-error"' in refused.text
    assert scids_with(devnode_session, carol) == before

    opened = post(app_client, "/operator/channels/open", {"peer_id": carol, "amount_sat": "1,000,000"})
    assert opened.status_code == 303, opened.text
    new = scids_with(devnode_session, carol) - before
    assert len(new) == 1
    scid = new.pop()
    page = app_client.get("/operator?done=opened")
    assert scid in page.text and "1,000,000 sat" in page.text and "The channel is being opened" in page.text

    # Two channels with carol now: naming her alone is ambiguous, so nothing is closed.
    ambiguous = post(app_client, "/operator/channels/close", {"channel": carol})
    assert ambiguous.status_code == 422 and "more than one channel" in ambiguous.text
    unknown = post(app_client, "/operator/channels/close", {"channel": "999999x9x9"})
    assert unknown.status_code == 404 and "no open channel by that name" in unknown.text
    assert scid in scids_with(devnode_session, carol)

    closed = post(app_client, "/operator/channels/close", {"channel": scid})
    assert closed.status_code == 303, closed.text
    assert scids_with(devnode_session, carol) == before
    assert "ONCHAIN" in app_client.get("/operator").text


def test_node_refusals_become_messages(app_client: TestClient, database: Database, node_settings: Settings,
                                       devnode_session: DevNode) -> None:
    create_user(database, node_settings, "ops@example.org", PASSWORD, "operator")
    assert sign_in(app_client, "ops@example.org").status_code == 303
    stranger = "02" + "42" * 32  # a well-formed id no node has
    no_address = post(app_client, "/operator/connect", {"peer_id": stranger, "address": ""})
    assert no_address.status_code == 409 and "could not connect to that peer" in no_address.text
    not_connected = post(app_client, "/operator/channels/open", {"peer_id": stranger, "amount_sat": "100000"})
    assert not_connected.status_code == 409 and "could not open the channel" in not_connected.text


def test_other_roles_cannot_touch_the_node(app_client: TestClient, database: Database, node_settings: Settings,
                                           devnode_session: DevNode) -> None:
    create_user(database, node_settings, "lea@example.org", PASSWORD, "lender")
    assert sign_in(app_client, "lea@example.org").status_code == 303
    carol = devnode_session.rpc("carol").getinfo()["id"]
    before = scids_with(devnode_session, carol)
    token = csrf_token(app_client, "/dashboard")
    for path, data in (("/operator/connect", {"peer_id": carol, "address": ""}),
                       ("/operator/channels/open", {"peer_id": carol, "amount_sat": "1000000"}),
                       ("/operator/channels/close", {"channel": next(iter(before), carol)})):
        response = app_client.post(path, data={"csrf_token": token, **data}, follow_redirects=False)
        assert response.status_code == 403
    assert app_client.get("/operator").status_code == 403
    assert scids_with(devnode_session, carol) == before
