"""Words stored as codes (a loan's status, a purpose, a ledger entry's kind) as a reader sees them.

The database and the API keep the English codes ("written_off", "farming"); pages print them
through the `word` filter, which gives the marked word in the request's language, or the
code itself when it is not one of these.
"""
from __future__ import annotations

from marketplace.domain.messages import Message, N_
from marketplace.services.statements import KIND_WORDS

WORDS: dict[str, Message] = {
    # loan and note states
    "funding": N_("open for funding"), "funded": N_("funded"), "active": N_("active"), "repaid": N_("repaid"),
    "expired": N_("expired"), "lapsed": N_("lapsed"), "written_off": N_("written off"), "pledged": N_("pledged"),
    "released": N_("released"),
    # how a loan stands
    "current": N_("current"), "grace": N_("in grace"), "late": N_("late"), "defaulted": N_("defaulted"),
    # payments and notices
    "pending": N_("pending"), "succeeded": N_("succeeded"), "failed": N_("failed"), "unknown": N_("unknown"),
    "sent": N_("sent"), "unpaid": N_("unpaid"), "paid": N_("paid"), "creating": N_("creating"),
    # balances
    "available": N_("available"), "reserved": N_("reserved"),
    # purposes
    "business": N_("business"), "education": N_("education"), "health": N_("health"), "housing": N_("housing"),
    "farming": N_("farming"), "transport": N_("transport"), "family": N_("family"), "other": N_("other"),
    # installment frequencies
    "daily": N_("daily"), "weekly": N_("weekly"), "monthly": N_("monthly"),
    # ledger entry kinds, as the statement names them
    **KIND_WORDS,
}
