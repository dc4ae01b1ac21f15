"""Double-entry journal rules on plain data.

Sign convention: a line's `amount_msat` is positive for a debit and negative
for a credit, so a balanced entry's lines sum to zero and the raw balances of
all accounts sum to zero. Each account also has a normal side; its *natural*
balance (what a person sees: a lender's available balance, the node's funds)
is the raw sum for debit-normal accounts and its negation for credit-normal
ones.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from marketplace.domain.errors import InvalidInput, UnbalancedEntry
from marketplace.domain.messages import N_

GENESIS_HASH = "0" * 64


class NormalSide(str, Enum):
    DEBIT = "debit"
    CREDIT = "credit"


class AccountKind(str, Enum):
    """What an account is for; fixes its normal side and whether it may go negative."""

    USER_AVAILABLE = "user_available"
    USER_RESERVED = "user_reserved"
    USER_PENDING_OUT = "user_pending_out"  # withdrawal holds: amount plus fee reserve
    OPERATOR_FEES = "operator_fees"
    NODE_ASSET = "node_asset"  # what the Lightning node holds for the marketplace
    NODE_FEES_PAID = "node_fees_paid"  # routing fees spent on outgoing payments
    EQUITY = "equity"  # operator capital (demo funding, corrections)
    LOAN_ESCROW = "loan_escrow"  # a funded loan's money on its way to the borrower
    LOAN_RECEIVABLE = "loan_receivable"
    NOTE = "note"
    LOSSES = "losses"
    REFUNDS_DUE = "refunds_due"  # money that arrived for an erased person: the operator's refund queue

    @property
    def normal_side(self) -> NormalSide:
        return NormalSide.DEBIT if self in _DEBIT_NORMAL else NormalSide.CREDIT

    @property
    def non_negative(self) -> bool:
        return self not in _MAY_GO_NEGATIVE


_DEBIT_NORMAL = {
    AccountKind.NODE_ASSET,
    AccountKind.NODE_FEES_PAID,
    AccountKind.LOAN_RECEIVABLE,
    AccountKind.LOSSES,
}
_MAY_GO_NEGATIVE = {AccountKind.EQUITY}


def natural_delta(side: NormalSide, amount_msat: int) -> int:
    """How a line moves the natural balance of an account on `side`."""
    return amount_msat if side is NormalSide.DEBIT else -amount_msat


@dataclass(frozen=True)
class LineDraft:
    account_id: int
    amount_msat: int  # + debit, - credit


@dataclass(frozen=True)
class EntryDraft:
    kind: str
    lines: tuple[LineDraft, ...]
    idempotency_key: str | None = None
    memo: str = ""


def transfer(kind: str, from_account: int, to_account: int, amount_msat: int,
             idempotency_key: str | None = None, memo: str = "") -> EntryDraft:
    """Move value out of one account into another, both credit-normal or both debit-normal.

    For credit-normal accounts (user balances) the source is debited and the
    destination credited.
    """
    return EntryDraft(
        kind=kind,
        lines=(LineDraft(from_account, amount_msat), LineDraft(to_account, -amount_msat)),
        idempotency_key=idempotency_key,
        memo=memo,
    )


def check_entry(draft: EntryDraft) -> None:
    """Refuse an entry that is not a proper balanced double entry."""
    if len(draft.lines) < 2:
        raise UnbalancedEntry(N_("A journal entry needs at least two lines."))
    if any(type(line.amount_msat) is not int for line in draft.lines):
        raise InvalidInput(N_("Amounts are whole millisatoshis."))
    if any(line.amount_msat == 0 for line in draft.lines):
        raise UnbalancedEntry(N_("A journal line cannot move zero msat."))
    total = sum(line.amount_msat for line in draft.lines)
    if total != 0:
        raise UnbalancedEntry(N_("Debits and credits differ by %(total)s msat; an entry must balance exactly.",
                                 total=total))
    if not draft.kind:
        raise InvalidInput(N_("A journal entry needs a kind."))


def payload_hash(draft: EntryDraft) -> str:
    """What an idempotency key promises: the same kind, lines and memo."""
    body = {
        "kind": draft.kind,
        "memo": draft.memo,
        "lines": [[line.account_id, line.amount_msat] for line in draft.lines],
    }
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()


def entry_hash(
    prev_hash: str,
    entry_id: int,
    kind: str,
    idempotency_key: str | None,
    posted_at_us: int,
    memo: str,
    lines: Iterable[tuple[int, int]],
) -> str:
    """The chain link: anyone with an export can recompute it from the previous hash."""
    body = json.dumps(
        [prev_hash, entry_id, kind, idempotency_key, posted_at_us, memo, [list(l) for l in lines]],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def net_by_account(lines: Sequence[LineDraft]) -> dict[int, int]:
    """Raw movement per account, for updating stored balances in one pass."""
    net: dict[int, int] = {}
    for line in lines:
        net[line.account_id] = net.get(line.account_id, 0) + line.amount_msat
    return net
