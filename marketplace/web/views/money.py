"""Deposits and withdrawals over Lightning: thin handlers over the services."""
from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from lightning.errors import LightningError
from marketplace.db import outgoing
from marketplace.db.invoices import InvoiceRow
from marketplace.domain.errors import InvalidInput, NotFound, Refusal
from marketplace.domain.users import Role
from marketplace.services import accounts, deposits, withdrawals
from marketplace.services.lightning_calls import node_said, reading
from marketplace.web.errors import retry_after_headers
from marketplace.web.forms import optional_sat_amount, parse_form, sat_amount, text_field
from marketplace.web import live
from marketplace.web.lightning import lightning_of
from marketplace.web.params import path_id
from marketplace.web.qr import invoice_qr_svg
from marketplace.web.rendering import render
from marketplace.web.security import client_address
from marketplace.web.sessions import require_role
from marketplace.web.state import database_of, settings_of
from marketplace.domain.messages import N_
from marketplace.web.i18n import say

BOLT11_FIELD_MAX = 4096


def _invoice_id(request: Request) -> int:
    return path_id(request, "invoice_id", "invoice")


async def deposit_page(request: Request) -> Response:
    await require_role(request, Role.LENDER)
    return await _deposit_form(request, {})


async def _deposit_form(request: Request, echo: dict[str, str], refusal: Refusal | None = None) -> Response:
    settings = settings_of(request)
    context = {"echo": echo, "error": say(refusal) if refusal else None,
               "min_sat": settings.deposit_min_sat, "max_sat": settings.deposit_max_sat}
    return await render(request, "deposit.html", context, status=refusal.status if refusal else 200,
                        headers=retry_after_headers(refusal))


async def create_deposit(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    form = await parse_form(request)
    raw = ""
    try:
        raw = text_field(form, "amount_sat", length_max=32, label=N_("amount"))
        amount_msat = sat_amount(raw)
        runtime = lightning_of(request)
        row = await deposits.create_deposit_invoice(database_of(request), runtime.port, settings_of(request),
                                                    user.id, amount_msat, address=client_address(request))
    except Refusal as refusal:
        return await _deposit_form(request, {"amount_sat": raw}, refusal)
    return RedirectResponse(f"/deposit/{row.id}", status_code=303)


async def _deposit_context(request: Request, user_id: int, row: InvoiceRow) -> dict[str, Any]:
    """The deposit page's live part: the invoice (with its QR) while unpaid, what arrived once paid."""
    return {"invoice": row, "demo_wallet": lightning_of(request).demo_wallet is not None,
            "qr_svg": invoice_qr_svg(row.bolt11) if row.status == "unpaid" and row.bolt11 else "",
            "balances": await run_in_threadpool(accounts.balances_of, database_of(request), user_id)}


async def deposit_invoice(request: Request) -> Response:
    user = await require_role(request, Role.LENDER)
    row = await deposits.deposit_status(database_of(request), user.id, _invoice_id(request))
    if row.bolt11 is None:
        raise NotFound(N_("This invoice was never made by the Lightning node."))
    return await render(request, "deposit_invoice.html", await _deposit_context(request, user.id, row))


async def deposit_status(request: Request) -> Response:
    """The live part as a fragment (htmx's demo-wallet answer, or anyone asking)."""
    user = await require_role(request, Role.LENDER)
    row = await deposits.deposit_status(database_of(request), user.id, _invoice_id(request))
    return await render(request, "_deposit_status.html", await _deposit_context(request, user.id, row))


async def deposit_events(request: Request) -> Response:
    """Server-sent events: the live part again when the invoice is paid or expires (marketplace/web/live.py)."""
    if not live.wants_stream(request):
        return await deposit_status(request)
    user = await require_role(request, Role.LENDER)
    invoice_id = _invoice_id(request)
    latest = {"row": await deposits.deposit_status(database_of(request), user.id, invoice_id)}

    async def snapshot() -> tuple[str, bool]:
        latest["row"] = await deposits.deposit_status(database_of(request), user.id, invoice_id)
        return latest["row"].status, latest["row"].status != "unpaid"

    async def fragment() -> str:
        return await live.render_text(request, "_deposit_status.html",
                                      await _deposit_context(request, user.id, latest["row"]))

    return live.event_stream(request, snapshot, fragment)


async def demo_wallet_pay(request: Request) -> Response:
    """Embedded default only: the demo wallet pays one of the user's own invoices."""
    user = await require_role(request, Role.LENDER, Role.BORROWER)
    runtime = lightning_of(request)
    if runtime.demo_wallet is None:
        raise NotFound(N_("There is no demo wallet here."))
    row = await deposits.deposit_status(database_of(request), user.id, _invoice_id(request))
    back = f"/deposit/{row.id}" if row.purpose == "deposit" else f"/loans/{row.loan_id}/pay/{row.id}"
    if row.status == "unpaid" and row.bolt11:
        try:
            await runtime.demo_wallet.pay(row.bolt11, None, 100_000, 30)
        except LightningError as exc:
            raise InvalidInput(N_("The demo wallet could not pay: %(reason)s", reason=node_said(exc))) from exc
    if request.headers.get("hx-request"):
        if row.purpose == "deposit":
            return await deposit_status(request)
        # The repayment's live part, watching until the listener has applied the payment.
        return await render(request, "loans/_pay_status.html", {
            "invoice": row, "loan_id": row.loan_id, "paid": None, "demo_wallet": True,
            "qr_svg": invoice_qr_svg(row.bolt11) if row.bolt11 else ""})
    return RedirectResponse(back, status_code=303)


async def withdraw_page(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER)
    return await _withdraw_form(request, user.id, {})


async def _withdraw_form(request: Request, user_id: int, echo: dict[str, str], refusal: Refusal | None = None,
                         result: outgoing.OutgoingRow | None = None) -> Response:
    settings = settings_of(request)
    database = database_of(request)
    context = {
        "echo": echo, "error": say(refusal) if refusal else None, "result": result,
        "balances": await run_in_threadpool(accounts.balances_of, database, user_id),
        "recent": await reading(database, lambda c: outgoing.for_user(c, user_id)),
        "reserve_ppm": settings.fee_reserve_ppm, "reserve_min_msat": settings.fee_reserve_min_msat,
    }
    return await render(request, "withdraw.html", context, status=refusal.status if refusal else 200)


async def withdraw(request: Request) -> Response:
    user = await require_role(request, Role.LENDER, Role.BORROWER)
    form = await parse_form(request)
    echo: dict[str, str] = {}
    try:
        bolt11 = text_field(form, "bolt11", length_max=BOLT11_FIELD_MAX, label=N_("invoice")).strip()
        raw_amount = text_field(form, "amount_sat", length_max=32, label=N_("amount")).strip()
        echo = {"bolt11": bolt11, "amount_sat": raw_amount}
        if not bolt11:
            raise InvalidInput(N_("Paste the Lightning invoice (BOLT11) to pay."))
        amount_msat = optional_sat_amount(raw_amount)
        runtime = lightning_of(request)
        result = await withdrawals.withdraw(database_of(request), runtime.port, runtime.facts,
                                            settings_of(request), user.id, bolt11, amount_msat)
    except Refusal as refusal:
        return await _withdraw_form(request, user.id, echo, refusal)
    return await _withdraw_form(request, user.id, {}, result=result)
