"""The four tasks people come for, done in Chromium at 360x740 (a cheap phone) and 1280x800, counted.

1. A visitor finds an open request and understands its risk (no account).
2. A new lender deposits, funds three notes and sets auto-invest.
3. A borrower with an installment due pays it from the dashboard.
4. The operator checks whether inbound liquidity covers the repayments due.

Each task counts the page loads (documents loaded) and the clicks it takes, checks that each page's main
action lies inside the first screen (its box within the viewport before any scrolling), and takes a
screenshot of that first screen at each step into test-artifacts/browser/tasks/ (named
<task>-<width>-<step>.png). The counts go to test-artifacts/browser/tasks/tasks.md, the table the
README quotes. Task 3 also measures what an invoice page left waiting costs on the wire (Chrome's own
network events over a quiet spell): at most 2 KB a minute.
"""
from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from marketplace.web import live
from tests.browser.conftest import ARTIFACTS, Browsing, RunningApp, running_app
from tests.browser.test_walkthrough import (
    PASSWORD, _email, active_loan, no_script_errors, request_loan, sign_up)

TASKS_DIR = ARTIFACTS / "tasks"
WIDTHS = {"phone": {"width": 360, "height": 740}, "desktop": {"width": 1280, "height": 800}}
NOTE_SAT = 1_000
IDLE_WINDOW_S = 8.0
IDLE_BYTES_PER_MINUTE_MAX = 2048
RESULTS: dict[str, dict[str, Any]] = {}


