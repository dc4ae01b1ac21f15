"""The auto-invest trigger queue: a row per reason to run the engine, written in the trigger's own transaction."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Connection, delete, insert, select

from marketplace.db.tables import autoinvest_queue, autoinvest_rules


def enqueue(conn: Connection, reason: str, *, lender_id: int | None = None, loan_id: int | None = None) -> None:
    """Ask for a run (in the caller's transaction: the trigger is kept exactly when its cause is).

    Coalesced: a run looks at every lender and every open loan, so one pending trigger per lender (or per
    reason and loan) is as good as a thousand; a repeat while one waits adds nothing (1,000 rule saves once
    left 1,000 rows)."""
    q = autoinvest_queue.c
    same = (q.lender_id == lender_id) if lender_id is not None else (
        (q.reason == reason) & q.lender_id.is_(None) & (q.loan_id.is_(None) if loan_id is None else q.loan_id == loan_id))
    if conn.execute(select(q.id).where(q.run_id.is_(None), same).limit(1)).first() is not None:
        return
    conn.execute(insert(autoinvest_queue).values(reason=reason, lender_id=lender_id, loan_id=loan_id,
                                                 created_at=datetime.now(timezone.utc)))


def prune(conn: Connection, run_id: int) -> None:
    """A finished run's triggers are spent: nothing reads them after."""
    conn.execute(delete(autoinvest_queue).where(autoinvest_queue.c.run_id == run_id))


def enqueue_for_lenders(conn: Connection, reason: str, lender_ids: set[int], *, reinvest_only: bool = False) -> None:
    """One trigger when any of these lenders auto-invests (money arrived for them)."""
    if not lender_ids:
        return
    query = select(autoinvest_rules.c.lender_id).where(autoinvest_rules.c.lender_id.in_(sorted(lender_ids)),
                                                       autoinvest_rules.c.enabled.is_(True)).limit(1)
    if reinvest_only:
        query = query.where(autoinvest_rules.c.reinvest.is_(True))
    if conn.execute(query).first() is not None:
        enqueue(conn, reason)
