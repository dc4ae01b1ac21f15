"""Rules for money crossing the Lightning boundary, on plain numbers."""
from __future__ import annotations

from marketplace.domain.errors import InvalidInput
from marketplace.domain.journal import EntryDraft, LineDraft
from marketplace.domain.money import format_msat, sat_to_msat
from marketplace.domain.messages import Message, N_


def fee_reserve_msat(amount_msat: int, reserve_ppm: int, reserve_min_msat: int) -> int:
    """What is held for routing fees: a share of the amount, never below a floor. Rounded up."""
    proportional = -(-amount_msat * reserve_ppm // 1_000_000)
    return max(reserve_min_msat, proportional)


def check_amount(amount_msat: int, min_sat: int, max_sat: int, what: str | Message) -> None:
    """`what` names the payment inside the sentence ("deposit"): mark it with N_() to translate it too."""
    if amount_msat <= 0:
        raise InvalidInput(N_("The %(what)s must be more than 0 sat.", what=what))
    if amount_msat < sat_to_msat(min_sat):
        raise InvalidInput(N_("The smallest %(what)s is %(amount)s.", what=what,
                              amount=format_msat(sat_to_msat(min_sat))))
    if amount_msat > sat_to_msat(max_sat):
        raise InvalidInput(N_("The largest %(what)s is %(amount)s.", what=what,
                              amount=format_msat(sat_to_msat(max_sat))))


def deposit_entry(node_asset: int, user_available: int, amount_msat: int, payment_hash: str) -> EntryDraft:
    """Money arrived at the node for a user: the node holds more, the user is owed more."""
    return EntryDraft(
        kind="deposit",
        lines=(LineDraft(node_asset, amount_msat), LineDraft(user_available, -amount_msat)),
        idempotency_key=f"invoice:{payment_hash}",
    )


def hold_entry(user_available: int, user_pending: int, total_msat: int, payment_hash: str) -> EntryDraft:
    """Before paying out: amount plus fee reserve leave the available balance."""
    return EntryDraft(
        kind="withdrawal_hold",
        lines=(LineDraft(user_available, total_msat), LineDraft(user_pending, -total_msat)),
        idempotency_key=f"hold:{payment_hash}",
    )


def settle_entry(user_pending: int, user_available: int, node_asset: int, amount_msat: int,
                 reserve_msat: int, fee_msat: int, payment_hash: str) -> EntryDraft:
    """The payment went through: the node paid amount plus fee; the unused reserve returns."""
    if not 0 <= fee_msat <= reserve_msat:
        raise ValueError(f"fee {fee_msat} outside the held reserve {reserve_msat}")
    lines = [LineDraft(user_pending, amount_msat + reserve_msat), LineDraft(node_asset, -(amount_msat + fee_msat))]
    if reserve_msat - fee_msat:
        lines.append(LineDraft(user_available, -(reserve_msat - fee_msat)))
    return EntryDraft(kind="withdrawal_settle", lines=tuple(lines), idempotency_key=f"settle:{payment_hash}")


def release_entry(user_pending: int, user_available: int, total_msat: int, payment_hash: str) -> EntryDraft:
    """The payment clearly failed: everything held returns to the available balance."""
    return EntryDraft(
        kind="withdrawal_release",
        lines=(LineDraft(user_pending, total_msat), LineDraft(user_available, -total_msat)),
        idempotency_key=f"release:{payment_hash}",
    )
