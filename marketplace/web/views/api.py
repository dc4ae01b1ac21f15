"""The JSON API. Everything here answers about the signed-in user only: no user id in any URL."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from marketplace.services import accounts
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of


async def my_balances(request: Request) -> Response:
    user = await require_role(request)
    balances = await run_in_threadpool(accounts.balances_of, database_of(request), user.id)
    return JSONResponse({
        "available_msat": balances.available_msat,
        "reserved_msat": balances.reserved_msat,
        "pending_msat": balances.pending_msat,
    })
