"""The node operator's figures and actions: liquidity against what is due, and connect/open/close.

Liquidity is counted over usable channels only (CHANNELD_NORMAL): inbound is
what the node can receive, outbound what it can send. Two warnings compare
them with what the marketplace expects to move:

* repayments due in the next `DUE_WINDOW_DAYS` days: over active loans, every
  installment not fully paid and due on or before today + 7 days (what is
  overdue is due now, so it counts too) — needs inbound liquidity;
* pending outgoing: open withdrawals and disbursements (pending or unknown)
  plus funded loans still waiting for their disbursement — needs outbound.

Every action checks its input before the node is asked, and every node error
becomes a sentence; nothing is changed when the input is refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, func, select

from lightning.errors import LightningError, NodeUnreachable
from lightning.port import Channel, ChannelClosed, ChannelOpened, LightningPort
from marketplace.db import loans as loan_rows
from marketplace.db import outgoing
from marketplace.db.engine import Database
from marketplace.db.tables import loans, outbox, outgoing_payments, users
from marketplace.db.verify import VerifyReport, verify_ledger
from marketplace.domain.errors import InvalidInput, LightningUnavailable, NotFound, Refusal
from marketplace.domain import numbers
from marketplace.domain.money import SAT_MAX, format_msat
from marketplace.domain.messages import Message, N_, ngettext
from marketplace.services.lightning_calls import node_said

DUE_WINDOW_DAYS = 7
PEER_ID_LENGTH = 66
# Core Lightning's default smallest channel is 20,000 sat; without wumbo the largest is 2^24 - 1 sat.
CHANNEL_MIN_SAT = 20_000
CHANNEL_MAX_SAT = 16_777_215
FIELD_MAX = 300

_PEER_ID = re.compile(r"0[23][0-9a-f]{64}")
_HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")
_SCID = re.compile(r"\d{1,10}x\d{1,10}x\d{1,5}")


class NodeRefused(Refusal):
    """The node answered, but refused the action; nothing changed on our side."""

    code = "node_refused"
    status = 409


@dataclass(frozen=True)
class Liquidity:
    inbound_msat: int
    outbound_msat: int
    due_soon_msat: int
    pending_out_msat: int
    window_days: int = DUE_WINDOW_DAYS

    @property
    def warnings(self) -> tuple[Message, ...]:
        found: list[Message] = []
        if self.inbound_msat < self.due_soon_msat:
            found.append(N_(
                "Inbound liquidity (%(inbound)s) is below the repayments due in the next "
                "%(days)s days (%(due)s): borrowers may be unable to pay. "
                "Open a channel from a well-connected node to this one, or ask a peer for inbound liquidity.",
                inbound=format_msat(self.inbound_msat), days=self.window_days, due=format_msat(self.due_soon_msat)))
        if self.outbound_msat < self.pending_out_msat:
            found.append(N_(
                "Outbound liquidity (%(outbound)s) is below the pending withdrawals and "
                "disbursements (%(pending)s): some of them will fail. "
                "Open a channel from this node.",
                outbound=format_msat(self.outbound_msat), pending=format_msat(self.pending_out_msat)))
        return tuple(found)


def due_within(conn: Connection, as_of: date, days: int = DUE_WINDOW_DAYS) -> int:
    """What active loans' borrowers owe on installments due on or before as_of + days (overdue included)."""
    horizon = as_of + timedelta(days=days)
    ids = [int(i) for i in conn.execute(select(loans.c.id).where(loans.c.status == "active")).scalars()]
    if not ids:
        return 0
    total = 0
    for states in loan_rows.installment_states(conn, ids).values():
        total += sum(i.unpaid_msat for i in states if i.due_date <= horizon and not i.is_paid)
    return total


def pending_outgoing(conn: Connection) -> int:
    """Open withdrawals and disbursements, plus funded loans whose disbursement has not started."""
    open_rows = [r for r in outgoing.open_payments(conn) if r.purpose in ("withdrawal", "disbursement")]
    paying_loans = {r.loan_id for r in open_rows if r.loan_id is not None}
    awaiting = conn.execute(select(loans.c.id, loans.c.amount_msat).where(loans.c.status == "funded")).all()
    return (sum(r.amount_msat for r in open_rows)
            + sum(int(amount) for loan_id, amount in awaiting if int(loan_id) not in paying_loans))


