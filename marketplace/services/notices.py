"""A person's own notices (reminders, lender alerts): the latest ones, and marking one read."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, select, update

from marketplace.db.engine import Database
from marketplace.db.tables import outbox
from marketplace.domain.errors import NotFound
from marketplace.domain.messages import N_
from marketplace.services.notice_board import BoardNotice, board

NOTICES_SHOWN = 10


@dataclass(frozen=True)
class Notice:
    id: int
    kind: str
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None

    @property
    def unread(self) -> bool:
        return self.read_at is None


def _notices(conn: Connection, user_id: int, limit: int) -> list[Notice]:
    rows = conn.execute(
        select(outbox.c.id, outbox.c.kind, outbox.c.subject, outbox.c.body, outbox.c.created_at, outbox.c.read_at)
        .where(outbox.c.user_id == user_id).order_by(outbox.c.id.desc()).limit(limit))
    return [Notice(int(r.id), str(r.kind), str(r.subject), str(r.body), r.created_at, r.read_at) for r in rows]


def notices_for(database: Database, user_id: int, limit: int = NOTICES_SHOWN) -> list[Notice]:
    """The user's own latest notices, newest first (blocking: call through run_in_threadpool)."""
    return database.read(lambda c: _notices(c, user_id, limit))


def _mark_read(conn: Connection, notice_id: int, user_id: int) -> bool:
    found = conn.execute(select(outbox.c.read_at).where(outbox.c.id == notice_id, outbox.c.user_id == user_id)
                         ).one_or_none()
    if found is None:
        return False
    if found.read_at is None:
        conn.execute(update(outbox).where(outbox.c.id == notice_id, outbox.c.user_id == user_id)
                     .values(read_at=datetime.now(timezone.utc)))
    return True


def mark_read(database: Database, user_id: int, notice_id: int) -> list[BoardNotice]:
    """Mark one of the user's own notices read (again is fine); someone else's is simply not found.
    The user's notice board after it (notice_board.board: what is still to act on first)."""
    if not database.run(lambda c: _mark_read(c, notice_id, user_id)):
        raise NotFound(N_("There is no such notice."))
    return database.read(lambda c: board(c, user_id))
