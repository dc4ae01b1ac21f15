"""A person's notices as the dashboard shows them: each with the loan it is about, where to act, and
whether what it warned about is already done (then it resolves itself, whether or not it was read).

The notice's key says what it is about (`due:{loan}:{number}`, `late:{loan}:{number}`,
`lender-late:{loan}:{note}`, `funded:{loan}:{user}`, ...). Resolved:

* a due or late installment once it is settled, or the loan no longer takes repayments;
* "your loan is late" to a lender once the loan is no longer late;
* "fully funded, receive the money" to a borrower once the loan is paid out (or lapsed).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import re

from sqlalchemy import Connection, and_, or_, select

from marketplace.db.tables import installments, loans, outbox

SHOWN = 10
_PAY_KINDS = ("due", "late")
# The stored text names the loan's address for email readers; the page links it instead.
_ADDRESS = re.compile(r"\s*(?:Loan page|Pay from the loan's page): /loans/\d+\.?\s*$")


@dataclass(frozen=True)
class BoardNotice:
    id: int
    kind: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None
    loan_id: int | None
    resolved: bool

    @property
    def unread(self) -> bool:
        return self.read_at is None and not self.resolved

    @property
    def action(self) -> str:
        """'pay', 'receive' or 'open' (the loan's page) or '' (nothing to do)."""
        if self.loan_id is None or self.resolved:
            return "open" if self.loan_id is not None else ""
        if self.kind in _PAY_KINDS:
            return "pay"
        if self.kind == "funded" and self.body.startswith("Your request"):
            return "receive"
        return "open"


def _about(key: str) -> tuple[int | None, int | None]:
    """(loan id, installment number or note id) from a notice key."""
    parts = key.split(":")
    numbers = [int(p) if p.isdigit() else None for p in parts[1:3]]
    while len(numbers) < 2:
        numbers.append(None)
    return numbers[0], numbers[1]


def board(conn: Connection, user_id: int, limit: int = SHOWN) -> list[BoardNotice]:
    """The user's latest notices, newest first, the ones still to act on before the resolved ones."""
    rows = conn.execute(
        select(outbox.c.id, outbox.c.kind, outbox.c.dedupe_key, outbox.c.subject, outbox.c.body, outbox.c.created_at,
               outbox.c.read_at).where(outbox.c.user_id == user_id).order_by(outbox.c.id.desc()).limit(limit)).all()
    about = {int(r.id): _about(str(r.dedupe_key)) for r in rows}
    loan_ids = sorted({loan for loan, _ in about.values() if loan is not None})
    states = {int(r.id): (str(r.status), str(r.delinquency)) for r in conn.execute(
        select(loans.c.id, loans.c.status, loans.c.delinquency).where(loans.c.id.in_(loan_ids)))} if loan_ids else {}
    wanted = [(loan, number) for r in rows if str(r.kind) in _PAY_KINDS
              for loan, number in [about[int(r.id)]] if loan is not None and number is not None]
    settled: set[tuple[int, int]] = set()
    if wanted:
        settled = {(int(r.loan_id), int(r.number)) for r in conn.execute(
            select(installments.c.loan_id, installments.c.number).where(
                installments.c.settled_on.is_not(None),
                or_(*(and_(installments.c.loan_id == loan, installments.c.number == number)
                      for loan, number in wanted))))}
    shown = []
    for r in rows:
        kind = str(r.kind)
        loan, second = about[int(r.id)]
        status, delinquency = states.get(loan, ("", "")) if loan is not None else ("", "")
        if loan not in states:
            resolved = False  # about no loan we know: nothing to tell it by
        elif kind in _PAY_KINDS:
            resolved = (loan, second) in settled or status not in ("active", "written_off")
        elif kind == "lender-late":
            resolved = delinquency != "late"
        elif kind == "funded":
            resolved = status != "funded"
        else:
            resolved = False
        shown.append(BoardNotice(int(r.id), kind, str(r.subject), _ADDRESS.sub("", str(r.body)), r.created_at,
                                 r.read_at, loan,
                                 resolved))
    return sorted(shown, key=lambda n: (n.resolved, -n.id))
