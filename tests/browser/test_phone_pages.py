"""Every page of the app fits a 360-px phone and a 1280-px screen, for everyone who can open it.

The pages come from the app's own route table, so a new page is checked
without anyone remembering to add it: a GET route that is neither visited here
nor named below as not a page fails the test. A lender (with a deposit and a
note), two borrowers (one with an active loan and a repayment invoice, one
with a request still open, so the market has rows) and the operator open every
page their role can, in a 360x740 touch context; anonymous visitors open the
public ones; then the same at 1280x800. On each: no horizontal scroll, nothing sticking out past the
screen, no element wider than its container (a wide table scrolls inside its own box), and where the
page has a main action (MAIN_ACTIONS) its box lies inside the first screen. Screenshots:
test-artifacts/browser/phone-all-*.png and wide-all-*.png.
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
    "/loans/{loan_id}/pay/{invoice_id}/status": "a fragment inside the pay page",
    "/deposit/{invoice_id}/events": "server-sent events for /deposit/{invoice_id} (or its fragment)",
    "/loans/{loan_id}/pay/{invoice_id}/events": "server-sent events for the pay page (or its fragment)",
}


# The main action of a page, for the person who opens it: its box must lie in the first screen.
MAIN_ACTIONS = {
    ("/", "anonymous"): ".hero .button",
    ("/loans/market", "anonymous"): "table.market tbody tr:first-child td.request a",
    ("/loans/market", "lender"): "table.market tbody tr:first-child button",
    ("/dashboard", "lender"): ".lead .button",
    ("/dashboard", "borrower"): ".next-due button.wide-button",
    ("/loans/{loan_id}", "borrower"): ".next-due button.wide-button",
    ("/loans/{loan_id}/pay/{invoice_id}", "borrower"): "a.qr",
    ("/operator", "operator"): "#liquidity-verdict",
}
WIDE = {"width": 1280, "height": 800}

# Elements wider than the box they sit in (unless a scroller or a clipping box holds them).
_WIDER_THAN_CONTAINER = """() => {
  const out = [];
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.classList.length ? "." + [...e.classList].join(".") : "");
  const clipped = (e) => {
    for (let up = e.parentElement; up && up !== document.body; up = up.parentElement) {
      if (["auto", "scroll", "hidden", "clip"].includes(getComputedStyle(up).overflowX)) return true;
    }
    return false;
  };
  for (const element of document.body.querySelectorAll("main *, header *")) {
    const parent = element.parentElement;
    const style = getComputedStyle(element);
    if (!parent || ["absolute", "fixed"].includes(style.position) || style.display === "inline") continue;
    const box = element.getBoundingClientRect(), outer = parent.getBoundingClientRect();
    if (box.width === 0 || box.right <= outer.right + 1) continue;
    if (!clipped(element)) out.push(`${name(element)} reaches ${Math.round(box.right)} px in ${name(parent)} ending at ${Math.round(outer.right)} px`);
  }
  return out.slice(0, 8);
}"""


def assert_in_first_screen(page: Any, selector: str, what: str) -> None:
    page.evaluate("() => window.scrollTo(0, 0)")
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    assert box is not None, f"{what}: no {selector}"
    assert box["y"] >= 0 and box["y"] + box["height"] <= size["height"] and box["x"] + box["width"] <= size["width"], \
        f"{what}: the main action {selector} is not in the first screen: {box}"


def assert_nothing_wider_than_its_box(page: Any, what: str) -> None:
    found = page.evaluate(_WIDER_THAN_CONTAINER)
    assert not found, f"{what}: wider than their container: {found}"


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
    open_id = request_loan(waiting, None)  # still open: the market lists it, with the lender's fund form
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
    wides = {}
    for who, (page, _) in people.items():
        state = None if page is None else page.context.storage_state()
        phones[who] = browsing.context(phone=True, storage_state=state).new_page()
        wide = browsing.context(storage_state=state)
        wides[who] = wide.new_page()
        wides[who].set_viewport_size(WIDE)

    visited: dict[str, list[str]] = {}
    for template in page_routes():
        for who, (_, ids) in people.items():
            names = re.findall(r"\{(\w+)\}", template)
            if any(name not in ids for name in names):
                continue
            path = template
            for name in names:
                path = path.replace("{" + name + "}", str(ids[name]))
            for prefix, screen in (("phone-all", phones[who]), ("wide-all", wides[who])):
                response = screen.goto(path)
                if response is None or response.status != 200 or not screen.url.endswith(path):
                    break  # not this person's page (403, or sent to sign in)
                screen.wait_for_load_state("load")
                name = re.sub(r"[^a-z0-9]+", "-", f"{who}{template}".lower()).strip("-")
                shot(screen, artifacts, f"{prefix}-{name}")
                what = f"{path} as {who} at {screen.viewport_size['width']} px ({prefix}-{name}.png)"
                if prefix == "phone-all":
                    assert_fits_phone(screen, what)
                assert_nothing_wider_than_its_box(screen, what)
                if (template, who) in MAIN_ACTIONS:
                    assert_in_first_screen(screen, MAIN_ACTIONS[template, who], what)
            else:
                visited.setdefault(template, []).append(who)
    # A loan still taking pledges: the lender's fund form is in the first screen.
    for screen in (phones["lender"], wides["lender"]):
        screen.goto(f"/loans/{open_id}")
        assert_in_first_screen(screen, "#fund button", f"/loans/{open_id} as the lender")
    missed = [template for template in page_routes() if template not in visited]
    assert not missed, f"pages nobody here could open (give someone the right ids, or say why not a page): {missed}"
    assert "lender" in visited["/loans/market"] and "borrower" in visited["/loans/{loan_id}"]
    no_script_errors(browsing)
