"""Crash trials on every money path: a driver that kills a real `microlend serve` at named points, and a checker.

Used by tests/crash/test_crash_trials.py (each named point once) and bench/crash_trials.py (hundreds of trials).
The app, the dev node (its own process: it outlives the app) and the database (a SQLite file or PostgreSQL) are
real processes. A trial:

1. prepares what the point needs through the running app's HTTP API (funds, a funded or an active loan, ...),
   and leaves a deposit and a repayment invoice unpaid;
2. restarts the app with `MICROLEND_FAULT_INJECTION=<point>` and drives the action that reaches the point (the
   process SIGKILLs itself there), or, for a random moment, drives a random action and SIGKILLs the app after a
   random delay;
3. while the app is down the wallet pays the outstanding invoices;
4. restarts the app normally and times the catch-up (restart -> every invoice the node has paid is credited);
5. waits for the app to settle (no open outgoing payment, no unfinished auto-invest run) and runs the checker.

The checker (`check`) reads the database and the node and proves: every paid invoice credited exactly once;
every share-out complete or absent; no withdrawal or disbursement paid twice; every hold settled, released or
honestly pending (the node still has the payment in flight); `microlend ledger verify` clean; and what the
ledger says the node holds equal to what entered minus what left over Lightning, to the msat.
"""
from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from pyln.client import LightningRpc
from sqlalchemy import Connection, func, select

from marketplace.db import ledger
from marketplace.db.engine import Database
from marketplace.db.verify import verify_ledger
from marketplace.db.tables import (
    accounts,
    autoinvest_queue,
    autoinvest_runs,
    invoices,
    journal_entries,
    loans,
    notes,
    outgoing_payments,
    repayments,
)
from marketplace.domain.journal import AccountKind
from marketplace.services.accounts import create_user
from marketplace.services.api_tokens import create_token
from marketplace.settings import Settings
from tests.crash.forked import ForkedApp, Launcher
from tests.crash.support import REPO_ROOT, AppProcess

# Every named point on a money path (marketplace/payments/faults.py `crash_at`).
NAMED_POINTS = (
    "deposit:before-credit",  # the node has the payment; the credit transaction has written nothing yet
    "deposit:mid-credit",  # the deposit's journal entry is posted, the invoice not yet marked paid
    "repayment:before-credit",
    "repayment:mid-credit",  # in the middle of sharing a repayment out: entry posted, notes and rows not yet
    "listener:after-commit",  # the credit is committed, nothing after it ran
    "withdrawal:after-hold",  # the hold is committed, the node never asked
    "withdrawal:after-pay",  # the node paid, the outcome not recorded
    "disbursement:after-hold",
    "disbursement:after-pay",
    "autoinvest:after-plan",  # a run's orders are stored, none bought
    "autoinvest:mid-run",  # a note is pledged, its order not yet marked bought
)
RANDOM = "random"

PASSWORD = "correct horse battery"
APP_ENV = {
    "MICROLEND_RECONCILE_EVERY_S": "1", "MICROLEND_RESUBMIT_AFTER_S": "1", "MICROLEND_PAY_RETRY_FOR_S": "5",
    "MICROLEND_PAY_QUIET_MARGIN_S": "2", "MICROLEND_AUTOINVEST_EVERY_S": "1", "MICROLEND_LEADER_POLL_S": "0.2",
    "MICROLEND_INVOICE_LIMIT_COUNT": "100000", "MICROLEND_INVOICE_UNPAID_PER_ADDRESS": "100000",
}
LOAN_SAT = 40_000
NOTE_SAT = 10_000
REPAY_SAT = 1_500
DEPOSIT_SAT = 200_000


class Node(Protocol):
    """The dev node process (tests.fixtures.devnode.DevNode fits)."""

    def rpc_path(self, node: str = "marketplace") -> str: ...


# --- the checker --------------------------------------------------------------------------------------------------