@dataclass
class Task:
    """One person doing one task in one browser context: every load and click counted."""

    name: str
    width: str
    page: Any
    loads: int = 0
    clicks: int = 0
    steps: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.page.on("load", self._loaded)

    def _loaded(self, _: Any) -> None:
        self.loads += 1

    @property
    def phone(self) -> bool:
        return self.width == "phone"

    def click(self, locator: Any) -> None:
        locator.click()
        self.clicks += 1

    def goto(self, path: str) -> None:
        """Typing an address (or opening a bookmark): a load, no click."""
        self.page.goto(path)

    def nav(self, link: str) -> None:
        """The main navigation: behind "Menu" on a phone (one more click)."""
        if self.phone:
            self.click(self.page.locator("label.menu-button"))
        self.click(self.page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True))

    def first_screen(self, locator: Any, what: str) -> None:
        """`locator`'s box lies inside the viewport as the page opens (scrolled to the top)."""
        self.page.evaluate("() => window.scrollTo(0, 0)")
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        size = WIDTHS[self.width]
        assert box is not None, what
        inside = (box["x"] >= 0 and box["y"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5
                  and box["y"] + box["height"] <= size["height"] + 0.5)
        assert inside, f"{self.name} at {size['width']} px: {what} is not in the first screen: {box}"

    def shot(self, step: str) -> None:
        self.steps.append(step)
        self.page.evaluate("() => window.scrollTo(0, 0)")
        self.page.screenshot(path=str(TASKS_DIR / f"{self.name}-{WIDTHS[self.width]['width']}-{step}.png"))

    def done(self, **extra: Any) -> None:
        RESULTS.setdefault(self.name, {})[self.width] = {"loads": self.loads, "clicks": self.clicks,
                                                         "steps": self.steps, **extra}
        _write_table()


def _write_table() -> None:
    lines = ["| task | width | page loads | clicks |", "| --- | --- | ---: | ---: |"]
    for name, widths in RESULTS.items():
        for width, found in widths.items():
            lines.append(f"| {name} | {WIDTHS[width]['width']} px | {found['loads']} | {found['clicks']} |")
    (TASKS_DIR / "tasks.md").write_text("\n".join(lines) + "\n")
    (TASKS_DIR / "tasks.json").write_text(json.dumps(RESULTS, indent=2))


def _task(browsing: Browsing, name: str, width: str, storage_state: Any = None) -> Task:
    options: dict[str, Any] = {"base_url": browsing.app.base_url, "viewport": WIDTHS[width]}
    if width == "phone":
        options.update(is_mobile=True, has_touch=True)
    if storage_state is not None:
        options["storage_state"] = storage_state
    context = browsing.browser.new_context(**options)
    context.set_default_timeout(15_000)
    context.on("page", browsing._watch)
    browsing.contexts.append(context)
    return Task(name, width, context.new_page())


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """This module's own marketplace: the lenders here turn auto-invest on, which would buy into the
    requests the other browser tests fund by hand."""
    with running_app(tmp_path_factory, "tasks-app") as running:
        yield running


@pytest.fixture(scope="module")
def open_requests(browser: Any, app: RunningApp) -> Iterator[list[int]]:
    """Three open requests (20,000 sat each) by one borrower, for the visitor and the new lender."""
    TASKS_DIR.mkdir(parents=True, exist_ok=True)
    session = Browsing(browser, app)
    try:
        ids = []
        for tag in ("ria", "rob", "rut"):
            page = session.page()
            sign_up(page, _email(tag), "borrower", tag.title())
            ids.append(request_loan(page, None))
        yield ids
    finally:
        session.close()


@pytest.fixture(scope="module")
def borrower_with_a_loan(browser: Any, app: RunningApp) -> Iterator[tuple[Any, int]]:
    session = Browsing(browser, app)
    try:
        borrower, loan_id = active_loan(session, app)
        yield borrower.context.storage_state(), loan_id
    finally:
        session.close()


def _sign_in(task: Task, email: str) -> None:
    task.goto("/signin")
    task.page.get_by_label("Email").fill(email)
    task.page.get_by_label("Password").fill(PASSWORD)
    task.click(task.page.get_by_role("button", name="Sign in"))
    expect(task.page).to_have_url(re.compile(r"/dashboard$"))


# --- 1. a visitor finds an open request and understands its risk --------------------------------------------


@pytest.mark.parametrize("width", list(WIDTHS))
def test_visitor_finds_a_request_and_understands_its_risk(
        browsing: Browsing, open_requests: list[int], borrower_with_a_loan: tuple[Any, int], width: str) -> None:
    # (borrower_with_a_loan: made first, funded by hand before any lender here turns auto-invest on)
    task = _task(browsing, "visitor", width)
    task.goto("/")
    first = task.page.locator(".loan-cards .loan-card a").first
    task.first_screen(task.page.get_by_role("link", name="Start lending").first, "Start lending")
    task.shot("1-home")
    task.click(first)
    expect(task.page).to_have_url(re.compile(r"/loans/\d+$"))
    task.first_screen(task.page.locator(".main-action").first, "the way to fund it (sign up)")
    task.shot("2-request")
    risk = task.page.locator("section.risk")
    expect(risk).to_contain_text("in 100 loans like this one are expected not to be repaid in full")
    expect(risk).to_contain_text("Expected loss: about")
    expect(risk.get_by_text("How this is computed")).to_be_visible()
    expect(task.page.locator("body")).not_to_contain_text("Sign in to see this page")
    task.done()
    assert (task.loads, task.clicks) == (2, 1)
    no_script_errors(browsing)


# --- 2. a new lender deposits, funds three notes and sets auto-invest -------------------------------------


@pytest.mark.parametrize("width", list(WIDTHS))
def test_new_lender_deposits_funds_three_notes_and_sets_autoinvest(
        browsing: Browsing, open_requests: list[int], width: str) -> None:
    task = _task(browsing, "lender", width)
    page = task.page
    task.goto("/")
    task.click(page.get_by_role("link", name="Start lending").first)
    expect(page.get_by_label("lend", exact=True)).to_be_checked()
    page.get_by_label("Email").fill(_email(f"new-{width}"))
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Display name").fill("Nia")
    task.click(page.get_by_role("button", name="Sign up"))
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    deposit = page.locator(".lead").get_by_role("link", name="Deposit")
    task.first_screen(deposit, "Deposit on the new lender's dashboard")
    task.shot("1-dashboard")
    task.click(deposit)
    page.get_by_label("Amount (sat)").fill("50000")
    task.click(page.get_by_role("button", name="Create invoice"))
    expect(page).to_have_url(re.compile(r"/deposit/\d+$"))
    task.first_screen(page.locator("a.qr"), "the deposit invoice's QR")
    task.shot("2-invoice")
    task.click(page.get_by_role("button", name="Pay with the demo wallet"))
    expect(page.locator("#deposit-status .success")).to_contain_text("Paid.")
    expect(page.locator("a.qr")).to_have_count(0)  # the invoice gave way to what arrived
    expect(page.locator("#balance-available")).to_have_text("50,000 sat")
    task.shot("3-paid")
    task.click(page.locator("#deposit-status").get_by_role("link", name="Fund open requests"))
    expect(page).to_have_url(re.compile(r"/loans/market"))
    for index in range(3):
        row = page.locator("table.market tbody tr").nth(index)
        if index == 0:
            task.first_screen(row.get_by_role("button", name="Fund"), "the first request's Fund button")
            task.shot("4-market")
        row.get_by_label("Amount in sat").fill(str(NOTE_SAT))
        task.click(row.get_by_role("button", name="Fund"))
        expect(page.get_by_role("status").filter(has_text="Your note is pledged")).to_be_visible()
        expect(page).to_have_url(re.compile(r"/loans/market\?pledged=\d+$"))  # back on the list for the next
    task.shot("5-third-note")
    task.nav("Auto-invest")
    page.get_by_label("Auto-invest is on").check()
    task.clicks += 1
    page.get_by_label("Budget (sat)").fill("20000")
    task.click(page.get_by_role("button", name="Save rules"))
    expect(page.get_by_role("status")).to_contain_text("Saved")
    task.shot("6-autoinvest")
    task.done()  # the task is done; what follows checks it (the dashboard shows the notes and the rules)
    task.nav("Dashboard")
    expect(page.locator("#balance-reserved")).to_have_text(f"{3 * NOTE_SAT:,} sat")
    expect(page.locator("#autoinvest-summary")).to_contain_text("On, with a budget of 20,000 sat")
    task.shot("7-dashboard")
    no_script_errors(browsing)


# --- 3. a borrower with an installment due pays it from the dashboard -------------------------------------


class Wire:
    """Bytes both ways (request and response headers, bodies) per request, from Chrome's own network events."""

    def __init__(self, page: Any) -> None:
        self.cdp = page.context.new_cdp_session(page)
        self.urls: dict[str, str] = {}
        self.bytes: dict[str, int] = {}
        self.cdp.on("Network.requestWillBeSent", self._request)
        self.cdp.on("Network.requestWillBeSentExtraInfo", self._sent_headers)
        self.cdp.on("Network.responseReceivedExtraInfo", self._received_headers)
        self.cdp.on("Network.dataReceived", self._data)
        self.cdp.send("Network.enable")

    def _add(self, request_id: str, size: int) -> None:
        self.bytes[request_id] = self.bytes.get(request_id, 0) + size

    def _request(self, event: dict[str, Any]) -> None:
        self.urls[event["requestId"]] = event["request"]["url"]

    def _sent_headers(self, event: dict[str, Any]) -> None:
        headers = event.get("headers", {})
        # The request line and each "name: value\r\n" as sent (HTTP/1.1 over loopback).
        self._add(event["requestId"], 64 + sum(len(k) + len(str(v)) + 4 for k, v in headers.items()))

    def _received_headers(self, event: dict[str, Any]) -> None:
        self._add(event["requestId"], len(event.get("headersText", "")))

    def _data(self, event: dict[str, Any]) -> None:
        self._add(event["requestId"], int(event.get("encodedDataLength", 0)))

    def total(self) -> int:
        return sum(self.bytes.values())

    def of(self, fragment: str) -> int:
        return sum(size for key, size in self.bytes.items() if fragment in self.urls.get(key, ""))

    def requests(self) -> int:
        return len(self.urls)


def idle_traffic(wire: Wire) -> dict[str, float]:
    """What the waiting invoice page costs a minute: the quiet spell's bytes, measured over IDLE_WINDOW_S, plus
    the event stream's opening (headers) spread over the stream's life before the browser reconnects."""
    opening = wire.of("/events")
    before, asked = wire.total(), wire.requests()
    time.sleep(IDLE_WINDOW_S)
    idle = wire.total() - before
    per_minute = idle * 60 / IDLE_WINDOW_S + opening * 60 / live.LIFETIME_S
    return {"stream_opening_bytes": opening, "idle_bytes": idle, "idle_window_s": IDLE_WINDOW_S,
            "requests_while_idle": wire.requests() - asked, "bytes_per_minute": round(per_minute, 1)}


@pytest.mark.parametrize("width", list(WIDTHS))
def test_borrower_pays_a_due_installment_from_the_dashboard(
        browsing: Browsing, borrower_with_a_loan: tuple[Any, int], width: str) -> None:
    state, loan_id = borrower_with_a_loan
    task = _task(browsing, "borrower", width, storage_state=state)
    page = task.page
    wire = Wire(page) if width == "desktop" else None
    task.goto("/dashboard")
    pay = page.locator(".next-due").get_by_role("button", name=re.compile(r"^Pay [\d,]+ sat$"))
    task.first_screen(pay, "Pay on the borrower's dashboard")
    shown = page.locator("#next-due-amount").inner_text()
    task.shot("1-dashboard")
    task.click(pay)
    expect(page).to_have_url(re.compile(rf"/loans/{loan_id}/pay/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Pay {shown}")
    task.first_screen(page.locator("a.qr"), "the invoice's QR")
    task.shot("2-invoice")
    traffic = idle_traffic(wire) if wire is not None else None
    if traffic is not None:
        assert traffic["bytes_per_minute"] <= IDLE_BYTES_PER_MINUTE_MAX, traffic
    task.click(page.get_by_role("button", name="Pay with the demo wallet"))  # stands for the borrower's wallet
    expect(page.locator("#pay-status")).to_contain_text("Payment received", timeout=10_000)
    expect(page.locator("a.qr")).to_have_count(0)
    expect(page.locator("#bolt11")).to_have_count(0)
    expect(page.get_by_role("heading", name="Receipt")).to_be_visible()
    task.shot("3-receipt")
    task.done(**({"idle_traffic": traffic} if traffic else {}))
    assert (task.loads, task.clicks) == (2, 2)
    no_script_errors(browsing)


# --- 4. the operator checks inbound liquidity against the repayments due ----------------------------------


@pytest.mark.parametrize("width", list(WIDTHS))
def test_operator_checks_inbound_liquidity_covers_repayments_due(
        browsing: Browsing, app: RunningApp, width: str) -> None:
    email = _email(f"ops-{width}")
    app.microlend("operator", "create", "--email", email, "--name", "Ops", stdin=PASSWORD + "\n")
    task = _task(browsing, "operator", width)
    _sign_in(task, email)
    task.nav("Operator")
    verdict = task.page.locator("#liquidity-verdict")
    task.first_screen(verdict, "the liquidity verdict")
    expect(verdict).to_contain_text(re.compile(r"Inbound liquidity (covers|does not cover) the repayments due"))
    task.shot("1-operator")
    task.done()
    no_script_errors(browsing)


def test_task_table_is_written() -> None:
    """Runs last in this module: the table holds every task at both widths."""
    table = (TASKS_DIR / "tasks.md").read_text()
    for name in ("visitor", "lender", "borrower", "operator"):
        assert table.count(f"| {name} |") == 2, table
    traffic = RESULTS["borrower"]["desktop"]["idle_traffic"]
    assert traffic["bytes_per_minute"] <= IDLE_BYTES_PER_MINUTE_MAX
    print("\n" + table + f"\ninvoice page idle: {traffic}")
