"""A lender, a borrower and the node operator use the real app in Chromium, clicking and typing.

The app is `microlend run --no-demo` in a subprocess with its own dev node
(see conftest). Only the people's own wallet (`microlend wallet ...`, the dev
node's wallet node) and the operator's shell (`microlend operator create`)
act outside the browser, as they would in life.

"Without a reload" is checked with a marker set on `window` before the action:
a navigation or reload would drop it, and no main-frame navigation may be seen.
Screenshots (full page) go to test-artifacts/browser/; the phone checks open
the same page in a 360-px-wide context and assert there is no horizontal scroll.
"""
from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import Browsing, RunningApp

PASSWORD = "correct horse battery staple"
LOAN_SAT = 20_000
NOTES_SAT = (12_000, 8_000)
DEPOSIT_SAT = 50_000

expect.set_options(timeout=10_000)


def _email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(4)}@example.org"


def shot(page: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


class NoReload:
    """Fails if the page navigates (reload, redirect, form post) after it is made."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.token = secrets.token_hex(8)
        self.navigations: list[str] = []
        page.evaluate("token => { window.__noReload = token; }", self.token)
        page.on("framenavigated", self._seen)

    def _seen(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.navigations.append(frame.url)

    def navigated(self) -> bool:
        return bool(self.navigations) or self.page.evaluate("() => window.__noReload || null") != self.token

    def check(self) -> None:
        assert not self.navigated(), f"the page navigated (reloaded) instead of updating in place: {self.navigations}"
        self.page.remove_listener("framenavigated", self._seen)


# Every element's right edge, unless a horizontal scroller (a wide table's .table-scroll) clips it. An
# absolutely placed element is clipped only by scrollers at or above its containing block (the nearest
# positioned ancestor): one inside a static scroller escapes it and widens the page.
_STICKING_OUT = """() => {
  const width = document.documentElement.clientWidth;
  const placed = (style) => ["absolute", "fixed"].includes(style.position);
  const inScroller = (element) => {
    let escaping = placed(getComputedStyle(element));
    for (let up = element.parentElement; up && up !== document.body; up = up.parentElement) {
      const style = getComputedStyle(up);
      if (escaping && style.position === "static") continue;
      if (["auto", "scroll", "hidden"].includes(style.overflowX)) return true;
      escaping = placed(style);
    }
    return false;
  };
  const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
    (e.classList.length ? "." + [...e.classList].join(".") : "");
  const out = [];
  for (const element of document.body.querySelectorAll("*")) {
    const box = element.getBoundingClientRect();
    if (box.width > 0 && box.right > width + 0.5 && !inScroller(element)) {
      out.push(`${name(element)} reaches ${Math.round(box.right)} px`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, out: out.slice(0, 8)};
}"""


def assert_fits_phone(page: Any, what: str) -> None:
    """No horizontal scroll on a 360-px screen, and nothing sticking out past its edge."""
    found = page.evaluate(_STICKING_OUT)
    assert found["scrollWidth"] <= 360, f"{what} scrolls sideways on a 360-px phone: {found}"
    assert not found["out"], f"{what}: parts stick out past a 360-px screen: {found['out']}"


def fits_phone(browsing: Browsing, context: Any, path: str, artifacts: Path, name: str,
               prepare: Callable[[Any], None] | None = None) -> None:
    """Open `path` as the same person on a 360-px-wide phone: no horizontal scroll; a full-page screenshot."""
    phone = browsing.context(phone=True, storage_state=context.storage_state()).new_page()
    try:
        phone.goto(path)
        phone.wait_for_load_state("load")
        if prepare is not None:
            prepare(phone)
        shot(phone, artifacts, f"phone-{name}")
        assert_fits_phone(phone, f"{path} (phone-{name}.png)")
    finally:
        phone.context.close()
        browsing.contexts.remove(phone.context)


def card_fits_and_prints(browsing: Browsing, context: Any, loan_id: int, artifacts: Path) -> None:
    """The repayment card on a 360-px phone, and as printed: only the card, nothing wider than the page."""
    path = f"/loans/{loan_id}/card"
    fits_phone(browsing, context, path, artifacts, "card")
    page = browsing.context(phone=True, storage_state=context.storage_state()).new_page()
    try:
        page.goto(path)
        page.emulate_media(media="print")
        expect(page.locator(".repay-card")).to_be_visible()
        expect(page.locator(".repay-card-qr svg")).to_be_visible()
        expect(page.locator(".site-header")).to_be_hidden()
        expect(page.locator(".no-print")).to_be_hidden()
        shot(page, artifacts, "card-print")
        assert_fits_phone(page, f"{path} printed (card-print.png)")
        # Black on white whatever the screen colours were.
        colour = page.evaluate("() => getComputedStyle(document.querySelector('.repay-card')).color")
        assert colour == "rgb(0, 0, 0)", colour
    finally:
        page.context.close()
        browsing.contexts.remove(page.context)


def fill_request_terms(page: Any) -> None:
    page.get_by_label("Amount (sat)").press_sequentially(str(LOAN_SAT))
    page.get_by_label("Yearly interest rate (%)").press_sequentially("24")
    page.get_by_label("Number of installments").press_sequentially("4")
    expect(page.locator("#loan-preview table")).to_be_visible(timeout=5000)


def no_script_errors(browsing: Browsing) -> None:
    assert browsing.errors == [], "\n".join(browsing.errors)


# --- what a person does -----------------------------------------------------------------------------------


def sign_up(page: Any, email: str, role: str, name: str) -> None:
    """From the home page: the header's "Sign up", the form, and on to the dashboard."""
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/signup$"))
    page.get_by_label("lend" if role == "lender" else "borrow", exact=True).check()
    page.get_by_label("Email").press_sequentially(email)
    page.get_by_label("Password").press_sequentially(PASSWORD)
    page.get_by_label("Display name").press_sequentially(name)
    page.get_by_role("button", name="Sign up").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))
    expect(page.get_by_role("heading", name=f"Hello, {name}")).to_be_visible()


def sign_in(page: Any, email: str) -> None:
    page.goto("/")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").press_sequentially(email)
    page.get_by_label("Password").press_sequentially(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def nav(page: Any, link: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name=link, exact=True).click()


def ask_for_deposit_invoice(page: Any, amount_sat: int) -> None:
    nav(page, "Deposit")
    expect(page).to_have_url(re.compile(r"/deposit$"))
    page.get_by_label("Amount (sat)").press_sequentially(str(amount_sat))
    page.get_by_role("button", name="Create invoice").click()
    expect(page).to_have_url(re.compile(r"/deposit/\d+$"))
    expect(page.locator("#deposit-status")).to_contain_text("Waiting for the payment")


def pay_deposit_with_demo_wallet(page: Any) -> None:
    """Click the demo wallet; the polled status fragment turns to "Paid" in place."""
    watch = NoReload(page)
    page.get_by_role("button", name="Pay with the demo wallet").click()
    page.wait_for_selector("text=Paid", timeout=5000)
    expect(page.locator("#deposit-status .success")).to_contain_text("Paid.")
    watch.check()


def lender_with_money(browsing: Browsing, name: str) -> tuple[Any, str]:
    page = browsing.page()
    email = _email(name.lower())
    sign_up(page, email, "lender", name)
    ask_for_deposit_invoice(page, DEPOSIT_SAT)
    pay_deposit_with_demo_wallet(page)
    return page, email


def request_loan(page: Any, artifacts: Path | None) -> int:
    """The borrower fills /loans/new; the live preview shows the APR as they type (no reload)."""
    nav(page, "New request")
    expect(page).to_have_url(re.compile(r"/loans/new$"))
    watch = NoReload(page)
    preview = page.locator("#loan-preview")
    expect(preview).to_contain_text("Fill in the amount")
    page.get_by_label("Amount (sat)").press_sequentially(str(LOAN_SAT), delay=30)
    page.get_by_label("What is it for?").select_option("transport")
    page.get_by_label("Your story").press_sequentially("A bicycle cart to carry vegetables to the market.")
    page.get_by_label("Yearly interest rate (%)").press_sequentially("24", delay=30)
    page.get_by_label("Number of installments").press_sequentially("4", delay=30)
    expect(preview.get_by_text("APR", exact=True)).to_be_visible(timeout=5000)
    expect(preview).to_contain_text("Total to repay")
    expect(preview.locator("table")).to_be_visible()
    watch.check()
    if artifacts is not None:
        shot(page, artifacts, "b1-request-with-live-preview")
    page.get_by_role("button", name="Ask for this loan").click()
    expect(page).to_have_url(re.compile(r"/loans/\d+$"))
    expect(page.locator(".tag-status-funding")).to_have_text("open for funding")
    return int(page.url.rsplit("/", 1)[1])


def fund_note(page: Any, loan_id: int, amount_sat: int) -> None:
    """From the list of open requests, open the loan and pledge a note."""
    nav(page, "Loans")  # the list of open requests (/loans, or the lender's market view)
    page.locator(f'main a[href="/loans/{loan_id}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/loans/{loan_id}$"))
    page.get_by_label("Fund a note (sat)").press_sequentially(str(amount_sat))
    page.get_by_role("button", name="Pledge", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="Your note is pledged")).to_be_visible()


def receive_loan(page: Any, app: RunningApp, loan_id: int) -> None:
    """The borrower pastes an invoice from their own wallet for exactly the loan amount."""
    page.get_by_role("navigation", name="Main").get_by_role("link", name="My loans").click()
    page.locator(f'a[href="/loans/{loan_id}"]').first.click()
    expect(page.locator(".tag-status-funded")).to_have_text("funded, waiting for disbursement")
    expect(page.get_by_role("heading", name="Receive the money")).to_be_visible()
    bolt11 = app.wallet_invoice(LOAN_SAT)
    page.get_by_label(re.compile(r"Lightning invoice \(BOLT11\) for")).fill(bolt11)  # pasted
    page.get_by_role("button", name="Send me the loan").click()
    expect(page.get_by_role("status").filter(has_text="Paid out.")).to_be_visible(timeout=15_000)
    expect(page.locator(".tag-status-active")).to_have_text("active")


def get_invoice_for_next_due(page: Any, loan_id: int) -> None:
    page.goto(f"/loans/{loan_id}")
    expect(page.get_by_role("heading", name="Next payment")).to_be_visible()
    page.locator(".next-due").get_by_role("button", name=re.compile(r"^Pay [\d,]+ sat$")).click()
    expect(page).to_have_url(re.compile(rf"/loans/{loan_id}/pay/\d+$"))
    expect(page.locator("#pay-status")).to_contain_text("Waiting for the payment")
    expect(page.locator("#pay-status a.qr")).to_be_visible()


def active_loan(browsing: Browsing, app: RunningApp, artifacts: Path | None = None) -> tuple[Any, int]:
    """A borrower (returned, on the loan page) whose 20,000 sat request two notes funded and who received it."""
    lender, _ = lender_with_money(browsing, "Lorna")
    borrower = browsing.page()
    sign_up(borrower, _email("bea"), "borrower", "Bea")
    if artifacts is not None:
        fits_phone(browsing, borrower.context, "/loans/new", artifacts, "new-request-preview", fill_request_terms)
    loan_id = request_loan(borrower, artifacts)
    if artifacts is not None:
        shot(borrower, artifacts, "b2-request-open-for-funding")
    for amount in NOTES_SAT:
        fund_note(lender, loan_id, amount)
    expect(lender.locator(".tag-status-funded")).to_have_text("funded, waiting for disbursement")
    expect(lender.locator("table.funders")).to_contain_text("(you)")
    expect(lender.locator("section.funding .table-scroll table tbody tr")).to_have_count(len(NOTES_SAT))
    if artifacts is not None:
        shot(lender, artifacts, "b3-lender-funded-two-notes")
    receive_loan(borrower, app, loan_id)
    return borrower, loan_id


# --- the walkthroughs -------------------------------------------------------------------------------------


def test_home_and_sign_up_fit_a_phone(phone: Any, artifacts: Path) -> None:
    for path, name in (("/", "home"), ("/signup", "signup"), ("/signin", "signin")):
        phone.goto(path)
        shot(phone, artifacts, f"phone-{name}")
        assert_fits_phone(phone, f"{path} (phone-{name}.png)")
    expect(phone.get_by_role("button", name="Sign in")).to_be_visible()


def test_lender_signs_up_and_deposits_with_the_demo_wallet(
        browsing: Browsing, app: RunningApp, artifacts: Path) -> None:
    page = browsing.page()
    page.goto("/")
    shot(page, artifacts, "a1-home")
    sign_up(page, _email("lena"), "lender", "Lena")
    expect(page.locator("#balance-available")).to_have_text("0 sat")
    shot(page, artifacts, "a2-dashboard-new-lender")

    ask_for_deposit_invoice(page, DEPOSIT_SAT)
    expect(page.get_by_role("heading", name="Pay 50,000 sat")).to_be_visible()
    expect(page.locator("a.qr svg")).to_be_visible()
    bolt11 = page.locator("#bolt11").input_value()
    assert bolt11.startswith("lnbcrt"), bolt11
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_role("button", name="Copied")).to_be_visible()
    assert page.evaluate("() => navigator.clipboard.readText()") == bolt11
    shot(page, artifacts, "a3-deposit-invoice")
    fits_phone(browsing, page.context, page.url, artifacts, "deposit-invoice")

    pay_deposit_with_demo_wallet(page)
    expect(page.locator("#deposit-status #balance-available")).to_have_text("50,000 sat")
    expect(page.locator("a.qr")).to_have_count(0)  # the invoice gave way to what arrived, without a reload
    shot(page, artifacts, "a4-deposit-paid-in-place")

    page.get_by_role("link", name="Back to the dashboard").click()
    expect(page.locator("#balance-available")).to_have_text("50,000 sat")
    shot(page, artifacts, "a5-dashboard-50000-sat")
    fits_phone(browsing, page.context, "/dashboard", artifacts, "dashboard")
    no_script_errors(browsing)


def test_borrower_is_funded_by_two_notes_receives_the_loan_and_repays(
        browsing: Browsing, app: RunningApp, artifacts: Path) -> None:
    borrower, loan_id = active_loan(browsing, app, artifacts)
    expect(borrower.locator(".next-due .amount")).to_be_visible()
    shot(borrower, artifacts, "b4-loan-active")
    fits_phone(browsing, borrower.context, f"/loans/{loan_id}", artifacts, "loan")
    card_fits_and_prints(browsing, borrower.context, loan_id, artifacts)

    # Installment 1: the borrower copies the invoice into their own wallet app and pays there;
    # the pay page, left open, shows the confirmation by itself.
    get_invoice_for_next_due(borrower, loan_id)
    shot(borrower, artifacts, "b5-pay-page")
    fits_phone(browsing, borrower.context, borrower.url, artifacts, "pay")
    bolt11 = borrower.locator("#bolt11").input_value()
    watch = NoReload(borrower)
    borrower.get_by_role("button", name="Copy").click()
    expect(borrower.get_by_role("button", name="Copied")).to_be_visible()
    copied = borrower.evaluate("() => navigator.clipboard.readText()")
    assert copied == bolt11
    app.wallet_pay(copied)
    expect(borrower.locator("#pay-status")).to_contain_text("Payment received", timeout=10_000)
    watch.check()
    shot(borrower, artifacts, "b6-payment-received-in-place")

    # Installment 2: the demo wallet button on the pay page.
    get_invoice_for_next_due(borrower, loan_id)
    borrower.get_by_role("button", name="Pay with the demo wallet").click()
    expect(borrower.locator("#pay-status")).to_contain_text("Payment received", timeout=10_000)
    expect(borrower.locator("#pay-status")).to_contain_text("Principal")
    shot(borrower, artifacts, "b7-demo-wallet-payment-received")

    borrower.get_by_role("link", name="Back to the loan", exact=True).click()
    expect(borrower).to_have_url(re.compile(rf"/loans/{loan_id}$"))
    repayments = borrower.locator("section", has=borrower.get_by_role("heading", name="Repayments", exact=True))
    expect(repayments.locator("tbody tr")).to_have_count(2)
    shot(borrower, artifacts, "b8-loan-after-two-repayments")
    no_script_errors(browsing)


def test_pay_page_demo_wallet_button_confirms_without_a_reload(browsing: Browsing, app: RunningApp) -> None:
    borrower, loan_id = active_loan(browsing, app)
    get_invoice_for_next_due(borrower, loan_id)
    watch = NoReload(borrower)
    borrower.get_by_role("button", name="Pay with the demo wallet").click()
    expect(borrower.locator("#pay-status")).to_contain_text("Payment received", timeout=10_000)
    watch.check()


def test_operator_signs_in_and_sees_the_channel(browsing: Browsing, app: RunningApp, artifacts: Path) -> None:
    email = _email("olga")
    created = app.microlend("operator", "create", "--email", email, "--name", "Olga", stdin=PASSWORD + "\n")
    assert "operator account" in created
    page = browsing.page()
    sign_in(page, email)
    nav(page, "Operator")
    expect(page).to_have_url(re.compile(r"/operator$"))
    main = page.locator("main")
    expect(main.get_by_text("regtest", exact=True)).to_be_visible()
    expect(main.get_by_role("cell", name="CHANNELD_NORMAL", exact=True).first).to_be_visible()
    shot(page, artifacts, "c1-operator-node-and-channel")
    fits_phone(browsing, page.context, "/operator", artifacts, "operator")
    no_script_errors(browsing)