@dataclass
class CheckReport:
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # stuck holds, share-outs, ledger, balances

    @property
    def violations(self) -> list[str]:
        return [f"lost: {t}" for t in self.lost] + [f"doubled: {t}" for t in self.doubled] + self.other

    @property
    def ok(self) -> bool:
        return not self.violations


def _count(conn: Connection, table: Any, *where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def check(database: Database, node: Node, database_url: str, *, cli: bool = True) -> CheckReport:
    """Everything the trials promise, from the database and the node (call it once the app has settled).

    `cli`: verify the ledger with `microlend ledger verify` (a process); else with the same function in-process.
    """
    report = CheckReport()
    mp = LightningRpc(node.rpc_path("marketplace"))
    wallet = LightningRpc(node.rpc_path("wallet"))
    node_invoices = {i["payment_hash"]: i for i in mp.call("listinvoices", {})["invoices"]}
    node_pays: dict[str, list[dict[str, Any]]] = {}
    for pay in mp.call("listpays", {})["pays"]:
        node_pays.setdefault(pay["payment_hash"], []).append(pay)
    wallet_paid = {i["payment_hash"] for i in wallet.call("listinvoices", {})["invoices"] if i["status"] == "paid"}

    def read(conn: Connection) -> None:
        # 1. Every invoice the node was paid for is credited exactly once (and nothing else is).
        for row in conn.execute(select(invoices.c.payment_hash, invoices.c.purpose, invoices.c.status,
                                       invoices.c.credit_entry_id).where(invoices.c.payment_hash.is_not(None))):
            at_node = node_invoices.get(row.payment_hash)
            paid_at_node = at_node is not None and at_node["status"] == "paid"
            if row.purpose == "deposit":
                credits = _count(conn, journal_entries, journal_entries.c.idempotency_key == f"invoice:{row.payment_hash}")
            else:
                credits = _count(conn, repayments, repayments.c.payment_hash == row.payment_hash)
            if paid_at_node and (row.status != "paid" or credits == 0):
                report.lost.append(f"{row.purpose} {row.payment_hash[:12]} paid at the node, not credited")
            if credits > 1:
                report.doubled.append(f"{row.purpose} {row.payment_hash[:12]} credited {credits} times")
            if not paid_at_node and (row.status == "paid" or credits):
                report.doubled.append(f"{row.purpose} {row.payment_hash[:12]} credited but never paid at the node")

        # 2. Every share-out complete or absent: the notes hold what the repayments shared out.
        for loan in conn.execute(select(loans.c.id, loans.c.shared_cash_msat, loans.c.shared_principal_msat)):
            received, repaid = conn.execute(
                select(func.coalesce(func.sum(notes.c.received_msat), 0),
                       func.coalesce(func.sum(notes.c.principal_repaid_msat), 0))
                .where(notes.c.loan_id == loan.id)).one()
            applied, fee, principal, count = conn.execute(
                select(func.coalesce(func.sum(repayments.c.applied_msat), 0),
                       func.coalesce(func.sum(repayments.c.service_fee_msat), 0),
                       func.coalesce(func.sum(repayments.c.principal_msat), 0), func.count())
                .where(repayments.c.loan_id == loan.id)).one()
            if int(received) != int(loan.shared_cash_msat) or int(repaid) != int(loan.shared_principal_msat):
                report.other.append(f"loan {loan.id}: notes received {received}/{repaid} msat but the loan shared "
                                    f"{loan.shared_cash_msat}/{loan.shared_principal_msat}")
            if int(repaid) != int(principal):
                report.other.append(f"loan {loan.id}: notes repaid {repaid} msat of principal, the {count} "
                                    f"repayment(s) {principal}")
            if int(received) > int(applied) - int(fee):
                report.doubled.append(f"loan {loan.id}: notes received {received} msat, more than the "
                                      f"{int(applied) - int(fee)} msat the repayments brought them")

        # 3. Outgoing payments: never paid twice; the ledger agrees with the node; every hold accounted for.
        for row in conn.execute(select(outgoing_payments)):
            h = row.payment_hash
            complete = [p for p in node_pays.get(h, []) if p["status"] == "complete"]
            in_flight = [p for p in node_pays.get(h, []) if p["status"] == "pending"]
            settles = _count(conn, journal_entries, journal_entries.c.idempotency_key == f"settle:{h}")
            name = f"{row.purpose} {row.id} ({h[:12]})"
            if len(complete) > 1:
                report.doubled.append(f"{name} paid {len(complete)} times by the node")
            if settles > 1:
                report.doubled.append(f"{name} settled {settles} times in the ledger")
            if row.status == "succeeded" and not complete:
                report.lost.append(f"{name} recorded paid, but the node never paid it")
            if row.status == "succeeded" and h not in wallet_paid:
                report.lost.append(f"{name} recorded paid, but the payee's invoice is unpaid")
            if row.status == "failed" and complete:
                report.doubled.append(f"{name} released back to the user, yet the node paid it")
            if row.status in ("pending", "unknown") and not in_flight:
                report.other.append(f"{name} held ({row.status}) though the node has nothing in flight: stuck")
        held_out = int(conn.execute(
            select(func.coalesce(func.sum(outgoing_payments.c.amount_msat + outgoing_payments.c.fee_reserve_msat), 0))
            .where(outgoing_payments.c.purpose == "withdrawal",
                   outgoing_payments.c.status.in_(("pending", "unknown")))).scalar_one())
        pending_out = int(conn.execute(select(func.coalesce(func.sum(accounts.c.balance_msat), 0))
                                       .where(accounts.c.kind == AccountKind.USER_PENDING_OUT.value)).scalar_one())
        if pending_out != held_out:
            report.other.append(f"withdrawal holds in the ledger {pending_out} msat, open withdrawals {held_out}")

        # 4. What the node holds for the marketplace, by the ledger, equals what came in less what went out.
        entered = sum(int(i.get("amount_received_msat") or 0) for i in node_invoices.values() if i["status"] == "paid")
        left = sum(int(p["amount_sent_msat"]) for ps in node_pays.values() for p in ps if p["status"] == "complete")
        node_asset = ledger.account_id(conn, "system:node_asset")
        asset = int(conn.execute(select(accounts.c.balance_msat).where(accounts.c.id == node_asset)).scalar_one())
        others = 0  # every other account, as a claim on the node's money (credit-normal +, debit-normal -)
        for acct in conn.execute(select(accounts.c.id, accounts.c.normal_side, accounts.c.balance_msat)):
            if int(acct.id) != node_asset:
                others += int(acct.balance_msat) * (1 if acct.normal_side == "credit" else -1)
        if asset != entered - left:
            report.other.append(f"the ledger says the node holds {asset} msat; {entered} came in and {left} left, "
                                f"so it holds {entered - left} (off by {asset - (entered - left)})")
        if others != asset:
            report.other.append(f"all balances together are {others} msat, the node's money {asset}")

    database.read(read)
    if not cli:
        verified_here = database.read(verify_ledger)
        if not verified_here.ok:
            report.other.append(verified_here.summary())
        return report
    report.other.extend(verify_with_cli(database_url))
    return report


def verify_with_cli(database_url: str) -> list[str]:
    """`microlend ledger verify` as an operator runs it: [] when clean, else what it said."""
    verified = subprocess.run([sys.executable, "-m", "marketplace.cli", "ledger", "verify",
                               "--database-url", database_url], cwd=REPO_ROOT, capture_output=True, text=True)
    if verified.returncode != 0 or "ledger OK" not in verified.stdout:
        return [f"microlend ledger verify: {(verified.stdout + verified.stderr).strip()[:500]}"]
    return []


# --- the driver ---------------------------------------------------------------------------------------------------


@dataclass
class TrialResult:
    point: str
    catch_up_s: float  # restart -> every invoice the node has paid is credited
    ready_s: float  # restart -> the app answers HTTP (the same restart)
    report: CheckReport
    reached: bool  # the app died where it was meant to (always true for a random moment)


@dataclass
class Person:
    user_id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Trials:
    """One world (database, dev node, app) on which trials run one after another."""

    def __init__(self, root: Path, database_url: str, node: Node, seed: int = 12, *, cli_verify: bool = True,
                 launcher: Launcher | None = None) -> None:
        """`launcher`: start the app as children of a launcher that has imported it (tests/crash/forked.py),
        else as `python -m marketplace.cli serve` processes from scratch."""
        self.cli_verify = cli_verify  # `microlend ledger verify` as a process after every trial, else in-process
        self.root = root
        self.url = database_url
        self.node = node
        self.rng = random.Random(seed)
        self.settings = Settings(data_dir=root / "data", database_url=database_url, secret_key="crash-test-secret",
                                 argon2_time_cost=1, argon2_memory_kib=8192)
        self.database = Database(database_url)
        self.wallet = LightningRpc(node.rpc_path("wallet"))
        self.app: AppProcess | ForkedApp = (
            AppProcess(root, database_url, node.rpc_path("marketplace"), env=APP_ENV) if launcher is None
            else ForkedApp(launcher, root, database_url, node.rpc_path("marketplace"), env=APP_ENV))
        self.people = 0
        self.lenders = [self._person("lender") for _ in range(3)]
        self.investor = self._person("lender")  # auto-invests
        self.active: list[tuple[int, Person]] = []  # disbursed loans that still take repayments
        self.labels = 0
        self.fault_file = root / "fault-point"
        self.fault_file.write_text("")
        self.ready_s = 0.0  # the last start's time to answer HTTP: the floor under any catch-up

    # -- plumbing

    def _person(self, role: str) -> Person:
        self.people += 1
        user_id = create_user(self.database, self.settings, f"p{self.people}@example.org", PASSWORD, role)
        return Person(user_id, create_token(self.database, user_id, "crash").token)

    def _api(self, method: str, path: str, who: Person, body: dict[str, Any] | None = None,
             expect: int | None = None, timeout: float = 30) -> Any:
        answer = httpx.request(method, self.app.base_url + "/api/v1" + path, json=body, headers=who.headers,
                               timeout=timeout)
        if expect is not None and answer.status_code != expect:
            raise AssertionError(f"{method} {path}: {answer.status_code} {answer.text[:400]}\n{self.app.log()[-2000:]}")
        return answer.json() if answer.content else None

    def _wallet_invoice(self, amount_msat: int) -> str:
        self.labels += 1
        made = self.wallet.call("invoice", {"amount_msat": amount_msat, "label": f"out-{self.labels}-{time.time()}",
                                            "description": "crash trial", "expiry": 7 * 24 * 3600})
        return str(made["bolt11"])

    def _pay(self, bolt11: str) -> None:
        self.wallet.call("xpay", {"invstring": bolt11, "maxfee": 10_000})

    def _available(self, who: Person) -> int:
        return self.database.read(lambda c: ledger.user_balances(c, who.user_id))[AccountKind.USER_AVAILABLE]

    def start(self) -> float:
        began = time.monotonic()
        self.app.start(fault=f"file:{self.fault_file}")
        self.app.wait_ready()
        self.ready_s = time.monotonic() - began
        return began

    def stop(self) -> None:
        self.app.kill9() if self.app.alive() else None
        self.database.dispose()

    # -- building blocks through the app

    def deposit_invoice(self, who: Person, sat: int) -> str:
        return str(self._api("POST", "/deposits", who, {"amount_sat": sat}, expect=201)["bolt11"])

    def fund(self, who: Person, msat: int) -> None:
        if self._available(who) >= msat:
            return
        self._pay(self.deposit_invoice(who, DEPOSIT_SAT + msat // 1000))
        if not _until(lambda: self._available(who) >= msat, 30):
            raise AssertionError(f"a deposit was not credited in 30 s:\n{self.app.log()[-3000:]}")

    def request_loan(self) -> tuple[int, Person]:
        borrower = self._person("borrower")
        made = self._api("POST", "/loans", borrower, {
            "amount_sat": LOAN_SAT, "rate_bps": 1200, "count": 6, "frequency": "weekly", "purpose": "business",
            "story": "A stall at the market needs a second fridge for the summer."}, expect=201)
        return int(made["loan"]["id"]), borrower

    def funded_loan(self) -> tuple[int, Person]:
        """A loan request filled by several notes of several lenders (one lender holds two).

        Auto-invest may buy into it meanwhile: a pledge that finds the request full is refused (409), and the
        loop goes on until the request is funded.
        """
        loan_id, borrower = self.request_loan()
        for lender in (*self.lenders, *self.lenders):
            loan = self._api("GET", f"/loans/{loan_id}", borrower, expect=200)["loan"]
            if loan["status"] != "funding":
                break
            self.fund(lender, NOTE_SAT * 1000)
            room = (loan["amount_msat"] - loan["funded_msat"]) // 1000
            self._api("POST", f"/loans/{loan_id}/notes", lender, {"amount_sat": min(NOTE_SAT, room)})
        loan = self._api("GET", f"/loans/{loan_id}", borrower, expect=200)["loan"]
        assert loan["status"] == "funded", loan
        return loan_id, borrower

    def disburse(self, loan_id: int, borrower: Person, timeout: float = 30) -> Any:
        return self._api("POST", f"/loans/{loan_id}/disbursement", borrower,
                         {"bolt11": self._wallet_invoice(LOAN_SAT * 1000)}, timeout=timeout)

    def active_loan(self) -> tuple[int, Person]:
        if not self.active:
            loan_id, borrower = self.funded_loan()
            paid = self.disburse(loan_id, borrower)
            assert paid["status"] == "succeeded", paid
            self.active.append((loan_id, borrower))
        return self.active[-1]

    def repayment_invoice(self, sat: int = REPAY_SAT) -> str:
        """An invoice for part of an active loan (a new loan once the last one is nearly repaid)."""
        for _ in range(3):
            loan_id, borrower = self.active_loan()
            answer = httpx.post(f"{self.app.base_url}/api/v1/loans/{loan_id}/repayments", json={"amount_sat": sat},
                                headers=borrower.headers, timeout=30)
            if answer.status_code == 201:
                return str(answer.json()["bolt11"])
            self.active.remove((loan_id, borrower))  # repaid (409) or owing less than `sat` (400)
        raise AssertionError(f"no repayment invoice: {answer.status_code} {answer.text[:300]}")

    def set_autoinvest(self) -> None:
        self.fund(self.investor, 3 * NOTE_SAT * 1000)
        now = self._api("GET", "/autoinvest", self.investor, expect=200)
        self._api("PUT", "/autoinvest", self.investor, {
            "enabled": True, "budget_msat": now["available_msat"] + now["held_msat"], "note_msat": NOTE_SAT * 1000,
            "max_per_loan_msat": NOTE_SAT * 1000, "max_per_loan_bps": 10_000,
            "max_per_borrower_msat": NOTE_SAT * 1000, "max_expected_loss_bps": 10_000, "min_rate_bps": 0}, expect=200)

    # -- one trial

    def settled(self) -> bool:
        def read(conn: Connection) -> bool:
            return (_count(conn, outgoing_payments, outgoing_payments.c.status.in_(("pending", "unknown"))) == 0
                    and _count(conn, autoinvest_runs, autoinvest_runs.c.status == "buying") == 0
                    and _count(conn, autoinvest_queue, autoinvest_queue.c.run_id.is_(None)) == 0)
        return bool(self.database.read(read))

    def uncredited(self) -> set[str]:
        """Invoices the node has paid that the database has not credited yet (one look at the node)."""
        paid = {i["payment_hash"] for i in LightningRpc(self.node.rpc_path("marketplace")).call(
            "listinvoices", {})["invoices"] if i["status"] == "paid"}
        ours = self.database.read(lambda c: {r.payment_hash: r.status for r in conn_rows(c)})
        return {h for h in paid if h in ours and ours[h] != "paid"}

    def credited(self, hashes: set[str]) -> bool:
        """All of these invoices credited (a look at the database only: cheap enough to poll)."""
        if not hashes:
            return True
        return bool(self.database.read(lambda c: _count(c, invoices, invoices.c.payment_hash.in_(sorted(hashes)),
                                                        invoices.c.status == "paid") == len(hashes)))

    def _drive(self, point: str) -> Callable[[], None]:
        """The action that reaches `point`, prepared now (the app runs normally), run once the fault is armed."""
        family = point.split(":")[0]
        if family in ("deposit", "listener"):
            lender = self.rng.choice(self.lenders)
            return lambda: self._pay(self.deposit_invoice(lender, 5_000))
        if family == "repayment":
            return lambda: self._pay(self.repayment_invoice())
        if family == "withdrawal":
            lender = self.rng.choice(self.lenders)
            self.fund(lender, 60_000_000)
            bolt11 = self._wallet_invoice(self.rng.randrange(1_000, 30_000) * 1000)
            return lambda: self._quietly(lambda: self._api("POST", "/withdrawals", lender, {"bolt11": bolt11}))
        if family == "disbursement":
            loan_id, borrower = self.funded_loan()
            self.active.append((loan_id, borrower))
            return lambda: self._quietly(lambda: self.disburse(loan_id, borrower))
        if family == "autoinvest":
            self.set_autoinvest()
            return lambda: self._quietly(self.request_loan)
        # A random moment: any of the actions, the app killed from outside after a random delay.
        return self._drive(self.rng.choice(NAMED_POINTS))

    @staticmethod
    def _quietly(action: Callable[[], Any]) -> None:
        try:
            action()
        except httpx.HTTPError:
            pass  # the app died under the request: expected

    def arm(self, point: str) -> None:
        """The running app dies at `point` from now on (read by marketplace/payments/faults.py at each check)."""
        self.fault_file.write_text(point)

    def _kills_at(self, point: str) -> int:
        return self.app.log().count(f"fault injection: SIGKILL at {point}\n")

    def trial(self, point: str) -> TrialResult:
        if not self.app.alive():
            self.start()
        action = self._drive(point)
        # Left unpaid now, paid while the app is down.
        outstanding = [self.deposit_invoice(self.rng.choice(self.lenders), 2_000), self.repayment_invoice(500)]
        reached = True
        if point == RANDOM:
            worker = threading.Thread(target=self._quietly, args=(action,), daemon=True)
            worker.start()
            time.sleep(self.rng.uniform(0.0, 1.0))
            self.app.kill9()
            worker.join(30)
        else:
            before = self._kills_at(point)
            self.arm(point)
            self._quietly(action)  # the app may die before the action is done (a run left queued)
            try:
                self.app.wait_exit(20)
            except subprocess.TimeoutExpired:
                pass
            self.app.kill9()
            reached = self._kills_at(point) > before
        self.arm("")
        for bolt11 in outstanding:
            self._pay(bolt11)
        began = self.start()
        # Not reached in time is left to the checker, which names what is missing.
        waiting = self.uncredited()  # what the node was paid while the app was down (or dying)
        _until(lambda: self.credited(waiting), 60)
        catch_up = time.monotonic() - began
        _until(self.settled, 60)
        ready = self.ready_s
        return TrialResult(point, catch_up, ready, check(self.database, self.node, self.url, cli=self.cli_verify),
                           reached)


def _until(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def conn_rows(conn: Connection) -> list[Any]:
    return list(conn.execute(select(invoices.c.payment_hash, invoices.c.status)
                             .where(invoices.c.payment_hash.is_not(None))))


def schedule(trials: int) -> list[str]:
    """Named points round-robin, every third trial a random moment."""
    points: list[str] = []
    named = 0
    for i in range(trials):
        if i % 3 == 2:
            points.append(RANDOM)
        else:
            points.append(NAMED_POINTS[named % len(NAMED_POINTS)])
            named += 1
    return points