def liquidity(conn: Connection, channels: tuple[Channel, ...] | list[Channel], as_of: date) -> Liquidity:
    usable = [c for c in channels if c.usable]
    return Liquidity(
        inbound_msat=sum(c.receivable_msat for c in usable),
        outbound_msat=sum(c.spendable_msat for c in usable),
        due_soon_msat=due_within(conn, as_of),
        pending_out_msat=pending_outgoing(conn),
    )


# --- input --------------------------------------------------------------------------------------------


def parse_peer_id(raw: str) -> str:
    value = raw.strip().lower()
    if not value:
        raise InvalidInput(N_("Enter the peer's node id (66 hexadecimal characters, starting with 02 or 03)."))
    if len(value) != PEER_ID_LENGTH or not _PEER_ID.fullmatch(value):
        raise InvalidInput(ngettext(
            "A node id is 66 hexadecimal characters (0-9, a-f) starting with 02 or 03; "
            "this one has %(num)d character or other symbols.",
            "A node id is 66 hexadecimal characters (0-9, a-f) starting with 02 or 03; "
            "this one has %(num)d characters or other symbols.", len(value)))
    return value


def parse_address(raw: str) -> tuple[str | None, int | None]:
    """'host:port', '[ipv6]:port' or '' (the node looks the address up); the port defaults to 9735 if absent."""
    value = raw.strip()
    if not value:
        return None, None
    if value.startswith("["):
        end = value.find("]")
        if end < 0:
            raise InvalidInput(N_("An IPv6 address is written in brackets with its port, like [2001:db8::1]:9735."))
        host, rest = value[1:end], value[end + 1:]
        if not host or not re.fullmatch(r"[0-9A-Fa-f:.]+", host) or ":" not in host:
            raise InvalidInput(N_("That is not an IPv6 address; write it like [2001:db8::1]:9735."))
        if rest and not rest.startswith(":"):
            raise InvalidInput(N_("Write the address as host:port, like 203.0.113.5:9735."))
        port_text = rest[1:] if rest else ""
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep:
            host, port_text = value, ""
        if not host or not _HOSTNAME.fullmatch(host):
            raise InvalidInput(N_("Write the address as host:port, like 203.0.113.5:9735 or node.example.org:9735."))
        if sep and not port_text:
            raise InvalidInput(N_("The port is missing after the colon; Lightning's usual port is 9735."))
    if not port_text:
        return host, 9735
    said = N_("The port must be a whole number from 1 to 65535; Lightning's usual port is 9735.")
    return host, numbers.whole(port_text, label=N_("port"), minimum=1, maximum=65535,
                               not_number=said, too_small=said, too_big=said)


def parse_channel_sat(raw: str) -> int:
    if not raw.strip():
        raise InvalidInput(N_("Enter the channel's size in sat."))
    too_big = N_("A channel can be at most %(most)s sat.", most=format(CHANNEL_MAX_SAT, ","))
    amount = numbers.whole(raw, label=N_("channel size"), maximum=SAT_MAX, grouping=True,
                           not_number=N_("Enter the channel's size as a whole number of sat, like 1000000."),
                           too_small=N_("The channel's size must be more than 0 sat."),
                           too_big=too_big)
    if amount < CHANNEL_MIN_SAT:
        raise InvalidInput(N_("A channel must be at least %(least)s sat.", least=format(CHANNEL_MIN_SAT, ",")))
    if amount > CHANNEL_MAX_SAT:
        raise InvalidInput(too_big)
    return amount


def parse_channel_ref(raw: str) -> str:
    value = raw.strip().lower()
    if not value:
        raise InvalidInput(N_("Choose the channel to close."))
    if not (_PEER_ID.fullmatch(value) or _SCID.fullmatch(value)):
        raise InvalidInput(N_("Name the channel by its short channel id (like 103x1x0) or its peer's node id."))
    return value


