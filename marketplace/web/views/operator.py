"""The node operator's pages: the node, liquidity, channel actions, ledger check and the outbox.

Only the operator role reaches any of them (403 for others, sign-in when signed out).
"""
from __future__ import annotations

from typing import Any

import anyio.to_thread
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from marketplace.domain.errors import Refusal
from marketplace.domain.users import Role
from marketplace.services import accounts
from marketplace.services import operator as ops
from marketplace.services.loans import utc_today
from marketplace.services.node_status import node_status
from marketplace.web.forms import parse_form, text_field
from marketplace.web.lightning import lightning_of
from marketplace.web.i18n import say
from marketplace.web.params import query_whole
from marketplace.web.rendering import render
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of
from marketplace.domain.messages import N_

OUTBOX_PAGE_SIZE = 50
OUTBOX_PAGE_MAX = 100_000
PROBLEMS_SHOWN = 50
_DONE = {
    "connected": N_("Connected to the peer."),
    "opened": N_("The channel is being opened; it is usable once its funding transaction confirms."),
    "closed": N_("The channel is being closed; its funds return on-chain."),
}


async def _page(request: Request, *, error: Refusal | None = None, echo: dict[str, str] | None = None,
                verify: dict[str, Any] | None = None) -> Response:
    database = database_of(request)
    runtime = lightning_of(request)
    status = await node_status(database, runtime.port)
    today = utc_today()
    liquidity = await run_in_threadpool(ops.liquidity_for, database, status.channels, today)
    user_count = await run_in_threadpool(accounts.count_users, database)
    workers = [runtime.listener_health, runtime.reconciler_health, runtime.aging_health, runtime.notices_health,
               runtime.autoinvest_health]
    done = request.query_params.get("done", "")
    context = {
        "user_count": user_count, "node": status, "liquidity": liquidity, "workers": workers,
        "open_channels": [c for c in status.channels if c.usable],
        "error": say(error) if error else None, "done": _DONE.get(done) if error is None else None,
        "echo": echo or {}, "verify": verify,
        "channel_min_sat": ops.CHANNEL_MIN_SAT, "channel_max_sat": ops.CHANNEL_MAX_SAT,
    }
    return await render(request, "operator.html", context, status=error.status if error else 200)


async def operator(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    return await _page(request)


async def _fields(request: Request, *names: str) -> dict[str, str]:
    form = await parse_form(request)
    return {name: text_field(form, name, length_max=ops.FIELD_MAX, label=name.replace("_", " ")) for name in names}


async def connect_peer(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    echo: dict[str, str] = {}
    try:
        echo = await _fields(request, "peer_id", "address")
        await ops.connect(lightning_of(request).port, echo["peer_id"], echo["address"])
    except Refusal as refusal:
        return await _page(request, error=refusal, echo=echo)
    return RedirectResponse("/operator?done=connected", status_code=303)


async def open_channel(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    echo: dict[str, str] = {}
    try:
        echo = await _fields(request, "peer_id", "amount_sat")
        await ops.open_channel(lightning_of(request).port, echo["peer_id"], echo["amount_sat"])
    except Refusal as refusal:
        return await _page(request, error=refusal, echo={"open_" + k: v for k, v in echo.items()})
    return RedirectResponse("/operator?done=opened", status_code=303)


async def close_channel(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    echo: dict[str, str] = {}
    try:
        echo = await _fields(request, "channel")
        await ops.close_channel(lightning_of(request).port, echo["channel"])
    except Refusal as refusal:
        return await _page(request, error=refusal, echo=echo)
    return RedirectResponse("/operator?done=closed", status_code=303)


async def verify(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    await parse_form(request)
    report = await anyio.to_thread.run_sync(ops.verify_books, database_of(request))
    problems = list(report.problems)
    return await _page(request, verify={
        "ok": report.ok, "summary": report.summary(), "problems": problems[:PROBLEMS_SHOWN],
        "more": max(0, len(problems) - PROBLEMS_SHOWN)})


async def outbox_list(request: Request) -> Response:
    await require_role(request, Role.OPERATOR)
    page = query_whole(request, "page", default=1, minimum=1, maximum=OUTBOX_PAGE_MAX,
                       sentence=N_("The page number must be a whole number from 1 to %(most)s.",
                                   most=format(OUTBOX_PAGE_MAX, ",")))
    rows, total = await anyio.to_thread.run_sync(ops.outbox_page, database_of(request), page, OUTBOX_PAGE_SIZE)
    pages = max(1, -(-total // OUTBOX_PAGE_SIZE))
    return await render(request, "operator_outbox.html", {
        "notices": rows, "total": total, "page": page, "pages": pages})


def operator_routes() -> list[Route]:
    return [
        Route("/operator", operator, methods=["GET"], name="operator"),
        Route("/operator/connect", connect_peer, methods=["POST"], name="operator_connect"),
        Route("/operator/channels/open", open_channel, methods=["POST"], name="operator_open_channel"),
        Route("/operator/channels/close", close_channel, methods=["POST"], name="operator_close_channel"),
        Route("/operator/verify", verify, methods=["POST"], name="operator_verify"),
        Route("/operator/outbox", outbox_list, methods=["GET"], name="operator_outbox"),
    ]
