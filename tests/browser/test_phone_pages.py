"""Every page of the app fits a 360-px phone, for everyone who can open it.

The pages come from the app's own route table, so a new page is checked
without anyone remembering to add it: a GET route that is neither visited here
nor named below as not a page fails the test. A lender (with a deposit and a
note), two borrowers (one with an active loan and a repayment invoice, one
with a request still open, so the market has rows) and the operator open every
page their role can, in a 360x740 touch context; anonymous visitors open the
public ones. Screenshots: test-artifacts/browser/phone-all-*.png.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from starlette.routing import Route

from marketplace.web.routes import build_routes
from tests.browser.conftest import Browsing, RunningApp
from tests.browser.test_walkthrough import (
    LOAN_SAT, PASSWORD, _email, assert_fits_phone, fund_note, get_invoice_for_next_due, lender_with_money,
    no_script_errors, receive_loan, request_loan, shot, sign_in, sign_up)

# GET routes that are not pages a person opens, and why.
NOT_PAGES = {
    "/favicon.ico": "an image",
    "/statement.csv": "a download",
    "/settings/export": "a download (the borrower's data as JSON)",
    "/.well-known/lnurlp/{name}": "JSON for wallets (LUD-06/LUD-16)",
    "/lnurlp/{name}/callback": "JSON for wallets (LUD-06 callback)",
    "/deposit/{invoice_id}/status": "a fragment polled inside /deposit/{invoice_id}",
    "/loans/preview": "a fragment inside /loans/new",
    "/loans/{loan_id}/pay/{invoice_id}/status": "a fragment polled inside the pay page",
}


def page_routes() -> list[str]:
    paths = []
    for route in build_routes():
        if isinstance(route, Route) and "GET" in (route.methods or set()) and not route.path.startswith("/api/"):
            if route.path not in NOT_PAGES and route.path not in paths:
                paths.append(route.path)
    return paths


def _id_at_end(url: str) -> int:
    found = re.search(r"/(\d+)$", url)
    assert found is not None, url
    return int(found.group(1))


def test_every_page_fits_a_phone(browsing: Browsing, app: RunningApp, artifacts: Path) -> None:
    # The people, made as in the walkthroughs (through the pages).
    lender, _ = lender_with_money(browsing, "Pia")
    deposit_id = _id_at_end(lender.url)
    borrower = browsing.page()
    sign_up(borrower, _email("ben"), "borrower", "Ben")
    loan_id = request_loan(borrower, None)
    fund_note(lender, loan_id, LOAN_SAT)
    receive_loan(borrower, app, loan_id)
    get_invoice_for_next_due(borrower, loan_id)
    repayment_id = _id_at_end(borrower.url)
    waiting = browsing.page()
    sign_up(waiting, _email("wen"), "borrower", "Wen")
    request_loan(waiting, None)  # still open: the market lists it, with the lender's fund form
    operator_email = _email("otto")
    app.microlend("operator", "create", "--email", operator_email, "--name", "Otto", stdin=PASSWORD + "\n")
    operator = browsing.page()
    sign_in(operator, operator_email)

    people: dict[str, tuple[Any, dict[str, int]]] = {
        "anonymous": (None, {}),
        "lender": (lender, {"invoice_id": deposit_id, "loan_id": loan_id}),
        "borrower": (borrower, {"loan_id": loan_id, "invoice_id": repayment_id}),
        "operator": (operator, {"loan_id": loan_id}),
    }
    phones = {}
    for who, (page, _) in people.items():
        state = None if page is None else page.context.storage_state()
        phones[who] = browsing.context(phone=True, storage_state=state).new_page()

    visited: dict[str, list[str]] = {}
    for template in page_routes():
        for who, (_, ids) in people.items():
            names = re.findall(r"\{(\w+)\}", template)
            if any(name not in ids for name in names):
                continue
            path = template
            for name in names:
                path = path.replace("{" + name + "}", str(ids[name]))
            phone = phones[who]
            response = phone.goto(path)
            if response is None or response.status != 200 or not phone.url.endswith(path):
                continue  # not this person's page (403, or sent to sign in)
            phone.wait_for_load_state("load")
            name = re.sub(r"[^a-z0-9]+", "-", f"{who}{template}".lower()).strip("-")
            shot(phone, artifacts, f"phone-all-{name}")
            assert_fits_phone(phone, f"{path} as {who} (phone-all-{name}.png)")
            visited.setdefault(template, []).append(who)
    missed = [template for template in page_routes() if template not in visited]
    assert not missed, f"pages nobody here could open (give someone the right ids, or say why not a page): {missed}"
    assert "lender" in visited["/loans/market"] and "borrower" in visited["/loans/{loan_id}"]
    no_script_errors(browsing)