def _node_error(exc: LightningError, doing: Message) -> Refusal:
    if isinstance(exc, NodeUnreachable):
        return LightningUnavailable(N_("The Lightning node cannot be reached, so it could not %(doing)s. "
                                       "Nothing changed.", doing=doing))
    return NodeRefused(N_("The node could not %(doing)s: %(reason)s", doing=doing, reason=node_said(exc)))


# --- actions ------------------------------------------------------------------------------------------


async def connect(port: LightningPort, raw_peer: str, raw_address: str) -> str:
    peer_id = raw_peer.strip()
    address = raw_address
    if "@" in peer_id:  # the usual id@host:port form, pasted whole
        peer_id, _, inline = peer_id.partition("@")
        if address.strip() and inline:
            raise InvalidInput(N_("Give the address once: either id@host:port, or the id and the address apart."))
        address = address or inline
    checked = parse_peer_id(peer_id)
    host, tcp_port = parse_address(address)
    try:
        await port.connect(checked, host, tcp_port)
    except LightningError as exc:
        raise _node_error(exc, N_("connect to that peer")) from exc
    return checked


async def open_channel(port: LightningPort, raw_peer: str, raw_amount: str) -> ChannelOpened:
    peer_id = parse_peer_id(raw_peer)
    amount_sat = parse_channel_sat(raw_amount)
    try:
        return await port.open_channel(peer_id, amount_sat)
    except LightningError as exc:
        raise _node_error(exc, N_("open the channel")) from exc


async def close_channel(port: LightningPort, raw_ref: str) -> ChannelClosed:
    ref = parse_channel_ref(raw_ref)
    try:
        known = await port.channels()
    except LightningError as exc:
        raise _node_error(exc, N_("list its channels")) from exc
    matches = [c for c in known if c.usable and ref in (c.peer_id.lower(), (c.short_channel_id or "").lower())]
    if not matches:
        raise NotFound(N_("The node has no open channel by that name; nothing was closed."))
    if len(matches) > 1:
        raise InvalidInput(N_("That peer has more than one channel; name the one to close by its short channel id."))
    target = matches[0].short_channel_id or matches[0].peer_id
    try:
        return await port.close_channel(target)
    except LightningError as exc:
        raise _node_error(exc, N_("close the channel")) from exc


# --- the books and the notices, for the operator's pages ----------------------------------------------------------


def liquidity_for(database: Database, channels: tuple[Channel, ...] | list[Channel], today: date) -> Liquidity:
    """`liquidity` in its own read transaction (the operator page's)."""
    return database.read(lambda c: liquidity(c, channels, today))


def verify_books(database: Database) -> VerifyReport:
    """`microlend ledger verify` from the operator's page: the chain, every entry's balance, every balance."""
    return database.read(verify_ledger)


@dataclass(frozen=True)
class OutboxRow:
    id: int
    email: str
    kind: str
    subject: str
    body: str
    created_at: datetime
    status: str
    sent_at: datetime | None
    read_at: datetime | None
    error: str


def _outbox_page(conn: Connection, page: int, size: int) -> tuple[list[OutboxRow], int]:
    total = int(conn.execute(select(func.count()).select_from(outbox)).scalar_one())
    rows = conn.execute(
        select(outbox.c.id, users.c.email, outbox.c.kind, outbox.c.subject, outbox.c.body, outbox.c.created_at,
               outbox.c.status, outbox.c.sent_at, outbox.c.read_at, outbox.c.error)
        .select_from(outbox.join(users, users.c.id == outbox.c.user_id))
        .order_by(outbox.c.id.desc()).limit(size).offset((page - 1) * size))
    return [OutboxRow(int(r.id), str(r.email), str(r.kind), str(r.subject), str(r.body), r.created_at,
                      str(r.status), r.sent_at, r.read_at, str(r.error)) for r in rows], total


def outbox_page(database: Database, page: int, size: int) -> tuple[list[OutboxRow], int]:
    """One page of every notice written (newest first), with the total count."""
    return database.read(lambda c: _outbox_page(c, page, size))
